"""What :func:`padiff_ir.match` returns: per-pair and per-module metrics, culprits, verdict.

Everything here is data with a JSON round trip; the terminal summary (``str(result)``) and the
HTML report render from it alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from padiff_ir._result import TextEnum, Verdict, VerdictResult, renderer
from padiff_ir.compare.noise_result import NoiseVerdict
from padiff_ir.matching.transform_types import Transform, as_transform, layer_map_entry
from padiff_ir.matching.types import ModulePair, Unmatched
from padiff_ir.metrics import TensorMetrics, Tolerance

__all__ = [
    "Culprit",
    "Departure",
    "ExportFidelity",
    "ExporterFault",
    "Fallback",
    "MatchResult",
    "ModelInfo",
    "ModuleResult",
    "ModuleStatus",
    "PairResult",
]


class ModuleStatus(TextEnum):
    """What a module pair's measurement says about it (see :class:`ModuleResult`)."""

    OK = "ok"
    CULPRIT = "culprit"
    INHERITED = "inherited"
    CONTAINS_CULPRIT = "contains-culprit"
    ACCUMULATED = "accumulated"
    UNMEASURED = "unmeasured"


def _metrics(data: dict[str, Any] | None) -> TensorMetrics | None:
    return TensorMetrics.from_dict(data) if data is not None else None


@dataclass(frozen=True)
class PairResult:
    """One matched tensor pair and how it compares.

    Attributes:
        index: position in A's data-flow order.
        a / b: tensor names (several for an N:M group).
        module_a / module_b, op_a / op_b: where the tensors come from.
        metrics: A vs B as run (error inherited from upstream included).
        own: the error of the producing op alone (B's op fed A's inputs), when measured.
        confidence / evidence: from the matching.
        not_comparable: why the values cannot be compared although the pair exists (its
            sides are laid out differently inside a module whose parameters are); such a
            pair is kept out of the verdict.
    """

    index: int
    a: tuple[str, ...]
    b: tuple[str, ...]
    module_a: str
    module_b: str
    op_a: str
    op_b: str
    metrics: TensorMetrics
    own: TensorMetrics | None = None
    confidence: float = 1.0
    evidence: tuple[str, ...] = ()
    not_comparable: str = ""

    @property
    def ok(self) -> bool:
        return self.metrics.ok or bool(self.not_comparable)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["metrics"] = self.metrics.to_dict()
        data["own"] = self.own.to_dict() if self.own is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PairResult:
        data = dict(data)
        for key in ("a", "b", "evidence"):
            data[key] = tuple(data.get(key, ()))
        data["metrics"] = TensorMetrics.from_dict(data["metrics"])
        data["own"] = _metrics(data.get("own"))
        return cls(**data)


@dataclass(frozen=True)
class ModuleResult:
    """One module pair of the layer_map: its outputs compared, and its own error.

    Attributes:
        a / b, class_a / class_b: the module pair.
        output: A's module outputs vs B's, as run.
        own: B's module recomputed from A's module inputs vs A's outputs (``None`` when not
            measured: the module's inputs could not all be paired).
        inputs: A's module inputs vs B's (the error the module inherited).
        status: a :class:`ModuleStatus` (a plain string in JSON): ``ok``; ``culprit`` (its own
            error fails); ``inherited`` (fails only because of its inputs); ``contains-culprit``
            (a container whose culprit is inside); ``accumulated`` (a container whose own error
            is only its children's rounding); ``unmeasured``.
        attribute_diffs: differing attributes of its matched ops
            (``LayerNormalization epsilon 1e-05 vs 1e-06``).
        param_diffs: its parameters whose values differ between the sides.
        depth: nesting depth of ``a`` (0 = the root model).
    """

    a: str
    b: str
    class_a: str
    class_b: str
    output: TensorMetrics | None
    own: TensorMetrics | None = None
    inputs: TensorMetrics | None = None
    status: ModuleStatus = ModuleStatus.OK
    attribute_diffs: tuple[str, ...] = ()
    param_diffs: tuple[str, ...] = ()
    depth: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", ModuleStatus(self.status))  # an old string works

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("output", "own", "inputs"):
            value = getattr(self, key)
            data[key] = value.to_dict() if value is not None else None
        data["status"] = self.status.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModuleResult:
        data = dict(data)
        for key in ("output", "own", "inputs"):
            data[key] = _metrics(data.get(key))
        for key in ("attribute_diffs", "param_diffs"):
            data[key] = tuple(data.get(key, ()))
        return cls(**data)


@dataclass(frozen=True)
class Culprit:
    """A module whose own computation differs, with the evidence.

    Attributes:
        module_a / module_b, class_a / class_b: the module pair.
        own_error: max abs error of B's module fed A's inputs.
        inherited_error: max abs error of the module's inputs.
        output_error: max abs error of its outputs as run.
        attribute_diffs / param_diffs: as in :class:`ModuleResult`.
        setting_diffs: the two modules' own settings that differ, in words (a dropout mode,
            a pooling ``ceil_mode``, an epsilon... see :mod:`padiff_ir.pairing.settings`).
        explanation: one sentence for the user.

    ``module_a`` / ``module_b`` name the call (``pool#2``) of a layer called several times.
    """

    module_a: str
    module_b: str
    class_a: str
    class_b: str
    own_error: float
    inherited_error: float
    output_error: float
    attribute_diffs: tuple[str, ...] = ()
    param_diffs: tuple[str, ...] = ()
    setting_diffs: tuple[str, ...] = ()
    explanation: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Culprit:
        data = dict(data)
        for key in ("attribute_diffs", "param_diffs", "setting_diffs"):
            data[key] = tuple(data.get(key, ()))
        return cls(**data)


@dataclass(frozen=True)
class ExporterFault:
    """Where an exporter changed what a model computes: a finding about the exporter, not
    about the models (that module's verdict comes from the eager runs instead).

    Attributes:
        side: ``"A"`` or ``"B"``, the model whose graph departs from its eager run.
        exporter: the exporter that wrote the graph (``paddle2onnx``, ``the torch dynamo
            exporter``...).
        module / module_class: the innermost module whose graph departs (its call site).
        max_abs: how far its graph, fed its eager inputs, is from its eager outputs.
        op / attribute: the op and attribute the exporter got wrong, where it can be read
            (``LeakyRelu``, ``alpha``); empty otherwise.
        written / expected: the attribute's value in the graph, and the module setting it
            stands for (``negative_slope 0.01``), where read.
        explanation: one sentence for the user.
    """

    side: str
    exporter: str
    module: str
    module_class: str
    max_abs: float
    op: str = ""
    attribute: str = ""
    written: str = ""
    expected: str = ""
    explanation: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExporterFault:
        required = {"side": "", "exporter": "", "module": "", "module_class": "", "max_abs": 0.0}
        return cls(**{**required, **data})


@dataclass(frozen=True)
class ModelInfo:
    """One side's model as a result names it (JSON: ``{"framework", "class", "nodes"}``).

    Attributes:
        framework: ``torch``, ``paddle`` or ``onnx``.
        class_name: the model's class (``class`` in JSON).
        nodes: ops in its exported graph (``0`` without one: the native fallback).
        parameters: its parameter count, where known (the native fallback's).
    """

    framework: str = "?"
    class_name: str = ""
    nodes: int = 0
    parameters: int | None = None

    def label(self, side: str) -> str:
        """``torch Net (A)``."""
        return f"{self.framework} {self.class_name or 'model'} ({side})"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "framework": self.framework,
            "class": self.class_name,
            "nodes": self.nodes,
        }
        if self.parameters is not None:
            data["parameters"] = self.parameters
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelInfo:
        parameters = data.get("parameters")
        return cls(
            framework=str(data.get("framework") or "?"),
            class_name=str(data.get("class") or ""),
            nodes=int(data.get("nodes") or 0),
            parameters=int(parameters) if parameters is not None else None,
        )


@dataclass(frozen=True)
class Fallback:
    """Which model could not be exported, so that ``match`` compared the models module by
    module instead (:mod:`padiff_ir.compare.native_match`).

    Attributes:
        side: ``"A"`` or ``"B"``.
        framework / class_name: that model's.
        reason: the export error, one line (``ExportError: ...``).
    """

    side: str
    framework: str
    class_name: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "side": self.side,
            "framework": self.framework,
            "class": self.class_name,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fallback:
        return cls(
            side=str(data.get("side", "?")),
            framework=str(data.get("framework", "")),
            class_name=str(data.get("class", "")),
            reason=str(data.get("reason", "")),
        )


@dataclass(frozen=True)
class Departure:
    """An innermost module where a side's exported graph, rerun from the module's eager
    inputs, does not give its eager outputs: where the exporter changed the computation."""

    module: str
    module_class: str = ""
    module_max_abs: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Departure:
        return cls(
            str(data["module"]),
            str(data.get("module_class", "")),
            float(data.get("module_max_abs", 0.0)),
        )


@dataclass(frozen=True)
class ExportFidelity:
    """Whether one side's exported graph reproduces its model's eager outputs.

    Attributes:
        checked: whether it was checked (not for an ONNX file: no eager run).
        ok: the graph's outputs match the eager outputs (``True`` when not checked).
        max_abs: how far they are apart.
        departures: where the exporter changed the computation, innermost modules in
            data-flow order (empty when ok, or when only rounding accumulated).

    JSON: ``{"checked": false}``, or ``{"checked", "ok", "max_abs"}`` with, where found, the
    first departure's ``module``, ``module_class``, ``module_max_abs`` and every departure
    under ``modules``.
    """

    checked: bool = False
    ok: bool = True
    max_abs: float = 0.0
    departures: tuple[Departure, ...] = ()

    @property
    def departs(self) -> bool:
        """Checked, and the graph departs from its eager run."""
        return self.checked and not self.ok

    @property
    def module(self) -> str | None:
        """The first module where the graph departs (``None``: none found)."""
        return self.departures[0].module if self.departures else None

    def to_dict(self) -> dict[str, Any]:
        if not self.checked:
            return {"checked": False}
        data: dict[str, Any] = {"checked": True, "ok": self.ok, "max_abs": self.max_abs}
        if self.departures:
            data.update(self.departures[0].to_dict())
            data["modules"] = [d.to_dict() for d in self.departures]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExportFidelity:
        """Also one written before ``modules`` was (its one ``module``)."""
        if not data.get("checked"):
            return cls()
        found = data.get("modules")
        if found is None:
            found = [data] if data.get("module") is not None else []
        return cls(
            checked=True,
            ok=bool(data.get("ok", True)),
            max_abs=float(data.get("max_abs", 0.0)),
            departures=tuple(Departure.from_dict(d) for d in found),
        )


@dataclass
class MatchResult(VerdictResult):
    """The answer of :func:`padiff_ir.match`: do the models agree, and if not, where and why.

    ``bool(result)`` is the verdict. ``str(result)`` is a terminal summary.

    Attributes:
        ok: every matched pair and every output within tolerance.
        tolerance: the default tolerance used (``overrides`` per tensor of A).
        outputs: the final outputs, paired by position.
        pairs: every compared tensor pair, in A's data-flow order.
        modules: every module pair of the layer_map with its own/inherited error.
        first_divergence: the earliest failing pair in data-flow order.
        culprits: modules whose own error fails (empty when the divergence is accumulated).
        accumulated: outputs diverge but no module's own error fails: rounding accumulated.
        layer_map / unmatched: from the matching.
        model_a / model_b: each side's :class:`ModelInfo`.
        timings: seconds per stage. environment: framework versions, opsets.
        notes: remarks for the user (warnings met on the way).
        eager_outputs: the two models' eager outputs compared (framework models only).
        export_fidelity: per side (``"a"``, ``"b"``), whether the exported graph reproduces
            the eager outputs, and where not (:class:`ExportFidelity`).
        graphs: compact views of the two graphs for the HTML report.
        fallback: when a model could not be exported and the models were compared module by
            module instead, which and why (:class:`Fallback`; ``None`` otherwise).
        layouts: the parameter layouts the matching discovered (fused q/k/v, gate/up, norm
            offsets), by kind of parameter group, in :attr:`LayerMap.layouts`' form
            (``{"a.*.q.weight+... -> b.*.qkv.weight": {"layout": {"name": ..., ...}}}``).
        stale_exports: the sides (``"A"``, ``"B"``) whose graph the export cache served
            stale: it did not reproduce the model's eager run, so it was dropped and the
            model exported again for this result (:mod:`padiff_ir.compare.verify`).
        exporter_faults: where an exporter changed what a model computes; those modules are
            judged on the eager runs (:mod:`padiff_ir.compare.culprits.exporter_faults`).
        noise: with ``tolerance="auto"``, each module's measured noise and the verdict in
            units of it (:mod:`padiff_ir.compare.noise_verdict`); None otherwise.
    """

    ok: bool
    tolerance: Tolerance
    outputs: list[PairResult] = field(default_factory=list)
    pairs: list[PairResult] = field(default_factory=list)
    modules: list[ModuleResult] = field(default_factory=list)
    first_divergence: PairResult | None = None
    culprits: list[Culprit] = field(default_factory=list)
    accumulated: bool = False
    layer_map: list[ModulePair] = field(default_factory=list)
    unmatched: list[Unmatched] = field(default_factory=list)
    model_a: ModelInfo = field(default_factory=ModelInfo)
    model_b: ModelInfo = field(default_factory=ModelInfo)
    timings: dict[str, float] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Tolerance] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    eager_outputs: list[PairResult] = field(default_factory=list)
    export_fidelity: dict[str, ExportFidelity] = field(default_factory=dict)
    graphs: dict[str, Any] = field(default_factory=dict)
    fallback: Fallback | None = None
    layouts: dict[str, Transform] = field(default_factory=dict)
    stale_exports: tuple[str, ...] = ()
    exporter_faults: list[ExporterFault] = field(default_factory=list)
    noise: NoiseVerdict | None = None

    __eq__ = VerdictResult.__eq__  # dataclass(eq=True) would replace the mixin's
    __hash__ = None
    kind: ClassVar[str] = "match"
    summary_module: ClassVar[str] = "padiff_ir.compare.match_summary"

    def __post_init__(self) -> None:  # the JSON forms of the typed parts work too
        for side in ("model_a", "model_b"):
            value = getattr(self, side)
            if isinstance(value, Mapping):
                setattr(self, side, ModelInfo.from_dict(value))
        if isinstance(self.fallback, Mapping):
            self.fallback = Fallback.from_dict(self.fallback) if self.fallback else None
        self.export_fidelity = {
            side: ExportFidelity.from_dict(r) if isinstance(r, Mapping) else r
            for side, r in self.export_fidelity.items()
        }
        self.layouts = {k: as_transform(v) for k, v in self.layouts.items()}
        self.overrides = {
            key: Tolerance(**t) if isinstance(t, Mapping) else t
            for key, t in self.overrides.items()
        }

    def __repr__(self) -> str:
        verdict = Verdict.of(self.ok)
        return (
            f"MatchResult({verdict}, pairs={len(self.pairs)}, modules={len(self.modules)}, "
            f"culprits={[c.module_a for c in self.culprits]})"
        )

    # -- serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "match",
            "ok": self.ok,
            "tolerance": asdict(self.tolerance),
            "outputs": [p.to_dict() for p in self.outputs],
            "pairs": [p.to_dict() for p in self.pairs],
            "modules": [m.to_dict() for m in self.modules],
            "first_divergence": (
                self.first_divergence.to_dict() if self.first_divergence is not None else None
            ),
            "culprits": [c.to_dict() for c in self.culprits],
            "accumulated": self.accumulated,
            "layer_map": [p.to_dict() for p in self.layer_map],
            "unmatched": [u.to_dict() for u in self.unmatched],
            "model_a": self.model_a.to_dict(),
            "model_b": self.model_b.to_dict(),
            "timings": self.timings,
            "environment": self.environment,
            "overrides": {k: asdict(v) for k, v in self.overrides.items()},
            "notes": list(self.notes),
            "eager_outputs": [p.to_dict() for p in self.eager_outputs],
            "export_fidelity": {k: v.to_dict() for k, v in self.export_fidelity.items()},
            "graphs": self.graphs,
            "fallback": self.fallback.to_dict() if self.fallback is not None else {},
            "layouts": {k: layer_map_entry(v) for k, v in self.layouts.items()},
            "stale_exports": list(self.stale_exports),
            "exporter_faults": [f.to_dict() for f in self.exporter_faults],
            "noise": self.noise.to_dict() if self.noise is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MatchResult:
        first = data.get("first_divergence")
        return cls(
            ok=bool(data["ok"]),
            tolerance=Tolerance(**data["tolerance"]),
            outputs=[PairResult.from_dict(p) for p in data.get("outputs", ())],
            pairs=[PairResult.from_dict(p) for p in data.get("pairs", ())],
            modules=[ModuleResult.from_dict(m) for m in data.get("modules", ())],
            first_divergence=PairResult.from_dict(first) if first else None,
            culprits=[Culprit.from_dict(c) for c in data.get("culprits", ())],
            accumulated=bool(data.get("accumulated", False)),
            layer_map=[ModulePair.from_dict(p) for p in data.get("layer_map", ())],
            unmatched=[Unmatched.from_dict(u) for u in data.get("unmatched", ())],
            model_a=ModelInfo.from_dict(data.get("model_a") or {}),
            model_b=ModelInfo.from_dict(data.get("model_b") or {}),
            timings=dict(data.get("timings", {})),
            environment=dict(data.get("environment", {})),
            overrides={k: Tolerance(**v) for k, v in (data.get("overrides") or {}).items()},
            notes=list(data.get("notes", ())),
            eager_outputs=[PairResult.from_dict(p) for p in data.get("eager_outputs", ())],
            export_fidelity={
                side: ExportFidelity.from_dict(report)
                for side, report in (data.get("export_fidelity") or {}).items()
            },
            graphs=dict(data.get("graphs", {})),
            fallback=Fallback.from_dict(data["fallback"]) if data.get("fallback") else None,
            layouts={k: as_transform(v) for k, v in (data.get("layouts") or {}).items()},
            stale_exports=tuple(data.get("stale_exports", ())),
            exporter_faults=[ExporterFault.from_dict(f) for f in data.get("exporter_faults", ())],
            noise=NoiseVerdict.from_dict(data["noise"]) if data.get("noise") else None,
        )

    def to_model_explorer(self, directory: str | Path) -> dict[str, Path]:
        """Write what Google's Model Explorer needs into ``directory``: both graphs as ONNX
        (``a``, ``b``), the error per node as node data, the A -> B mapping for its sync
        navigation and a manifest (``padiff-ir explore DIRECTORY`` opens them).

        Rendered by the report's ``to_model_explorer`` (looked up lazily, see
        :func:`padiff_ir._result.renderer`); returns ``{file kind: path}``.
        """
        return renderer("to_model_explorer")(self, directory)
