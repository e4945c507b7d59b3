"""The last pair a single ``match`` prepared, kept for a later ``match`` of the same models.

A user checking a port calls ``match`` again and again on the same two models: after a fix to
the weights, on other inputs, in a loop of their own. What a check needs of the preparation
(the graphs, their IR, the matching and the onnxruntime sessions) depends on the models'
structure, code and input signature, which the export fingerprints name, and not on their
weights: the graphs are live (:mod:`padiff_ir.exporters._live`), so each session run reads
the weights where the models hold them, as they are then. So :func:`padiff_ir.match` keeps
the last pair it prepared (on the pair's entry of the one cache, :mod:`.cache`), and a later
call whose exports have the same fingerprints, for the same two model objects, with the same
preparing options, checks with it: no session is built again (ViT-B: 1.6-2.5 s of a later
call).

Not kept: a pair with ``assign_weights`` (each call copies A's weights into B), with an ONNX
file or an export that is not wholly live (its graph holds copies of some weights), or whose
matching holds fused parameter groups with discovered layouts (a layout is probed with the
weights as they are, so each call probes again).

What is kept holds the models only weakly: it is dropped when either model is collected, when
another pair is kept, or by :func:`forget` (and :func:`padiff_ir.clear`). The sessions of the
kept pair hold no weights.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import TYPE_CHECKING, Any

from padiff_ir._shared_weights import current_arrays
from padiff_ir.errors import InputError
from padiff_ir.hints import Model
from padiff_ir.pairing.cache import KeptPair, pair_cache

if TYPE_CHECKING:
    from padiff_ir.exporters import ExportedGraph
    from padiff_ir.pairing.pair import ModelPair, PairSettings

__all__ = ["forget", "is_kept", "keep", "key_of", "lookup"]

logger = logging.getLogger(__name__)


def key_of(
    exported_a: ExportedGraph,
    exported_b: ExportedGraph,
    signature: tuple[Any, Any],
    settings: PairSettings,
) -> tuple[Any, ...] | None:
    """What a kept pair must share with a new call to serve it; None when the pair may not be
    kept (see the module docstring)."""
    if settings.assign_weights:
        return None
    if not (exported_a.fingerprint and exported_b.fingerprint):
        return None
    for exported in (exported_a, exported_b):
        # every parameter read from the model: a copied one (bfloat16, a non-contiguous
        # tensor) would be served stale to a later call
        if not exported.weights or any(n not in exported.weights for n in exported.parameters):
            return None
    layer_map = settings.layer_map
    pins = json.dumps(layer_map.to_dict(), sort_keys=True, default=str) if layer_map else ""
    return (
        exported_a.fingerprint,
        exported_b.fingerprint,
        signature,
        settings.opset,
        tuple(settings.providers),
        pins,
    )


def lookup(model_a: Model, model_b: Model, key: tuple[Any, ...] | None) -> ModelPair | None:
    """The kept pair for these models and ``key``, with the models attached; else None."""
    entry = pair_cache.entry(model_a, model_b) if key is not None else None
    kept = entry.kept if entry is not None else None
    if kept is None or kept.key != key:
        return None
    try:  # every weight still readable in place (not replaced by a tensor numpy cannot view)
        for exported in (kept.pair.exported_a, kept.pair.exported_b):
            current_arrays(exported.weights)
    except InputError as err:
        logger.debug("match: the kept pair no longer fits the models (%s)", err)
        forget()
        return None
    logger.debug("match: the sessions of the previous call are reused")
    return dataclasses.replace(kept.pair, models=(model_a, model_b), notes=list(kept.pair.notes))


def keep(pair: ModelPair, key: tuple[Any, ...] | None) -> bool:
    """Keep ``pair`` (its runners keep their sessions) for a later call; whether it was."""
    if key is None or pair.matching.stats.get("layouts"):
        return False
    entry = pair_cache.entry(*pair.models, create=True)
    if entry is None:  # a model that takes no weak reference
        return False
    pair_cache.keep(entry, KeptPair(key, dataclasses.replace(pair, models=(None, None))))
    return True


def is_kept(pair: ModelPair) -> bool:
    """Whether ``pair`` is (a view of) the kept pair: its sessions outlive the call."""
    entry = pair_cache.kept()
    return (
        entry is not None and entry.kept is not None and (entry.kept.pair.runner_a is pair.runner_a)
    )


def forget() -> None:
    """Drop the kept pair and release its sessions."""
    pair_cache.forget_kept()
