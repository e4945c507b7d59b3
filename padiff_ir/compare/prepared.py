"""What every check of a pair reuses: the pair prepared once, for ``match``'s options.

:func:`prepare_pair` prepares a :class:`~padiff_ir.pairing.pair.ModelPair` (the stages of
:data:`~padiff_ir.pairing.pair.PREPARATION`: export, IR, matching, copying weights with
``assign_weights``, a runner per graph) with :class:`MatchOptions`;
:func:`padiff_ir.compare.check.check_inputs` then runs both graphs on some inputs and compares
them. ``match`` prepares once and checks once; :class:`padiff_ir.compare.comparison.Comparison`
prepares once and checks every batch.
"""

from __future__ import annotations

import logging

from padiff_ir.compare.half_graphs import graphless_side
from padiff_ir.compare.options import MatchOptions
from padiff_ir.hints import Inputs
from padiff_ir.pairing.pair import ModelPair, PairSettings, Side, prepare
from padiff_ir.pairing.served import Sides
from padiff_ir.pairing.stages import StageTimer

__all__ = ["pair_settings", "prepare_pair"]

logger = logging.getLogger(__name__)


def pair_settings(
    options: MatchOptions,
    *,
    keep_sessions: bool = False,
    reuse: bool = False,
    fresh: Sides = (False, False),
) -> PairSettings:
    """How ``match`` with ``options`` prepares a pair (see :func:`prepare_pair`)."""
    from padiff_ir.compare.weights import assign_into_graph

    return PairSettings(
        layer_map=options.layer_map,
        opset=options.opset,
        providers=tuple(options.providers),
        assign_weights=options.assign_weights,
        assign_graph=assign_into_graph,
        reuse=reuse,
        keep_sessions=keep_sessions,
        fresh=fresh,
        tolerance_names=frozenset(options.overrides),
    )


def prepare_pair(
    side_a: Side,
    side_b: Side,
    inputs: Inputs,
    options: MatchOptions,
    timer: StageTimer,
    *,
    keep_sessions: bool = False,
    reuse: bool = False,
    fresh: Sides = (False, False),
) -> ModelPair:
    """The pair prepared once (:func:`padiff_ir.pairing.pair.prepare`) for ``options``.

    ``side_a`` / ``side_b`` are ``(model, framework, raw inputs)``; ``inputs`` is what the user
    passed (the matching is remembered for it, see :mod:`padiff_ir.pairing.memo`). With
    ``keep_sessions`` the runners keep their sessions from one check to the next. With
    ``reuse`` the pair kept by the previous call for the same models is returned when it fits,
    and the pair prepared is kept for the next call when it may be
    (:mod:`padiff_ir.pairing.kept`; release it with :meth:`~ModelPair.release`). ``fresh``:
    per side, export the model whatever the export cache holds (a cached graph was found
    stale).

    Raises:
        OptionError: ``tolerances`` names tensors A's graph does not have.
        ExportError: a graph cannot run (a bfloat16 model:
            :func:`~padiff_ir.compare.half_graphs.graphless_side`).
    """
    refusal = graphless_side(side_a, side_b)
    if refusal is not None:
        raise refusal
    settings = pair_settings(options, keep_sessions=keep_sessions, reuse=reuse, fresh=fresh)
    return prepare(side_a, side_b, inputs, settings, timer)
