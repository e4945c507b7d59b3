"""The floors of ARCHITECTURE.md, checked from the package's imports (every import, also the
ones inside functions)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "padiff_ir"


def _imports(path: Path) -> list[str]:
    """Every module a file imports (absolute names; relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.append(module)
            found += [f"{module}.{alias.name}" for alias in node.names]
    return found


def _files(*parts: str) -> list[Path]:
    return sorted((PACKAGE.joinpath(*parts)).rglob("*.py"))


def _offenders(files: list[Path], forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    found = {}
    for path in files:
        bad = sorted(
            {m for m in _imports(path) if any(m == f or m.startswith(f + ".") for f in forbidden)}
        )
        if bad:
            found[str(path.relative_to(PACKAGE.parent))] = bad
    return found


def test_torch_and_paddle_only_in_frameworks_exporters_and_zoo():
    allowed = ("frameworks", "exporters", "zoo")
    files = [p for p in _files() if p.relative_to(PACKAGE).parts[0] not in allowed]
    assert len(files) > 50
    assert _offenders(files, ("torch", "paddle", "paddle2onnx")) == {}


def test_matching_sees_graphs_not_models():
    forbidden = (
        "padiff_ir.frameworks",
        "padiff_ir.exporters",
        "padiff_ir.runtime",
        "padiff_ir.pairing",
        "padiff_ir.compare",
        "padiff_ir.native",
        "padiff_ir.report",
        "padiff_ir.cli",
        "padiff_ir.zoo",
    )
    assert _offenders(_files("matching"), forbidden) == {}
    assert not (PACKAGE / "matching" / "native.py").exists()


def test_results_know_nothing_of_their_presentation():
    files = _files("compare") + _files("native") + _files("pairing") + _files("distributed")
    assert _offenders(files, ("padiff_ir.report",)) == {}


@pytest.mark.parametrize(
    "floor,above",
    [
        (
            "frameworks",
            (
                "padiff_ir.exporters",
                "padiff_ir.ir",
                "padiff_ir.runtime",
                "padiff_ir.matching",
                "padiff_ir.pairing",
                "padiff_ir.compare",
                "padiff_ir.native",
                "padiff_ir.report",
            ),
        ),
        (
            "ir",
            (
                "padiff_ir.matching",
                "padiff_ir.pairing",
                "padiff_ir.compare",
                "padiff_ir.native",
                "padiff_ir.report",
            ),
        ),
        ("pairing", ("padiff_ir.compare", "padiff_ir.native", "padiff_ir.report")),
        # the sharded path sits beside compare/ and native/: it uses pairing/ and below
        ("distributed", ("padiff_ir.compare", "padiff_ir.native", "padiff_ir.report")),
    ],
)
def test_lower_floors_do_not_reach_up(floor, above):
    assert _offenders(_files(floor), above) == {}


def test_nothing_imports_the_public_face():
    found = {}
    for path in _files():
        if (
            path.name == "__main__.py"
            or path == PACKAGE / "__init__.py"
            or path == PACKAGE / "cli.py"
        ):
            continue
        bad = [
            m
            for m in _imports(path)
            if m in ("padiff_ir", "padiff_ir.cli") or m.startswith("padiff_ir.cli.")
        ]
        if bad:
            found[str(path)] = bad
    assert found == {}


def test_importing_the_package_imports_no_framework():
    code = (
        "import sys, padiff_ir, padiff_ir.pairing, padiff_ir.compare, padiff_ir.native, "
        "padiff_ir.frameworks, padiff_ir.distributed; "
        "print('torch' in sys.modules, 'paddle' in sys.modules, 'ray' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PACKAGE.parent
    )
    assert out.stdout.split() == ["False", "False", "False"]


def test_the_terminal_helper_is_on_the_ground_floor():
    """Every summary (compare, native) renders through padiff_ir._terminal, which imports no
    floor above the ground; the CLI's console is imported by the public face alone."""
    above = tuple(
        f"padiff_ir.{p.name}" for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"
    )
    assert _offenders([PACKAGE / "_terminal.py"], (*above, "padiff_ir.cli")) == {}
    users = [p for p in _files() if "padiff_ir._console" in _imports(p)]
    assert sorted(p.name for p in users) == ["__init__.py", "cli.py"]
