"""What one auto_diff call leaves for the next on the same two models.

The seed's dataloader loop calls ``auto_diff`` once per batch on the same models. Two things need
not be redone each time: the layer matching (which runs both models once) and the check that the
models start from equal weights, when the previous call ended with every weight compared equal
after its optimizer step (or left the weights untouched after checking them). A
:class:`~padiff_ir.pairing.cache.NativeMemo` holds both on the pair's entry of the one cache
(:mod:`padiff_ir.pairing.cache`: weakly, the memo never keeps a model alive), valid for the same
layer map object while the module trees keep their structure.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

from padiff_ir.errors import InputError
from padiff_ir.hints import Inputs, Model
from padiff_ir.matching.types import Matching
from padiff_ir.pairing import LayerMap, named_modules, pair_models
from padiff_ir.pairing.cache import NativeMemo, pair_cache

__all__ = ["memo_for"]

logger = logging.getLogger(__name__)


def _signature(model: Model) -> tuple[Any, ...]:
    return tuple((path, type(module).__name__) for path, module in named_modules(model))


def memo_for(
    model_a: Model,
    model_b: Model,
    inputs: Inputs,
    layer_map: LayerMap | None,
    matching: Matching | None = None,
) -> NativeMemo:
    """The memo of this pair: reused while the models and layer map are the same objects with
    the same module trees; otherwise a fresh one (``matching`` given, or
    :func:`~padiff_ir.pairing.pair_models` on ``inputs``, the matching every entry point uses,
    falling back to the module trees if the models fail on the inputs)."""
    signature = (_signature(model_a), _signature(model_b))
    entry = pair_cache.entry(model_a, model_b, create=True)
    found = entry.native if entry is not None else None
    same = found is not None and found.layer_map() is layer_map and found.signature == signature
    if found is not None and same and (matching is None or matching is found.matching):
        return found
    if matching is None:
        resolved = (LayerMap.coerce(layer_map) or LayerMap()).resolve(model_a, model_b)
        try:
            matching = pair_models(model_a, model_b, inputs, layer_map=resolved)
        except InputError as err:  # a model failing on the inputs: let the run report it
            logger.info("matching on the inputs failed (%s); matching the module trees", err)
            matching = pair_models(model_a, model_b, None, layer_map=resolved)
    ref_map = weakref.ref(layer_map) if layer_map is not None else (lambda: None)
    memo = NativeMemo(matching, layer_map=ref_map, signature=signature)
    if entry is not None:
        entry.native = memo
    return memo
