"""The README's examples run as written, its commands exist, and the tree passes ruff."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_readme_opens_with_the_two_commands():
    first = _blocks("bash")[0].splitlines()
    assert first[0].startswith("bash scripts/dev.sh demo")
    assert first[1].startswith("bash scripts/dev.sh test")
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/dev.sh test" in ci


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_readme_python_example_runs(index, no_temp_leftovers, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the files an example writes (report.html) land there
    code = _blocks("python")[index]
    namespace: dict = {"__name__": f"readme_example_{index}"}
    exec(compile(code, f"README.md[python block {index}]", "exec"), namespace)


def test_readme_cli_commands_are_real():
    from padiff_ir.cli import _COMMANDS

    for block in _blocks("bash")[1:]:
        for line in block.splitlines():
            if line.startswith("padiff-ir "):
                assert line.split()[1] in _COMMANDS, line


def _tool(*command: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """A command's run in ``cwd``, its output captured."""
    return subprocess.run(list(command), cwd=cwd, capture_output=True, text=True, check=False)


def _ruff() -> str:
    return shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")


def test_ruff_is_clean():
    result = _tool(_ruff(), "check", "padiff_ir", "tests", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_applied():
    result = _tool(_ruff(), "format", "--check", "padiff_ir", "tests", "benchmarks")
    assert result.returncode == 0, "run `ruff format padiff_ir tests benchmarks`:\n" + (
        result.stdout + result.stderr
    )


def test_mypy_is_clean():
    """mypy as configured in pyproject.toml: strict on matching/ and ir/, normal elsewhere."""
    result = _tool(sys.executable, "-m", "mypy")
    assert result.returncode == 0, "mypy (configured in pyproject.toml) finds:\n" + (
        result.stdout + result.stderr
    )


def test_mypy_is_strict_on_the_pure_floors(tmp_path):
    """The strict flags really apply to matching/ and ir/: an untyped function there fails,
    the same function elsewhere passes."""
    for package in ("matching", "compare"):
        folder = tmp_path / "padiff_ir" / package
        folder.mkdir(parents=True)
        (tmp_path / "padiff_ir" / "__init__.py").touch()
        (folder / "__init__.py").touch()
        (folder / "probe.py").write_text("def untyped(x):\n    return x\n", encoding="utf-8")
    config = str(ROOT / "pyproject.toml")

    def mypy(path: str) -> subprocess.CompletedProcess[str]:
        options = ("--config-file", config, "--no-incremental")
        return _tool(sys.executable, "-m", "mypy", *options, path, cwd=tmp_path)

    strict = mypy("padiff_ir/matching/probe.py")
    assert strict.returncode == 1 and "[no-untyped-def]" in strict.stdout, strict.stdout
    normal = mypy("padiff_ir/compare/probe.py")
    assert normal.returncode == 0, normal.stdout
