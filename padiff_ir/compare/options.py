"""The options of one ``match`` run, as one frozen value.

:func:`padiff_ir.match` takes them as keyword arguments and builds a :class:`MatchOptions`; the
pipeline (:func:`padiff_ir.compare.pipeline.match`) and its stages read them from there.

Example:
    >>> options = MatchOptions(atol=1e-4, tolerances={"logits": {"atol": 1e-2}})
    >>> options.tolerance
    Tolerance(atol=0.0001, rtol=1e-05, mode='strict')
    >>> options.overrides["logits"].atol
    0.01
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from padiff_ir.metrics import Tolerance

__all__ = ["MatchOptions"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MatchOptions:
    """How to compare two models (see :func:`padiff_ir.match` for each option).

    Attributes:
        atol, rtol, compare_mode: the default tolerance (``compare_mode`` is ``strict``,
            ``mean`` or ``abs_mean``).
        layer_map: a ``LayerMap`` or a dict of pins ``{path_a: path_b}``, or None.
        assign_weights: first copy A's weights into B through the parameter map.
        tolerances: per-tensor overrides, ``{tensor of A: {"atol": ..., "rtol": ...}}``.
        localize: measure own errors and find culprits.
        providers: onnxruntime execution providers.
        memory_budget: bytes of activations kept in RAM per model (None: no limit).
        opset: ONNX opset to export with (None: the exporter's default).
        progress: called with a short message as each stage starts (the CLI prints them).

    Raises:
        ValueError: an unknown compare mode or a negative tolerance (checked on creation).
    """

    atol: float = 1e-5
    rtol: float = 1e-5
    compare_mode: str = "strict"
    layer_map: Any = None
    assign_weights: bool = False
    tolerances: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    localize: bool = True
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    memory_budget: int | None = None
    opset: int | None = None
    progress: Callable[[str], None] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "providers", tuple(self.providers))
        object.__setattr__(self, "tolerances", MappingProxyType(
            {str(name): dict(tol) for name, tol in (self.tolerances or {}).items()}))
        # build the tolerances once now: a bad mode or bound fails here, not mid-run
        _ = self.tolerance, self.overrides

    @property
    def tolerance(self) -> Tolerance:
        """The default tolerance of every pair."""
        return Tolerance(atol=self.atol, rtol=self.rtol, mode=self.compare_mode)

    @property
    def overrides(self) -> dict[str, Tolerance]:
        """Tensor of A -> its tolerance, for the tensors named in :attr:`tolerances`."""
        base = {"atol": self.atol, "rtol": self.rtol, "mode": self.compare_mode}
        return {name: Tolerance(**{**base, **tol}) for name, tol in self.tolerances.items()}
