"""Module pairs that do not nest like the others: widened on A's side, or dropped.

Two modules compute the same thing only if the layers inside one are paired with layers inside
the other. When B's module holds a layer paired with a layer outside A's module (PaddleFormers'
MoE ``mlp``, whose ``shared_expert`` is paired with Hugging Face's ``mlp.shared_expert``,
paired with Hugging Face's ``mlp.experts``, which holds the routed experts only), the pair
cannot be one computation: A's side is widened to its nearest enclosing module that holds every
such partner and no layer paired outside B's module (Hugging Face's ``mlp``), when that module
is paired with nothing else; otherwise the pair is dropped, so it is never compared (a false
culprit) nor used to feed inputs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace

from padiff_ir.matching.types import Matching, ModulePair

__all__ = ["consistent_module_pairs"]

logger = logging.getLogger(__name__)


def _within(name: str, module: str) -> bool:
    return module == "" or name == module or name.startswith(module + ".")


def _parent(path: str) -> str | None:
    return None if path == "" else path.rsplit(".", 1)[0] if "." in path else ""


def consistent_module_pairs(matching: Matching, classes_a: Mapping[str, str]) -> Matching:
    """``matching`` with each module pair that does not nest like the others widened on A's
    side or dropped (see the module docstring); ``classes_a`` gives A's class names by path.

    Example:
        >>> pairs = [ModulePair("mlp.experts", "mlp"), ModulePair("mlp.shared", "mlp.shared")]
        >>> fixed = consistent_module_pairs(Matching(module_pairs=pairs), {"mlp": "MoE"})
        >>> [(p.a, p.b) for p in fixed.module_pairs]
        [('mlp', 'mlp'), ('mlp.shared', 'mlp.shared')]
    """
    paths = [(p.a, p.b) for p in matching.module_pairs]
    taken = {p.a for p in matching.module_pairs}
    kept: list[ModulePair] = []
    changed = False
    for pair in matching.module_pairs:
        if _fits(pair.a, pair.b, paths):
            kept.append(pair)
            continue
        changed = True
        wider = _parent(pair.a)
        while wider is not None and not _fits(wider, pair.b, paths):
            wider = _parent(wider)
        if wider is None or wider in taken or (wider == "") != (pair.b == ""):
            logger.info("module pair %s / %s dropped: their weights differ", pair.a, pair.b)
            continue
        logger.info("module pair %s / %s widened to %s on A's side", pair.a, pair.b, wider)
        taken.add(wider)
        kept.append(
            replace(
                pair,
                a=wider,
                class_a=classes_a.get(wider, ""),
                inputs_a=(),
                outputs_a=(),
                evidence=(*pair.evidence, "widened-to-weights"),
            )
        )
    return replace(matching, module_pairs=kept) if changed else matching


def _fits(a: str, b: str, paths: list[tuple[str, str]]) -> bool:
    """Whether every pair with a layer strictly inside one of the two modules has its other
    layer inside the other module."""
    for a2, b2 in paths:
        if b2 != b and _within(b2, b) and not _within(a2, a):
            return False
        if a2 != a and _within(a2, a) and not _within(b2, b):
            return False
    return True
