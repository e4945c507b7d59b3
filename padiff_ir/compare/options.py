"""The options of one ``match`` run, as one frozen value.

:func:`padiff_ir.match` takes them as keyword arguments and builds a :class:`MatchOptions`; the
pipeline (:func:`padiff_ir.compare.pipeline.match`) and its stages read them from there.

Example:
    >>> MatchOptions().auto_tolerance  # nothing said of the tolerance: measured noise
    True
    >>> options = MatchOptions(atol=1e-4, tolerances={"logits": {"atol": 1e-2}})
    >>> options.tolerance, options.auto_tolerance
    (Tolerance(atol=0.0001, rtol=1e-05, mode='strict'), False)
    >>> options.overrides["logits"].atol
    0.01
    >>> MatchOptions(tolerance=Tolerance(atol=1e-3, mode="mean")).compare_mode
    'mean'
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from padiff_ir.errors import OptionError
from padiff_ir.metrics import COMPARE_MODES, Tolerance, check_bound, tolerance_of
from padiff_ir.pairing.noise_floor import auto_tolerance

__all__ = ["MatchOptions", "auto_tolerance"]

logger = logging.getLogger(__name__)

_TOLERANCE_KEYS = ("atol", "rtol", "mode")

_UNSET = Tolerance()
"""``MatchOptions.tolerance`` when not passed: ``atol``, ``rtol`` and ``compare_mode`` make it."""


def _providers(providers: Any) -> tuple[str, ...]:
    if isinstance(providers, str):
        providers = (providers,)
    try:
        values = tuple(providers)
    except TypeError:
        values = (providers,)
    if not values or not all(isinstance(p, str) and p for p in values):
        raise OptionError(
            f"providers must be a sequence of onnxruntime execution provider "
            f"names such as ('CPUExecutionProvider',), got {providers!r}",
            option="providers",
        )
    return values


def _tolerances(tolerances: Any) -> dict[str, dict[str, Any]]:
    """``tolerances`` checked: tensor name -> ``{"atol", "rtol", "mode"}`` (a subset; a
    :class:`Tolerance` gives all three)."""
    if tolerances is None:
        return {}
    if not isinstance(tolerances, Mapping):
        raise OptionError(
            f"tolerances must be a dict {{tensor of A: {{'atol': ..., 'rtol': "
            f"...}}}}, got {type(tolerances).__name__}",
            option="tolerances",
        )
    checked: dict[str, dict[str, Any]] = {}
    for name, tol in tolerances.items():
        if not isinstance(name, str) or not name:
            raise OptionError(
                f"tolerances: keys must be tensor names of model A, got {name!r}",
                option="tolerances",
            )
        if isinstance(tol, Tolerance):
            tol = asdict(tol)
        if not isinstance(tol, Mapping):
            raise OptionError(
                f"tolerances[{name!r}] must be a dict with keys among "
                f"{', '.join(_TOLERANCE_KEYS)} (or a padiff_ir.Tolerance), got {tol!r}",
                option="tolerances",
            )
        unknown = sorted(str(k) for k in tol if k not in _TOLERANCE_KEYS)
        if unknown:
            raise OptionError(
                f"tolerances[{name!r}] has unknown keys {unknown}: the keys are "
                f"{', '.join(_TOLERANCE_KEYS)}",
                option="tolerances",
            )
        entry = dict(tol)
        for key in ("atol", "rtol"):
            if key in entry:
                entry[key] = check_bound(
                    f"tolerances[{name!r}][{key!r}]", entry[key], option="tolerances"
                )
        if "mode" in entry and entry["mode"] not in COMPARE_MODES:
            raise OptionError(
                f"tolerances[{name!r}]['mode'] {entry['mode']!r} is not one of "
                f"{', '.join(COMPARE_MODES)}",
                option="tolerances",
            )
        checked[name] = entry
    return checked


@dataclass(frozen=True)
class MatchOptions:
    """How to compare two models (see :func:`padiff_ir.match` for each option).

    Attributes:
        atol, rtol, compare_mode: the fixed tolerance (``compare_mode`` is ``strict``,
            ``mean`` or ``abs_mean``); None: not passed (``1e-5``, ``1e-5``, ``strict``).
            After creation always numbers and a mode.
        layer_map: a ``LayerMap`` or a dict of pins ``{path_a: path_b}``, or None.
        assign_weights: first copy A's weights into B through the parameter map.
        tolerances: per-tensor overrides, ``{tensor of A: {"atol": ..., "rtol": ...}}`` or
            ``{tensor of A: Tolerance(...)}``.
        localize: measure own errors and find culprits.
        providers: onnxruntime execution providers.
        memory_budget: bytes of activations kept in RAM per model (None: no limit).
        opset: ONNX opset to export with (None: the exporter's default).
        progress: called with a short message as each stage starts (the CLI prints them).
        tolerance: the default tolerance as one :class:`~padiff_ir.metrics.Tolerance`, instead
            of ``atol``, ``rtol`` and ``compare_mode`` (which then take its values); after
            creation always the default tolerance.
        auto_tolerance: judge the result against each tensor's measured numerical noise
            (``tolerance="auto"``, :mod:`padiff_ir.compare.noise_verdict`) instead of
            ``atol``/``rtol`` alone. None (not passed): measured noise unless a fixed
            tolerance was passed (``atol``, ``rtol``, ``compare_mode`` or ``tolerance``), as
            :func:`padiff_ir.match` decides.

    Raises:
        OptionError: an option with a value it cannot take (a NaN, negative or non-number
            tolerance, an unknown compare mode, a malformed ``tolerances`` entry, an opset out
            of range...), checked on creation, before anything is exported; the message names
            the option and the values it accepts.
    """

    atol: float | None = None
    rtol: float | None = None
    compare_mode: str | None = None
    layer_map: Any = None
    assign_weights: bool = False
    tolerances: Mapping[str, Mapping[str, float | str] | Tolerance] = field(default_factory=dict)
    localize: bool = True
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    memory_budget: int | None = None
    opset: int | None = None
    progress: Callable[[str], None] | None = field(default=None, compare=False)
    tolerance: Tolerance = _UNSET
    auto_tolerance: bool | None = None

    def __post_init__(self) -> None:
        if self.auto_tolerance is None:  # nothing said of the tolerance: measured noise
            given = None if self.tolerance is _UNSET else self.tolerance
            measured = auto_tolerance(given, self.atol, self.rtol, self.compare_mode)
            object.__setattr__(self, "auto_tolerance", measured)
        self._settle_tolerance()
        object.__setattr__(self, "atol", self.tolerance.atol)
        object.__setattr__(self, "rtol", self.tolerance.rtol)
        for name in ("assign_weights", "localize", "auto_tolerance"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise OptionError(
                    f"{name} must be True or False, got {getattr(self, name)!r}", option=name
                )
        object.__setattr__(self, "providers", _providers(self.providers))
        object.__setattr__(self, "tolerances", MappingProxyType(_tolerances(self.tolerances)))
        if self.memory_budget is not None and (
            isinstance(self.memory_budget, bool)
            or not isinstance(self.memory_budget, (int, np.integer))
            or self.memory_budget <= 0
        ):
            raise OptionError(
                f"memory_budget must be a number of bytes > 0 (or None: no "
                f"limit), got {self.memory_budget!r}",
                option="memory_budget",
            )
        from padiff_ir.exporters import check_opset

        check_opset(self.opset)
        if self.progress is not None and not callable(self.progress):
            raise OptionError(
                f"progress must be a callable taking a message (or None), got "
                f"{type(self.progress).__name__}",
                option="progress",
            )
        # build the tolerances once now: a bad mode or bound fails here, not mid-run
        _ = self.overrides

    def _settle_tolerance(self) -> None:
        """One default tolerance: ``tolerance`` when passed (``atol``, ``rtol`` and
        ``compare_mode`` left as they are or equal to it), else made of those three."""
        given = None if self.tolerance is _UNSET else self.tolerance
        mode = self.compare_mode
        if (
            given is None
            and mode is not None
            and (not isinstance(mode, str) or mode not in COMPARE_MODES)
        ):
            raise OptionError(
                f"compare_mode {mode!r} is not a compare mode: pass one of "
                f"{', '.join(COMPARE_MODES)}",
                option="compare_mode",
            )
        tolerance = tolerance_of(given, self.atol, self.rtol, self.compare_mode, defaults=_UNSET)
        object.__setattr__(self, "tolerance", tolerance)
        object.__setattr__(self, "compare_mode", tolerance.mode)

    @property
    def overrides(self) -> dict[str, Tolerance]:
        """Tensor of A -> its tolerance, for the tensors named in :attr:`tolerances`."""
        found = {}
        for name, tol in self.tolerances.items():
            entry = asdict(tol) if isinstance(tol, Tolerance) else tol
            default = self.tolerance
            found[name] = Tolerance(
                float(entry.get("atol", default.atol)),
                float(entry.get("rtol", default.rtol)),
                str(entry.get("mode", default.mode)),
            )
        return found
