"""Share of annotated parameters whose annotation mentions ``Any``, per package of padiff_ir.

Usage: ``python scripts/any_params.py [ROOT]`` (default: the ``padiff_ir`` folder next to this
script's folder). A parameter counts once per function (``self`` and ``cls`` left out); its
annotation mentions ``Any`` when the name ``Any`` appears anywhere in it (``dict[str, Any]``,
``Any | None``...). Modules at the top of the package count as the package ``(top)``.
"""

from __future__ import annotations

import ast
import sys
from collections import Counter
from pathlib import Path


def _mentions_any(annotation: ast.expr) -> bool:
    text = ast.unparse(annotation)
    return any(
        (isinstance(node, ast.Name) and node.id == "Any")
        or (isinstance(node, ast.Attribute) and node.attr == "Any")
        for node in ast.walk(ast.parse(text.strip("'\""), mode="eval"))
    )


def count(root: Path) -> dict[str, tuple[int, int]]:
    """Package -> (annotated parameters, those mentioning Any)."""
    annotated: Counter[str] = Counter()
    with_any: Counter[str] = Counter()
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        package = parts[0] if len(parts) > 1 else "(top)"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            args = node.args
            params = [*args.posonlyargs, *args.args, *args.kwonlyargs]
            params += [a for a in (args.vararg, args.kwarg) if a is not None]
            for arg in params:
                if arg.arg in ("self", "cls") or arg.annotation is None:
                    continue
                annotated[package] += 1
                with_any[package] += _mentions_any(arg.annotation)
    return {p: (annotated[p], with_any[p]) for p in sorted(annotated)}


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parents[1] / "padiff_ir"
    counts = count(root)
    total = [sum(v[i] for v in counts.values()) for i in (0, 1)]
    print(f"{'package':<12} {'params':>7} {'Any':>5} {'share':>6}")
    for package, (n, k) in [*counts.items(), ("all", tuple(total))]:
        print(f"{package:<12} {n:>7} {k:>5} {k / n:>6.1%}")


if __name__ == "__main__":
    main()
