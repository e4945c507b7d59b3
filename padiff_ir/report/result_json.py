"""The shapes of the result JSON the report reads: ``to_dict()`` of a DiffResult or MatchResult.

The report renders saved JSON as well as fresh results, and older files may lack keys newer
results write, so every shape here is a ``total=False`` TypedDict read with ``.get`` and a
default: a missing key renders as absent, an unknown key is ignored. Values are as the results'
``to_dict()`` write them (a metric may be ``"nan"``/``"inf"`` text, see
:meth:`padiff_ir.metrics.TensorMetrics.to_dict`). :func:`diff_json` and :func:`match_json` name
a dictionary as one of these shapes; nothing is copied or checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, TypedDict, cast

__all__ = [
    "SIDES",
    "DiffJson",
    "TrainingNoiseJson",
    "EntryJson",
    "GraphJson",
    "MatchJson",
    "MetricsJson",
    "ModelJson",
    "ModuleJson",
    "NodeJson",
    "PairJson",
    "Side",
    "StepJson",
    "diff_json",
    "match_json",
]

#: A side of a comparison: model A or model B.
Side = Literal["a", "b"]
SIDES: tuple[Side, Side] = ("a", "b")

#: A number as JSON holds a metric: a float, or text for nan and the infinities.
_Number = float | int | str | None


class MetricsJson(TypedDict, total=False):
    """``TensorMetrics.to_dict()``: the fields the report reads."""

    max_abs: _Number
    max_rel: _Number
    ok: bool
    reason: str
    shape_a: list[int]
    shape_b: list[int]
    dtype_a: str
    dtype_b: str


#: ``{"framework", "class", ...}`` of one side's model (``class`` is a keyword, hence this form).
ModelJson = TypedDict("ModelJson", {"framework": str, "class": str, "nodes": int}, total=False)


class EntryJson(TypedDict, total=False):
    """A LayerDiff, ParamDiff or FirstDifference of a DiffResult step (``to_dict()``)."""

    module_a: str
    module_b: str
    class_a: str
    class_b: str
    name_a: str
    name_b: str
    kind: str
    call: int
    position: int
    order: float
    metrics: MetricsJson | None
    stage: str
    step: int
    message: str


class StepJson(TypedDict, total=False):
    """A DiffResult step (``StepResult.to_dict()``)."""

    index: int
    mode: str
    loss_a: _Number
    loss_b: _Number
    loss: MetricsJson | None
    inputs: list[EntryJson]
    initial_weights: list[EntryJson]
    forward: list[EntryJson]
    buffers: list[EntryJson]
    backward: list[EntryJson]
    grads: list[EntryJson]
    weights: list[EntryJson]
    optimizer_state: list[EntryJson]


class ToleranceJson(TypedDict, total=False):
    """``Tolerance`` as a dictionary."""

    mode: str
    atol: float
    rtol: float


class TrainingNoiseJson(TypedDict, total=False):
    """``TrainingNoise.to_dict()``: ``auto_diff``'s measured floors (``tolerance="auto"``)."""

    method: str
    dtype: str
    sentence: str
    entries: list[dict[str, object]]
    unmeasured: int


class DiffJson(TypedDict, total=False):
    """``DiffResult.to_dict()``: what the training report reads."""

    kind: str
    ok: bool
    tolerance: ToleranceJson
    options: dict[str, object]
    model_a: ModelJson
    model_b: ModelJson
    layer_map: list[object]
    steps: list[StepJson]
    first_difference: EntryJson | None
    config_differences: list[str]
    random_layers: list[str]
    notes: list[str]
    noise: TrainingNoiseJson | None


class NodeJson(TypedDict, total=False):
    """A drawn node of a graph view: its id, the tensors it makes, its (maybe symbolic) shape."""

    id: str
    op: str
    module: str
    out: list[str]
    shape: list[int | str] | None


class GraphJson(TypedDict, total=False):
    """One side's graph view (``graphs["a"]``)."""

    kind: str
    framework: str | None
    model_class: str | None
    nodes: list[NodeJson]


class PairJson(TypedDict, total=False):
    """A tensor pair of a MatchResult (``PairResult.to_dict()``)."""

    index: int
    a: list[str]
    b: list[str]
    module_a: str
    module_b: str
    op_a: str
    op_b: str
    metrics: MetricsJson | None


class ModuleJson(TypedDict, total=False):
    """A module result of a MatchResult (``ModuleResult.to_dict()``)."""

    a: str
    b: str
    class_a: str
    class_b: str
    status: str
    own: MetricsJson | None


class UnmatchedJson(TypedDict, total=False):
    """An unmatched op, tensor or module of a MatchResult."""

    side: str
    kind: str
    name: str
    reason: str


class LayerPairJson(TypedDict, total=False):
    """A layer-map entry (``ModulePair``)."""

    a: str
    b: str
    class_a: str
    class_b: str


class GraphsJson(TypedDict, total=False):
    """The graph view of each side (absent, or null, in a result without op graphs)."""

    a: GraphJson
    b: GraphJson


class MatchJson(TypedDict, total=False):
    """``MatchResult.to_dict()`` with ``graphs``: what the graph indices and Model Explorer read."""

    graphs: GraphsJson
    pairs: list[PairJson]
    modules: list[ModuleJson]
    unmatched: list[UnmatchedJson]
    layer_map: list[LayerPairJson]
    first_divergence: PairJson | None
    model_a: ModelJson
    model_b: ModelJson


def diff_json(data: Mapping[str, object]) -> DiffJson:
    """``data`` (a DiffResult's ``to_dict()`` or its saved JSON) read as :class:`DiffJson`."""
    return cast("DiffJson", data)


def match_json(data: Mapping[str, object]) -> MatchJson:
    """``data`` (a MatchResult's ``to_dict()`` or its saved JSON) read as :class:`MatchJson`."""
    return cast("MatchJson", data)
