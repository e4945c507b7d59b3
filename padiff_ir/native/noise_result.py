"""What ``auto_diff(..., tolerance="auto")`` measured, as data (``DiffResult.noise``).

Each judged entry (a layer output or gradient, a parameter gradient, a running statistic, the
loss) carries a :class:`~padiff_ir.pairing.noise_floor.NoiseFloor`: ``noise`` is the mean
absolute rounding error of A in its working dtype against A's float64 shadow through the same
step, ``error`` the mean absolute difference of B from A as run, ``bound`` what the error must
stay within (see :mod:`padiff_ir.native._noise`).

Example:
    >>> from padiff_ir.pairing.noise_floor import NoiseFloor
    >>> entry = NoiseEntry("forward", "fc", "output",
    ...                    NoiseFloor(noise=1e-4, error=5e-5, bound=3e-4, scale=1e3, numel=64))
    >>> TrainingNoise("float64 shadow", "float32", (entry,)).worst.label
    'fc'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from padiff_ir.pairing.noise_floor import NoiseFloor

__all__ = ["NoiseEntry", "TrainingNoise"]


@dataclass(frozen=True)
class NoiseEntry:
    """One compared tensor against its measured noise.

    Attributes:
        stage: the step list it belongs to (``forward``, ``backward``, ``grads``,
            ``buffers``, ``loss``).
        label: the layer (``layer3.1.bn2``, ``pool #2``) or parameter name.
        kind: the entry's kind (``output``, ``input_grad``, ``grad``...).
        floor: its error, noise and bound.
        step: the step index.
    """

    stage: str
    label: str
    kind: str
    floor: NoiseFloor
    step: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "label": self.label,
            "kind": self.kind,
            "floor": self.floor.to_dict(),
            "step": self.step,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NoiseEntry:
        data = dict(data)
        data["floor"] = NoiseFloor.from_dict(data["floor"])
        return cls(**data)


@dataclass(frozen=True)
class TrainingNoise:
    """The floors of one ``auto_diff`` call.

    Attributes:
        method: how the noise was measured (``"float64 shadow"``).
        dtype: A's working dtype.
        entries: every judged entry, in the steps' order.
        unmeasured: entries without a floor (post-step weights, optimizer states, inputs),
            judged by the fixed tolerance.
        seconds: time the shadow run took.
        sentence: the verdict in units of noise (``aligned within numerical noise (worst
            0.1x noise at `fc`)``, ``diverged: `1` output error 2525x its noise``).
    """

    method: str
    dtype: str
    entries: tuple[NoiseEntry, ...] = ()
    unmeasured: int = 0
    seconds: float = 0.0
    sentence: str = ""

    @property
    def worst(self) -> NoiseEntry | None:
        """The entry furthest into its bound (None without entries)."""
        return max(self.entries, key=lambda e: e.floor.ratio, default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "dtype": self.dtype,
            "entries": [e.to_dict() for e in self.entries],
            "unmeasured": self.unmeasured,
            "seconds": self.seconds,
            "sentence": self.sentence,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingNoise:
        return cls(
            method=str(data["method"]),
            dtype=str(data["dtype"]),
            entries=tuple(NoiseEntry.from_dict(e) for e in data.get("entries", ())),
            unmeasured=int(data.get("unmeasured", 0)),
            seconds=float(data.get("seconds", 0.0)),
            sentence=str(data.get("sentence", "")),
        )
