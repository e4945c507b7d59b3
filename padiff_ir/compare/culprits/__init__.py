"""Where a culprit is decided and explained, every step in the order a check takes it.

A *culprit* is a module pair that differs by itself: B's module, fed A's values of its inputs,
does not compute A's outputs (error inherited from upstream does not count).

1. **Own error** (:mod:`.own_error`, :func:`~.own_error.measure_modules`): every module pair's
   outputs compared, and B's module rerun on its ONNX graph from A's inputs for its own error
   (PaDiff's ``single_step``). Each pair's status is decided here: ``culprit`` (fails by
   itself and no submodule does), ``contains-culprit``, ``inherited``, ``accumulated`` (a
   container whose error is its children's rounding: its own ops do not differ), ``ok``.
2. **Eager measure** (:mod:`.eager_modules`): a pair the graphs cannot measure (a module an
   export drops, inputs of other sizes than B's graph takes) is measured on the eager runs,
   B's module object called on A's recorded inputs.
3. **Explanation** (:mod:`.explain`): the op attributes, op types and structure and the
   parameter values that differ in a failing module; the modules' own settings (an epsilon, a
   pooling or dropout mode) come from :mod:`padiff_ir.pairing.settings`.
4. **The culprits** (:mod:`.localize`, :func:`localize`): steps 1 to 3 for every pair, the
   culprits in A's data-flow order, each with one sentence (:func:`explain_culprit`).
5. **The exporter at fault** (:mod:`.fidelity`, :mod:`.exporter_faults`): where an exported
   graph departs from its own model's eager run, the exporter changed the computation; that
   module is judged on the eager runs instead, and the result names the exporter.
6. **No culprit**: outputs that drift apart while no module differs by itself are rounding
   accumulated over the graph (:func:`rounding_accumulated`, ``MatchResult.accumulated``);
   an exporter fault sets the verdict from the eager outputs instead
   (:func:`~.exporter_faults.with_exporter_faults`).

``match``'s ``localize`` stage (:class:`~padiff_ir.pairing.stages.Stage`) runs steps 1 to 4,
its ``fidelity`` stage step 5. The training-mode path (``auto_diff``) locates its first
difference on its own, from its hooks.
"""

from __future__ import annotations

from padiff_ir.compare.culprits.localize import (
    ACCUMULATED_NOTE,
    culprit_of,
    explain_culprit,
    localize,
    rounding_accumulated,
)

__all__ = [
    "ACCUMULATED_NOTE",
    "culprit_of",
    "explain_culprit",
    "localize",
    "rounding_accumulated",
]
