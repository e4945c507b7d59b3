"""Shared fixtures: zoo pairs and their exports are built once per test session."""

from __future__ import annotations

import functools
import logging
import os
import subprocess
import sys
import tempfile

import pytest

# the suite's exports are cached in memory only (tests of the disk cache set a directory)
os.environ.setdefault("PADIFF_IR_CACHE_DIR", "")

# the [ports] extra's torchvision wheel is built for CUDA torch: it imports beside the CPU torch
# only through the corpus's shim, applied when tests.ports is imported (transformers imports
# torchvision whenever it is installed)
import tests.ports  # noqa: F401

# the zoo pairs whose halves share parameter names and both export (all but the LLM port "llama")
ZOO_NAMES = ("mlp", "cnn", "vit", "vitpose", "bert")


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_python(script: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -c script args...`` in a fresh process that imports this checkout's packages."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, *sys.path])}
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=ROOT,
        timeout=timeout,
    )


@functools.cache
def zoo_pair(name: str, size: str = "tiny"):
    from padiff_ir.zoo import get_pair

    return get_pair(name, size)


@functools.cache
def zoo_export(name: str, framework: str):
    from padiff_ir.exporters import export

    pair = zoo_pair(name)
    model = pair.torch_model if framework == "torch" else pair.paddle_model
    return export(model, pair.inputs)


@pytest.fixture(scope="session", autouse=True)
def _private_tempdir(tmp_path_factory):
    """A temporary directory of this test session only, so leftovers checks see only ours."""
    root = str(tmp_path_factory.mktemp("tmp"))
    saved_tempdir, saved_env = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir = root
    os.environ["TMPDIR"] = root
    yield root
    tempfile.tempdir = saved_tempdir
    if saved_env is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = saved_env


@pytest.fixture
def cache(monkeypatch, tmp_path):
    """The process's export cache, emptied, writing to a private directory."""
    from padiff_ir.exporters._cache import export_cache

    monkeypatch.setattr(export_cache, "directory", tmp_path / "cache")
    monkeypatch.setattr(export_cache, "enabled", True)
    export_cache.clear(disk=False)
    yield export_cache
    export_cache.clear()


@pytest.fixture
def no_temp_leftovers():
    """Fail if the test leaves files in the temporary directory."""
    tmp = tempfile.gettempdir()
    before = set(os.listdir(tmp))
    yield
    # torch's compile cache and paddle's session stamp are made once per process by the
    # frameworks themselves, not by padiff-ir
    left = {
        n
        for n in set(os.listdir(tmp)) - before
        if not n.startswith("torchinductor_") and n != ".ses"
    }
    assert not left, f"temporary files left behind: {sorted(left)}"


@pytest.fixture(autouse=True)
def _quiet_frameworks(caplog):
    caplog.set_level(logging.WARNING)
    yield
