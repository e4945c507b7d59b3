"""The numerical noise of a comparison, as data: what ``tolerance="auto"`` measured.

Each compared tensor (a module's outputs, the model's outputs) has a :class:`NoiseFloor`: how
far A, run in the working dtype, is from A's float64 shadow (its rounding error, the
*noise*), how far B is from that shadow (the *error*), and the bound the error must stay
within (``multiplier * noise`` plus a floor of a few units in the last place of the working
dtype, for values near zero). ``ratio`` is the error in units of that bound: at most 1 passes.

Example:
    >>> floor = NoiseFloor(noise=1e-6, error=3e-6, bound=2.1e-6, scale=1.0, numel=64)
    >>> floor.ok, round(floor.ratio, 2)
    (False, 1.43)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from padiff_ir.pairing.noise_floor import NoiseFloor

__all__ = ["ModuleNoise", "NoiseFloor", "NoiseVerdict"]


@dataclass(frozen=True)
class ModuleNoise:
    """A module pair's outputs and own error, each against its noise.

    Attributes:
        module_a / module_b: the module pair (call sites, ``pool#2``).
        output: B's module outputs as run vs the shadow's (None when not measured).
        own: B's module fed the shadow's inputs vs the shadow's outputs, against A's module
            alone in the working dtype on the same inputs (its own noise); measured for the
            modules whose outputs leave their noise (None otherwise).
    """

    module_a: str
    module_b: str
    output: NoiseFloor | None = None
    own: NoiseFloor | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "module_a": self.module_a,
            "module_b": self.module_b,
            "output": self.output.to_dict() if self.output is not None else None,
            "own": self.own.to_dict() if self.own is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModuleNoise:
        output, own = data.get("output"), data.get("own")
        return cls(
            module_a=data["module_a"],
            module_b=data["module_b"],
            output=NoiseFloor.from_dict(output) if output else None,
            own=NoiseFloor.from_dict(own) if own else None,
        )


@dataclass(frozen=True)
class NoiseVerdict:
    """What ``tolerance="auto"`` measured and concluded.

    Attributes:
        method: ``"float64 shadow"`` or ``"perturbation"`` (where A cannot run in float64).
        dtype: the working dtype (the lower precision of the two models').
        multiplier: ``m`` of the bound (2; 3 for a 16-bit working dtype).
        outputs: the model's outputs, each against its noise.
        modules: every measured module pair, in A's order.
        culprits: the modules whose own error leaves their own noise (innermost first).
        sentence: the verdict in words (``aligned within numerical noise (worst 1.8x noise
            at `layer3.1.bn2`)``).
        seconds: time of each run (``reference``, ``shadow``, ``b``, ``own``).
    """

    method: str
    dtype: str
    multiplier: float
    outputs: tuple[NoiseFloor, ...] = ()
    modules: tuple[ModuleNoise, ...] = ()
    culprits: tuple[str, ...] = ()
    sentence: str = ""
    seconds: tuple[tuple[str, float], ...] = ()

    @property
    def ok(self) -> bool:
        return all(floor.ok for floor in self.outputs)

    def module(self, site: str) -> ModuleNoise | None:
        """The measurement of module ``site`` of A (None if not measured)."""
        return next((m for m in self.modules if m.module_a == site), None)

    def worst(self) -> tuple[str, float]:
        """The module whose outputs are furthest from the shadow, in units of noise."""
        best = ("", 0.0)
        for module in self.modules:
            if module.output is not None and module.output.ratio > best[1]:
                best = (module.module_a, module.output.ratio)
        return best

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "dtype": self.dtype,
            "multiplier": self.multiplier,
            "outputs": [floor.to_dict() for floor in self.outputs],
            "modules": [module.to_dict() for module in self.modules],
            "culprits": list(self.culprits),
            "sentence": self.sentence,
            "seconds": dict(self.seconds),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NoiseVerdict:
        return cls(
            method=data["method"],
            dtype=data["dtype"],
            multiplier=float(data["multiplier"]),
            outputs=tuple(NoiseFloor.from_dict(f) for f in data.get("outputs", ())),
            modules=tuple(ModuleNoise.from_dict(m) for m in data.get("modules", ())),
            culprits=tuple(data.get("culprits", ())),
            sentence=data.get("sentence", ""),
            seconds=tuple((str(k), float(v)) for k, v in data.get("seconds", {}).items()),
        )
