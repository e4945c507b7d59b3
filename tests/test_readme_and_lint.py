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
def test_readme_python_example_runs(index, no_temp_leftovers):
    code = _blocks("python")[index]
    namespace: dict = {"__name__": f"readme_example_{index}"}
    exec(compile(code, f"README.md[python block {index}]", "exec"), namespace)


def test_readme_cli_commands_are_real():
    from padiff_ir.cli import _COMMANDS

    for block in _blocks("bash")[1:]:
        for line in block.splitlines():
            if line.startswith("padiff-ir "):
                assert line.split()[1] in _COMMANDS, line


def test_ruff_is_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    result = subprocess.run(
        [ruff, "check", "padiff_ir", "tests", "benchmarks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_applied():
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    result = subprocess.run(
        [ruff, "format", "--check", "padiff_ir", "tests", "benchmarks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, "run `ruff format padiff_ir tests benchmarks`:\n" + (
        result.stdout + result.stderr
    )
