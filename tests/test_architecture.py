"""The floors of ARCHITECTURE.md, checked from the package's imports (every import, also the
ones inside functions)."""

from __future__ import annotations

import ast
import re
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


def _floor_table() -> dict[str, int]:
    """Unit (a package directory or a top-level module, as the table writes it: ``ir``,
    ``errors``) -> its floor, read from the floor table of ARCHITECTURE.md."""
    text = (PACKAGE.parent / "ARCHITECTURE.md").read_text()
    floors = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].isdigit():
            continue
        for name in re.findall(r"`([^`]+)`", cells[1]):
            floors[name.removesuffix("/").removesuffix(".py")] = int(cells[0])
    return floors


FLOORS = _floor_table()
BESIDE = {"zoo"}  # paired example models: beside the floors (test_the_zoo_stands_beside_the_floors)


def _unit(module: str) -> str | None:
    """The unit of the table that ``padiff_ir.X...`` belongs to (None outside the package); a
    name imported from the package itself (``__version__``) is the public face's."""
    parts = module.split(".")
    if parts[0] != "padiff_ir":
        return None
    if len(parts) == 1:
        return "__init__"
    head = parts[1]
    if (PACKAGE / head).is_dir() or (PACKAGE / f"{head}.py").exists():
        return head
    return "__init__"


def _unit_of(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


UNITS = sorted({_unit_of(p) for p in _files()})


def test_every_part_of_the_package_is_on_the_floor_table():
    assert len(FLOORS) > 15
    assert set(UNITS) - set(FLOORS) - BESIDE == set()
    assert set(FLOORS) - set(UNITS) == set(), "the table names parts the package lacks"


@pytest.mark.parametrize("unit", [u for u in UNITS if u not in BESIDE])
def test_each_part_imports_only_its_own_floor_and_below(unit):
    """The floors of ARCHITECTURE.md for every package (so ``exporters/``, on floor 2, imports
    no ``runtime/``, on floor 3)."""
    floor = FLOORS[unit]
    found = {}
    for path in [p for p in _files() if _unit_of(p) == unit]:
        above = sorted(
            {
                m
                for m in _imports(path)
                if _unit(m) not in (None, unit, *BESIDE) and FLOORS[_unit(m)] > floor
            }
        )
        if above:
            found[str(path.relative_to(PACKAGE.parent))] = above
    assert found == {}


def test_no_two_parts_import_each_other():
    edges = {(_unit_of(p), _unit(m)) for p in _files() for m in _imports(p)}
    both_ways = {
        tuple(sorted((a, b)))
        for a, b in edges
        if b not in (None, a) and a in FLOORS and (b, a) in edges
    }
    assert both_ways == set()


def test_no_package_imports_another_packages_private_module():
    found = {}
    for path in _files():
        unit = _unit_of(path)
        private = sorted(
            m
            for m in _imports(path)
            if _unit(m) not in (None, unit)
            and any(p.startswith("_") and not p.startswith("__") for p in m.split(".")[2:])
        )
        if private:
            found[str(path.relative_to(PACKAGE.parent))] = private
    assert found == {}


def test_the_zoo_stands_beside_the_floors():
    """``zoo/`` uses the frameworks floor and below; only the public face imports it."""
    zoo = {m for p in _files("zoo") for m in _imports(p)}
    assert {_unit(m) for m in zoo} - {None, "zoo"} <= {u for u, f in FLOORS.items() if f <= 1}
    users = {_unit_of(p) for p in _files() if any(_unit(m) == "zoo" for m in _imports(p))}
    assert {FLOORS[u] for u in users - {"zoo"}} == {max(FLOORS.values())}


def _framework_branches(path: Path) -> list[int]:
    """Lines comparing a value with the name ``"torch"`` or ``"paddle"`` (``==``, ``!=``,
    ``in``, a literal set or tuple of the names included)."""

    def names_a_framework(node: ast.AST) -> bool:
        if isinstance(node, ast.Constant):
            return node.value in ("torch", "paddle")
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return any(names_a_framework(e) for e in node.elts)
        return False

    return [
        node.lineno
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Compare)
        and all(isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn)) for op in node.ops)
        and any(names_a_framework(n) for n in (node.left, *node.comparators))
    ]


def test_only_the_framework_floor_branches_on_a_framework_name():
    """``== "torch"`` only in ``frameworks/``, ``exporters/`` and ``zoo/``: elsewhere code asks
    the ``Framework`` (a third framework is one new file)."""
    allowed = ("frameworks", "exporters", "zoo")
    found = {}
    for path in [p for p in _files() if _unit_of(p) not in allowed]:
        if _framework_branches(path):
            found[str(path.relative_to(PACKAGE))] = _framework_branches(path)
    assert found == {}
    assert _framework_branches(PACKAGE / "exporters" / "_export.py"), "the check sees nothing"


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
