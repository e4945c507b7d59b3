"""What one auto_diff call leaves for the next on the same two models.

The seed's dataloader loop calls ``auto_diff`` once per batch on the same models. Two things need
not be redone each time: the layer matching (which runs both models once) and the check that the
models start from equal weights, when the previous call ended with every weight compared equal
after its optimizer step (or left the weights untouched after checking them). A
:class:`PairMemo` holds both, keyed by the two models and the layer map (weak references: the
memo never keeps a model alive) and valid while the module trees keep their structure.
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass
from typing import Any

from padiff_ir.errors import InputError
from padiff_ir.hints import Inputs, Model
from padiff_ir.matching.types import Matching
from padiff_ir.pairing.graphs import pair_models
from padiff_ir.pairing.layer_map import LayerMap, named_modules

__all__ = ["PairMemo", "memo_for"]

logger = logging.getLogger(__name__)

_MAX_ENTRIES = 8


@dataclass
class PairMemo:
    """The matching of two models and whether their weights were last seen equal.

    Attributes:
        matching: the module and parameter pairs.
        weights_verified: the previous call compared every weight and found them equal, and
            nothing of this library changed them since.
    """

    matching: Matching
    weights_verified: bool = False


@dataclass
class _Entry:
    ref_a: Any
    ref_b: Any
    ref_map: Any
    signature: tuple[Any, ...]
    memo: PairMemo


_ENTRIES: dict[tuple[int, int, int], _Entry] = {}


def _signature(model: Model) -> tuple[Any, ...]:
    return tuple((path, type(module).__name__) for path, module in named_modules(model))


def memo_for(
    model_a: Model,
    model_b: Model,
    inputs: Inputs,
    layer_map: LayerMap | None,
    matching: Matching | None = None,
) -> PairMemo:
    """The memo of this pair: reused while the models and layer map are the same objects with
    the same module trees; otherwise a fresh one (``matching`` given, or
    :func:`~padiff_ir.pairing.graphs.pair_models` on ``inputs``, the matching every entry point
    uses, falling back to the module trees if the models fail on the inputs)."""
    key = (id(model_a), id(model_b), id(layer_map))
    signature = (_signature(model_a), _signature(model_b))
    entry = _ENTRIES.get(key)
    same = (
        entry is not None
        and entry.ref_a() is model_a
        and entry.ref_b() is model_b
        and (entry.ref_map() is layer_map and entry.signature == signature)
    )
    if entry is not None and same and (matching is None or matching is entry.memo.matching):
        return entry.memo
    if matching is None:
        resolved = (LayerMap.coerce(layer_map) or LayerMap()).resolve(model_a, model_b)
        try:
            matching = pair_models(model_a, model_b, inputs, layer_map=resolved)
        except InputError as err:  # a model failing on the inputs: let the run report it
            logger.info("matching on the inputs failed (%s); matching the module trees", err)
            matching = pair_models(model_a, model_b, None, layer_map=resolved)
    memo = PairMemo(matching)
    if len(_ENTRIES) >= _MAX_ENTRIES:
        _ENTRIES.pop(next(iter(_ENTRIES)))
    ref_map = weakref.ref(layer_map) if layer_map is not None else (lambda: None)
    _ENTRIES[key] = _Entry(weakref.ref(model_a), weakref.ref(model_b), ref_map, signature, memo)
    return memo
