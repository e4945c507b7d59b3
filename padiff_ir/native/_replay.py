"""Model A's side of a call, kept step by step to be replayed against another model.

``auto_diff(..., tolerance="auto")`` measures A's rounding as ``|A - A64|`` for every compared
tensor. A's values are already computed by the call itself: with ``TrainingRun.keep_a`` the
call keeps, per step, every value of A its comparisons took (layer outputs and gradients by
hook key, parameter gradients, weights, running statistics and optimizer states by name, the
loss) in a :class:`StepRecord`. A later run with ``TrainingRun.replayed`` set does not run A:
each step's record stands for A's pass, and only the other model (A's float64 shadow) runs and
is compared with it, so the measurement costs one extra run of A in float64. The price is
memory: the kept values of every step (A's compared layer outputs and gradients, parameter
gradients, weights and states, in A's dtype) are held until the shadow has replayed that step;
the numpy copies are the ones the comparisons made, kept instead of dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from padiff_ir.native._slots import ASide

__all__ = ["PARAM_KINDS", "StepRecord"]

#: kinds of kept parameter arrays that are not optimizer states
PARAM_KINDS = frozenset({"weight", "grad", "buffer"})


@dataclass(frozen=True)
class StepRecord:
    """One step of model A as the call ran it.

    Attributes:
        a_side: the layer values B's hooks took, by key (see ``Recorder.a_side``).
        arrays: parameter values by ``(kind, A's name)``: ``grad``, ``weight`` (after the
            optimizer step), ``buffer``, or an optimizer state's name.
        loss: A's loss (None without one).
    """

    a_side: ASide
    arrays: dict[tuple[str, str], np.ndarray]
    loss: np.ndarray | None = None

    def getter(self, kind: str) -> Callable[[str], Any]:
        """A's ``kind`` arrays by name (``KeyError`` for a name A had none of)."""
        arrays = self.arrays

        def get(name: str) -> Any:
            return arrays[(kind, name)]

        return get

    def state_kinds(self) -> set[str]:
        """The optimizer states kept."""
        return {kind for kind, _ in self.arrays if kind not in PARAM_KINDS}
