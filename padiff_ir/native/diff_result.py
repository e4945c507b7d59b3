"""What :func:`~padiff_ir.native.auto_diff` returns: per-step metrics of a training comparison.

A :class:`DiffResult` is data: ``bool(result)`` is the verdict (``result == False`` works as in
PaDiff's examples), :attr:`DiffResult.first_difference` says at which stage (``input``,
``weights``, ``forward``, ``loss``, ``backward``, ``optimizer``), step and layer the models first
disagree, and every step keeps its metrics (inputs, layer outputs, running statistics, loss,
output and input gradients, parameter gradients, weights and optimizer state after the update).
Every metric is a :class:`~padiff_ir.metrics.TensorMetrics`; the JSON round trip
(:meth:`DiffResult.to_json` / :meth:`DiffResult.load`) keeps all of it, and ``str(result)``
renders the terminal summary from the data alone.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from padiff_ir._result import VerdictResult
from padiff_ir.matching.types import ModulePair, Unmatched
from padiff_ir.metrics import TensorMetrics, Tolerance
from padiff_ir.native.noise_result import TrainingNoise

__all__ = [
    "STAGES",
    "STEP_LISTS",
    "DiffResult",
    "FirstDifference",
    "InputDiff",
    "LayerDiff",
    "ParamDiff",
    "StepResult",
]

STAGES = ("input", "weights", "forward", "loss", "backward", "optimizer")
"""The stages of a step, in the order they run."""


def _metrics(data: dict[str, Any] | None) -> TensorMetrics | None:
    return TensorMetrics.from_dict(data) if data is not None else None


def _number_out(value: float | None) -> float | str | None:
    """JSON has no NaN/Inf: those become strings."""
    if value is not None and not math.isfinite(value):
        return repr(value)
    return value


def _number_in(value: float | str | None) -> float | None:
    return float(value) if value is not None else None


#: The comparisons a step makes, in order: the fields of :class:`StepResult` holding lists.
STEP_LISTS = (
    "inputs",
    "initial_weights",
    "forward",
    "buffers",
    "backward",
    "grads",
    "weights",
    "optimizer_state",
)


@dataclass(frozen=True)
class InputDiff:
    """One model input as the two sides received it (values after conversion).

    Attributes:
        name: the argument name, or ``#i`` for positional inputs.
        metrics: A's input vs B's.
    """

    name: str
    metrics: TensorMetrics

    @property
    def ok(self) -> bool:
        return self.metrics.ok

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "metrics": self.metrics.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputDiff:
        return cls(data["name"], TensorMetrics.from_dict(data["metrics"]))


@dataclass(frozen=True)
class LayerDiff:
    """One tensor of a matched layer pair: an output, its gradient, or an input gradient.

    Attributes:
        module_a / module_b, class_a / class_b: the layer pair.
        kind: ``"output"`` (forward), ``"output_grad"`` (gradient reaching the layer's output)
            or ``"input_grad"`` (gradient the layer passes to its input).
        metrics: A vs B.
        call: which call of the layer in the step (0 for the first).
        position: which output (or input) tensor.
        order: place in the step's timeline: forward entries by completion, backward entries in
            the order a backward pass reaches them.
        base_a / base_b: the framework's layer class each layer is (``Linear`` for a subclass
            of ``nn.Linear``; see ``Framework.base_layer``).
    """

    module_a: str
    module_b: str
    class_a: str
    class_b: str
    kind: str
    metrics: TensorMetrics
    call: int = 0
    position: int = 0
    order: float = 0.0
    base_a: str = ""
    base_b: str = ""

    @property
    def ok(self) -> bool:
        return self.metrics.ok

    def label(self) -> str:
        text = self.module_a or "<root>"
        if self.module_b != self.module_a:
            text += f" / {self.module_b or '<root>'}"
        if self.call:  # a layer called several times on both sides alike: its call (#2)
            text += f" #{self.call + 1}"
        if self.position:
            text += f" [{self.position}]"
        return text

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["metrics"] = self.metrics.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LayerDiff:
        data = dict(data)
        data["metrics"] = TensorMetrics.from_dict(data["metrics"])
        return cls(**data)


@dataclass(frozen=True)
class ParamDiff:
    """A parameter or buffer pair (through its layout transform): values, gradient or state.

    Attributes:
        name_a / name_b: parameter names (several joined by ``+`` for a split/concat group).
        module_a / module_b: the owning layers.
        kind: ``"weight"`` (values), ``"buffer"`` (running statistics after the forward),
            ``"grad"``, or an optimizer state name (``exp_avg``, ``momentum_buffer``...).
        metrics: A (in B's layout) vs B.
        order: place in the step's timeline (as in :class:`LayerDiff`).
    """

    name_a: str
    name_b: str
    module_a: str
    module_b: str
    kind: str
    metrics: TensorMetrics
    order: float = 0.0

    @property
    def ok(self) -> bool:
        return self.metrics.ok

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["metrics"] = self.metrics.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParamDiff:
        data = dict(data)
        data["metrics"] = TensorMetrics.from_dict(data["metrics"])
        return cls(**data)


def _count(items: list[Any]) -> tuple[int, int]:
    return sum(1 for i in items if i.ok), len(items)


@dataclass
class StepResult:
    """Everything compared in one training step.

    Attributes:
        index: the step (0-based within the call).
        mode: ``"normal"`` or ``"single_step"`` (B's layers fed A's inputs and output grads).
        inputs: the two sides' inputs.
        initial_weights: weights before the step (step 0 of a call with ``auto_init=False``).
        forward: layer outputs, in completion order.
        buffers: running statistics after the forward.
        loss_a / loss_b: the loss values; ``loss``: their comparison.
        backward: output and input gradients of the layers, in backward order.
        grads: parameter gradients (A's through the layout transform vs B's).
        weights: parameter values after the optimizer step.
        optimizer_state: optimizer state after the step, where both sides expose it.
        timings: seconds per stage.
        inputs_differ: single step: the layers whose inputs in B differed from A's although
            every layer before them was fed A's outputs (code between layers differs).
    """

    index: int
    mode: str = "normal"
    inputs: list[InputDiff] = field(default_factory=list)
    initial_weights: list[ParamDiff] = field(default_factory=list)
    forward: list[LayerDiff] = field(default_factory=list)
    buffers: list[ParamDiff] = field(default_factory=list)
    loss_a: float | None = None
    loss_b: float | None = None
    loss: TensorMetrics | None = None
    backward: list[LayerDiff] = field(default_factory=list)
    grads: list[ParamDiff] = field(default_factory=list)
    weights: list[ParamDiff] = field(default_factory=list)
    optimizer_state: list[ParamDiff] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    inputs_differ: list[str] = field(default_factory=list)

    _LISTS = STEP_LISTS

    @property
    def ok(self) -> bool:
        lists_ok = all(item.ok for name in self._LISTS for item in getattr(self, name))
        return lists_ok and (self.loss is None or self.loss.ok)

    def counts(self) -> dict[str, tuple[int, int]]:
        """``{list name: (ok, total)}`` for the summary."""
        return {name: _count(getattr(self, name)) for name in self._LISTS}

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "index": self.index,
            "mode": self.mode,
            "loss_a": _number_out(self.loss_a),
            "loss_b": _number_out(self.loss_b),
            "loss": self.loss.to_dict() if self.loss is not None else None,
            "timings": dict(self.timings),
            "inputs_differ": list(self.inputs_differ),
        }
        for name in self._LISTS:
            data[name] = [item.to_dict() for item in getattr(self, name)]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StepResult:
        layer_lists = {"forward", "backward"}
        kwargs: dict[str, Any] = {}
        for name in cls._LISTS:
            item_cls = (
                InputDiff if name == "inputs" else (LayerDiff if name in layer_lists else ParamDiff)
            )
            kwargs[name] = [item_cls.from_dict(item) for item in data.get(name, ())]
        return cls(
            index=int(data["index"]),
            mode=data.get("mode", "normal"),
            loss_a=_number_in(data.get("loss_a")),
            loss_b=_number_in(data.get("loss_b")),
            loss=_metrics(data.get("loss")),
            timings=dict(data.get("timings", {})),
            inputs_differ=list(data.get("inputs_differ", ())),
            **kwargs,
        )


@dataclass(frozen=True)
class FirstDifference:
    """Where the two models first disagree, and what that suggests.

    Attributes:
        stage: one of :data:`STAGES`.
        step: the step index.
        module_a / module_b, class_a / class_b: the layer pair ('' when not a layer).
        name_a / name_b: the tensor (input name, parameter names, ``output_grad``...).
        kind: the entry's kind (``output``, ``input_grad``, ``grad``, ``exp_avg``...).
        metrics: A vs B there.
        message: a sentence for the user.
    """

    stage: str
    step: int
    metrics: TensorMetrics | None
    message: str
    module_a: str = ""
    module_b: str = ""
    class_a: str = ""
    class_b: str = ""
    name_a: str = ""
    name_b: str = ""
    kind: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["metrics"] = self.metrics.to_dict() if self.metrics is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FirstDifference:
        data = dict(data)
        data["metrics"] = _metrics(data.get("metrics"))
        return cls(**data)


@dataclass
class DiffResult(VerdictResult):
    """The answer of :func:`~padiff_ir.native.auto_diff`: do the two models train alike?

    ``bool(result)`` is the verdict; ``result == False`` compares it with a bool.
    ``str(result)`` is a terminal summary.

    Attributes:
        ok: no difference at any stage of any step.
        tolerance: atol, rtol and compare mode used for every comparison.
        options: the run's settings (``single_step``, ``diff_phase``, ``steps``...).
        model_a / model_b: ``{"framework", "class", "parameters"}`` per side.
        layer_map: the module pairs compared; ``unmatched``: what had no partner.
        steps: one :class:`StepResult` per step.
        first_difference: the earliest failing entry (``None`` when ok).
        culprits: with ``single_step``, every layer whose own forward differs (B's layer fed
            A's inputs), in the order the layers ran; a layer called several times is named
            by its call (``pool#2``). Otherwise the first difference when it is a layer's.
        config_differences: settings that differ between matched layers or the optimizers.
        random_layers: layers with random outputs in training mode, and what was done.
        notes: remarks (arguments reordered, options adjusted, hooks that could not be used).
        environment: framework versions. timings: seconds per stage over the call.
        noise: with ``tolerance="auto"``, every judged entry's measured noise floor.
    """

    ok: bool
    tolerance: Tolerance
    options: dict[str, Any] = field(default_factory=dict)
    model_a: dict[str, Any] = field(default_factory=dict)
    model_b: dict[str, Any] = field(default_factory=dict)
    layer_map: list[ModulePair] = field(default_factory=list)
    unmatched: list[Unmatched] = field(default_factory=list)
    steps: list[StepResult] = field(default_factory=list)
    first_difference: FirstDifference | None = None
    culprits: list[FirstDifference] = field(default_factory=list)
    config_differences: list[str] = field(default_factory=list)
    random_layers: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    noise: TrainingNoise | None = None

    __eq__ = VerdictResult.__eq__  # dataclass(eq=True) would replace the mixin's
    __hash__ = None
    summary_module: ClassVar[str] = "padiff_ir.native.diff_summary"

    def __repr__(self) -> str:
        verdict = "aligned" if self.ok else "diverged"
        where = ""
        if self.first_difference is not None:
            fd = self.first_difference
            where = f", first={fd.stage}@step{fd.step}:{fd.module_a or fd.name_a or '-'}"
        return f"DiffResult({verdict}, steps={len(self.steps)}{where})"

    @property
    def losses(self) -> list[tuple[float | None, float | None]]:
        """``(loss_a, loss_b)`` per step."""
        return [(s.loss_a, s.loss_b) for s in self.steps]

    # -- serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "auto_diff",
            "ok": self.ok,
            "tolerance": asdict(self.tolerance),
            "options": dict(self.options),
            "model_a": dict(self.model_a),
            "model_b": dict(self.model_b),
            "layer_map": [p.to_dict() for p in self.layer_map],
            "unmatched": [u.to_dict() for u in self.unmatched],
            "steps": [s.to_dict() for s in self.steps],
            "first_difference": (
                self.first_difference.to_dict() if self.first_difference is not None else None
            ),
            "culprits": [c.to_dict() for c in self.culprits],
            "config_differences": list(self.config_differences),
            "random_layers": list(self.random_layers),
            "notes": list(self.notes),
            "environment": dict(self.environment),
            "timings": dict(self.timings),
            "noise": self.noise.to_dict() if self.noise is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DiffResult:
        first = data.get("first_difference")
        return cls(
            ok=bool(data["ok"]),
            tolerance=Tolerance(**data["tolerance"]),
            options=dict(data.get("options", {})),
            model_a=dict(data.get("model_a", {})),
            model_b=dict(data.get("model_b", {})),
            layer_map=[ModulePair.from_dict(p) for p in data.get("layer_map", ())],
            unmatched=[Unmatched.from_dict(u) for u in data.get("unmatched", ())],
            steps=[StepResult.from_dict(s) for s in data.get("steps", ())],
            first_difference=FirstDifference.from_dict(first) if first else None,
            culprits=[FirstDifference.from_dict(c) for c in data.get("culprits", ())],
            config_differences=list(data.get("config_differences", ())),
            random_layers=list(data.get("random_layers", ())),
            notes=list(data.get("notes", ())),
            environment=dict(data.get("environment", {})),
            timings=dict(data.get("timings", {})),
            noise=TrainingNoise.from_dict(data["noise"]) if data.get("noise") else None,
        )
