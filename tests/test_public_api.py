"""Nothing public needs a private type: every name in the signatures of ``padiff_ir``'s public
functions and classes can be imported from a public module (issue 21)."""

from __future__ import annotations

import ast
import importlib
import inspect

import padiff_ir

PUBLIC_MODULES = (
    "padiff_ir",
    "padiff_ir.hints",
    "padiff_ir.metrics",
    "padiff_ir.errors",
    "padiff_ir.compare",
    "padiff_ir.native",
    "padiff_ir.pairing",
    "padiff_ir.matching",
    "padiff_ir.exporters",
    "padiff_ir.frameworks",
    "padiff_ir.ir",
    "padiff_ir.runtime",
)


def _signatures(obj: object) -> list[inspect.Signature]:
    if inspect.isclass(obj):
        found = [inspect.signature(obj.__init__)]
        found += [
            inspect.signature(member)
            for name, member in vars(obj).items()
            if inspect.isfunction(member) and not name.startswith("_")
        ]
        return found
    return [inspect.signature(obj)] if callable(obj) else []


def _names(signature: inspect.Signature) -> set[str]:
    texts = [p.annotation for p in signature.parameters.values()]
    texts.append(signature.return_annotation)
    found = set()
    for text in texts:
        if isinstance(text, str):
            for node in ast.walk(ast.parse(text, mode="eval")):
                if isinstance(node, ast.Name):
                    found.add(node.id)
    return found


def _private(module: str) -> bool:
    return any(part.startswith("_") for part in module.split("."))


def _sources(obj: object) -> dict[str, str]:
    """Name -> the module it comes from (imported from, or defined in), as the module defining
    ``obj`` sees it."""
    module = inspect.getmodule(obj)
    tree = ast.parse(inspect.getsource(module)) if module is not None else ast.Module([], [])
    here = module.__name__ if module is not None else ""
    found = {}
    for node in tree.body:  # what the module itself defines
        targets = node.targets if isinstance(node, ast.Assign) else []
        targets += [node.target] if isinstance(node, ast.AnnAssign) else []
        found.update({t.id: here for t in targets if isinstance(t, ast.Name)})
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            found[node.name] = here
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.update({alias.asname or alias.name: node.module for alias in node.names})
    return found


def _public_elsewhere(name: str) -> bool:
    return any(hasattr(importlib.import_module(m), name) for m in PUBLIC_MODULES)


def test_public_signatures_name_public_types_only():
    missing = {}
    for public in padiff_ir.__all__:
        obj = getattr(padiff_ir, public)
        sources = _sources(obj)
        for signature in _signatures(obj):
            hidden = sorted(
                name
                for name in _names(signature)
                if _private(sources.get(name, "")) and not _public_elsewhere(name)
            )
            if hidden:
                missing[public] = hidden
    assert missing == {}


def test_tolerance_is_taken_wherever_atol_is():
    for fn in (padiff_ir.match, padiff_ir.auto_diff):
        parameters = inspect.signature(fn).parameters
        assert "tolerance" in parameters and "atol" in parameters
