"""Shared fixtures: zoo pairs and their exports are built once per test session."""

from __future__ import annotations

import functools
import logging
import os
import tempfile

import pytest

ZOO_NAMES = ("mlp", "cnn", "vit", "vitpose", "bert")


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


@pytest.fixture
def no_temp_leftovers():
    """Fail if the test leaves files in the temporary directory."""
    tmp = tempfile.gettempdir()
    before = set(os.listdir(tmp))
    yield
    after = {n for n in os.listdir(tmp) if n.startswith("padiff_ir")}
    left = after - before
    assert not left, f"temporary files left behind: {sorted(left)}"


@pytest.fixture(autouse=True)
def _quiet_frameworks(caplog):
    caplog.set_level(logging.WARNING)
    yield
