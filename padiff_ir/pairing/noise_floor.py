"""One tensor judged against its own numerical noise: the bound of ``tolerance="auto"``.

A tensor's *noise* is how far A, run in the working dtype, is from A's float64 shadow (its
rounding error); its *error* is how far B is from the shadow. B passes where the error stays
within ``m * noise`` plus a floor of a few units in the last place of the working dtype times
the tensor's size of numbers (for values near zero), ``m = 2``, 3 for a 16-bit dtype or a
small tensor (torch's dynamo accuracy check). ``match`` (``compare/noise.py``) and
``auto_diff`` (``native/_noise.py``) both judge with :func:`noise_bound` and :class:`NoiseFloor`.

Example:
    >>> floor = NoiseFloor(noise=1e-6, error=3e-6, bound=2.1e-6, scale=1.0, numel=64)
    >>> floor.ok, round(floor.ratio, 2)
    (False, 1.43)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from padiff_ir.errors import OptionError
from padiff_ir.metrics import Tolerance

__all__ = [
    "SMALL",
    "TOLERANCE_CHOICES",
    "NoiseFloor",
    "auto_tolerance",
    "epsilon_of",
    "lower_precision",
    "multiplier_of",
    "noise_bound",
    "times_noise",
]

SMALL = 1000
"""A tensor under this many elements takes the 16-bit multiplier."""
_FLOOR_ULPS = 4.0  # the floor: this many units in the last place times the tensor's scale
_EPSILON = {"float64": 2.0**-52, "float32": 2.0**-23, "float16": 2.0**-10, "bfloat16": 2.0**-7}
_SIXTEEN_BIT = ("float16", "bfloat16")


TOLERANCE_CHOICES = ("auto", "fixed")
"""The words ``tolerance=`` takes besides a :class:`~padiff_ir.metrics.Tolerance`."""


def auto_tolerance(
    tolerance: Tolerance | str | None,
    atol: float | None = None,
    rtol: float | None = None,
    compare_mode: str | None = None,
) -> bool:
    """Whether a call judges against measured noise: ``tolerance="auto"``, or nothing said
    about the tolerance at all (the default). ``"fixed"``, a
    :class:`~padiff_ir.metrics.Tolerance`, or any of ``atol`` / ``rtol`` / ``compare_mode``
    passed (not None) without ``"auto"``: fixed bounds, as before ``"auto"`` existed.

    Raises:
        OptionError: ``tolerance`` is none of those.

    Examples:
        >>> auto_tolerance(None), auto_tolerance("auto"), auto_tolerance("fixed")
        (True, True, False)
        >>> auto_tolerance(None, atol=1e-4), auto_tolerance("auto", atol=1e-4)
        (False, True)
    """
    if isinstance(tolerance, Tolerance):
        return False
    if tolerance is not None and tolerance not in TOLERANCE_CHOICES:
        raise OptionError(
            "tolerance must be 'auto' (measured noise, the default), 'fixed' (atol/rtol), a "
            f"Tolerance or None, got {tolerance!r}",
            option="tolerance",
        )
    if tolerance is None:
        return atol is None and rtol is None and compare_mode is None
    return tolerance == "auto"


def epsilon_of(dtype: str) -> float:
    """The machine epsilon of a floating dtype by name (float32's for an unknown name).

    Example:
        >>> epsilon_of("float16")
        0.0009765625
    """
    return _EPSILON.get(dtype, _EPSILON["float32"])


def lower_precision(*dtypes: str) -> str:
    """The lowest precision of floating dtypes by name (a bfloat16 model against a float32
    one computes in bfloat16; float32 where none is a floating dtype).

    Example:
        >>> lower_precision("float32", "bfloat16"), lower_precision("int64")
        ('bfloat16', 'float32')
    """
    known = [d for d in dtypes if d in _EPSILON] or ["float32"]
    return max(known, key=epsilon_of)


def multiplier_of(dtype: str, numel: int, base: float = 2.0) -> float:
    """``m`` of the bound: ``base`` (2), 3 for a 16-bit dtype or a small tensor.

    Examples:
        >>> multiplier_of("float32", 4096), multiplier_of("bfloat16", 4096)
        (2.0, 3.0)
        >>> multiplier_of("float32", 10)
        3.0
    """
    return 3.0 if dtype in _SIXTEEN_BIT or numel < SMALL else base


def times_noise(ratio: float, what: str = "its noise") -> str:
    """``1.8x its noise``, ``2400x its noise``; an infinite ratio (a shape or a NaN slip) in
    words.

    Example:
        >>> times_noise(1.84), times_noise(2412.0)
        ('1.8x its noise', '2412x its noise')
    """
    if math.isinf(ratio):
        return "beyond any noise (shapes or NaN differ)"
    return f"{ratio:.1f}x {what}" if ratio < 10 else f"{ratio:.0f}x {what}"


def noise_bound(noise: float, scale: float, dtype: str, numel: int, base: float = 2.0) -> float:
    """What a tensor's error must stay within: ``m * noise`` plus the dtype floor
    (``4 * epsilon * scale``); ``base`` is ``m`` for a large tensor in a 32-bit dtype.

    Example:
        >>> noise_bound(1e-6, 1.0, "float32", 4096) > 2e-6
        True
    """
    return multiplier_of(dtype, numel, base) * noise + _FLOOR_ULPS * epsilon_of(dtype) * scale


@dataclass(frozen=True)
class NoiseFloor:
    """One tensor (or the tensors of one module call together) measured against its noise.

    Attributes:
        noise: RMSE of A in the working dtype against A's float64 shadow (with the
            perturbation method: the RMSE spread of A under inputs perturbed at the dtype's
            epsilon).
        error: RMSE of B against the shadow (perturbation: against A as run).
        bound: what ``error`` must stay within: ``multiplier * noise`` plus the dtype floor.
        scale: root mean square of the shadow's values (the tensor's size of numbers).
        numel: elements measured.
        peak_noise: the largest elementwise rounding error of A (``max |A - A64|``).
        peak: the largest magnitude of the shadow's values.
    """

    noise: float
    error: float
    bound: float
    scale: float
    numel: int
    peak_noise: float = 0.0
    peak: float = 0.0

    @property
    def ratio(self) -> float:
        """The error in units of its bound (0 for no error, ``inf`` for an error where the
        bound is 0)."""
        if self.error == 0:
            return 0.0
        return self.error / self.bound if self.bound > 0 else math.inf

    @property
    def ok(self) -> bool:
        return self.ratio <= 1.0

    def within_peak(self, max_abs: float, multiplier: float, epsilon: float) -> bool:
        """Whether an elementwise difference ``max_abs`` of one module's two runs stays within
        ``multiplier`` times A's largest rounding error plus a few units in the last place of
        the largest value (an exporter's rounding, not a fault)."""
        return max_abs <= self.peak_bound(multiplier, epsilon)

    def peak_bound(self, multiplier: float, epsilon: float) -> float:
        """What an elementwise difference inside this tensor's module stays within when it
        is rounding: ``multiplier`` times A's largest rounding error plus a few units in the
        last place of the largest value (:meth:`within_peak`; the report's scale for ops)."""
        return multiplier * self.peak_noise + _FLOOR_ULPS * epsilon * self.peak

    def to_dict(self) -> dict[str, Any]:
        return {key: _finite(value) for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NoiseFloor:
        return cls(**{key: _number(value) for key, value in data.items()})


def _finite(value: Any) -> Any:
    return repr(value) if isinstance(value, float) and not math.isfinite(value) else value


def _number(value: Any) -> Any:
    return float(value) if isinstance(value, str) else value
