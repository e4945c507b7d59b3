"""``match_graphs``: pair two graphs of the same model, exported from two frameworks.

The steps, each in its own module:

1. canonicalise both graphs (``padiff_ir.ir.canonicalize``) unless told they are;
2. build a :class:`~padiff_ir.matching._view.SideView` of each: activation ops, families,
   constants folded, parameter sources;
3. find the parametric *units* and their sibling *tokens* (:mod:`._anchors`), align the two
   token sequences (:mod:`._align`) and expand matched tokens into unit pairs (1:1 or the N:M
   groups of fused vs split layers), dropping inconsistent ones (:mod:`._units`);
4. seed tensor pairs from graph inputs, units and pinned modules, slice fused groups
   (:mod:`._seeds`), and pair the parameter-free ops by forward propagation
   (:mod:`._propagate`); pair graph outputs; pair the ops of different families left alone
   on both sides in the same place (:mod:`._position`), propagating again after them;
5. pair parameters through the unit pairs (:mod:`._params`);
6. pair modules by votes and ancestry (:mod:`._modules`, over each side's
   :mod:`._module_tree`);
7. report what stayed alone, with reasons, and confirm pairs with activation values if given
   (:mod:`._report`).

Nothing here reads a name to decide a pair: module paths and parameter names only appear in the
results (and in a layer map's pins), so renaming every module of one side changes nothing but
the names in the result. Every step is linear in the graph size except the alignment, which is
``O(n * w)`` for ``n`` tokens and a band ``w`` set by how much the sequences differ.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from padiff_ir._paths import owner, within, within_any
from padiff_ir.errors import MatchError
from padiff_ir.matching._anchors import Token, Unit, build_tokens, build_units
from padiff_ir.matching._module_tree import ModuleTree
from padiff_ir.matching._modules import ModuleMatcher
from padiff_ir.matching._params import ParamMatcher
from padiff_ir.matching._position import pair_by_position
from padiff_ir.matching._propagate import propagate
from padiff_ir.matching._report import (
    drop_internal,
    fused_owners,
    rank_of,
    tensor_pair,
    unmatched_ops,
    unmatched_params,
)
from padiff_ir.matching._seeds import (
    ValueCheck,
    resolve_chunks,
    resolve_groups,
    seed_anchors,
    seed_positions,
)
from padiff_ir.matching._state import PairState
from padiff_ir.matching._units import (
    UnitPair,
    align_tokens,
    consistent_pairs,
    expand_tokens,
    unique_leftovers,
)
from padiff_ir.matching._view import SideView
from padiff_ir.matching.types import Matching, ModulePair, Unmatched

if TYPE_CHECKING:
    from padiff_ir.ir.graph import Graph

__all__ = ["Values", "match_graphs", "needs_canonical_form"]

logger = logging.getLogger(__name__)

#: Activation fingerprints: tensor name -> small array (a mapping or a function; ``None`` or a
#: missing key when unknown). Equal weights and inputs on both sides make equal fingerprints.
Values = Mapping[str, Any] | Callable[[str], Any]


@dataclass(frozen=True)
class _MapSpec:
    """The parts of a layer map the matcher uses (duck-typed)."""

    pairs: dict[str, str]
    ignored_a: tuple[str, ...]
    ignored_b: tuple[str, ...]
    black_box_a: tuple[str, ...]
    black_box_b: tuple[str, ...]
    ignored_self_a: tuple[str, ...] = ()
    ignored_self_b: tuple[str, ...] = ()

    @classmethod
    def of(cls, layer_map: Any) -> _MapSpec:
        if layer_map is None:
            return cls({}, (), (), (), ())

        if getattr(layer_map, "is_resolved", True) is False:
            raise MatchError(
                "the layer map holds module objects: call "
                "layer_map.resolve(model_a, model_b) to turn them into paths first"
            )

        def paths(name: str) -> tuple[str, ...]:
            return tuple(sorted(getattr(layer_map, name, None) or ()))

        pairs = dict(getattr(layer_map, "pairs", None) or {})
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in pairs.items()):
            raise MatchError(
                f"layer map pairs must map module paths to layer paths (str -> str), got {pairs!r}"
            )
        return cls(
            pairs,
            paths("ignored_a"),
            paths("ignored_b"),
            paths("black_box_a"),
            paths("black_box_b"),
            paths("ignored_self_a"),
            paths("ignored_self_b"),
        )


def needs_canonical_form(graph: Graph) -> bool:
    """Whether ``graph`` still has what :func:`padiff_ir.ir.canonicalize` removes.

    ``Identity`` ops, ``Gemm`` ops, convolutions with a bias operand, or shape ops not yet
    marked (``Shape`` of kind ``data``).
    """
    for op in graph.ops.values():
        kind = op.op_type
        if kind in ("Identity", "Gemm") or (kind == "Shape" and op.kind == "data"):
            return True
        if kind in ("Conv", "ConvTranspose") and len(op.inputs) > 2 and op.inputs[2]:
            return True
    return False


def _fingerprint(values: Values | None) -> Callable[[str], np.ndarray | None] | None:
    if values is None:
        return None

    def get(tensor: str) -> np.ndarray | None:
        try:
            found = values(tensor) if callable(values) else values.get(tensor)
        except (KeyError, LookupError):
            return None
        return None if found is None else np.asarray(found, dtype=np.float64)

    return get


def _value_check(values_a: Values | None, values_b: Values | None) -> ValueCheck | None:
    get_a, get_b = _fingerprint(values_a), _fingerprint(values_b)
    if get_a is None or get_b is None:
        return None
    cache: dict[tuple[str, str], bool | None] = {}

    def same(a: str, b: str) -> bool | None:
        key = (a, b)
        if key not in cache:
            fa, fb = get_a(a), get_b(b)
            if fa is None or fb is None or fa.shape != fb.shape:
                cache[key] = None
            else:
                scale = float(np.max(np.abs(fa))) if fa.size else 0.0
                cache[key] = bool(np.allclose(fa, fb, rtol=1e-3, atol=1e-5 + 1e-4 * scale))
        return cache[key]

    return same


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector, as it was, for the duration.

    Matching allocates many small objects that live as long as the call; in a process that
    holds two frameworks, every automatic collection walks their heaps too, which makes a
    large graph's matching up to twice slower. Reference counting still frees everything.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def match_graphs(
    graph_a: Graph,
    graph_b: Graph,
    *,
    layer_map: Any = None,
    values_a: Values | None = None,
    values_b: Values | None = None,
    canonicalize: bool | None = None,
) -> Matching:
    """Pair the tensors, modules and parameters of two graphs of the same model.

    Args:
        graph_a / graph_b: the graphs (:func:`padiff_ir.ir.build_graph`), typically torch's
            and paddle's.
        layer_map: optional pins and exclusions, any object with ``pairs`` (dict A path ->
            B path), ``ignored_a`` / ``ignored_b`` (modules left out, with their submodules)
            and ``black_box_a`` / ``black_box_b`` (modules compared by their outputs only).
        values_a / values_b: optional activation fingerprints (tensor name -> small array,
            as a mapping or a function) of both graphs run with equal weights and inputs; they
            break ties and confirm pairs (evidence ``values`` or ``values-differ``).
        canonicalize: run :func:`padiff_ir.ir.canonicalize` on both graphs first (``None``:
            on each graph that still needs it, see :func:`needs_canonical_form`).

    Returns:
        the :class:`~padiff_ir.matching.Matching`; tensor names are those of the
        canonicalised graphs.

    Raises:
        MatchError: a malformed layer map.

    Examples:
        >>> from padiff_ir.ir.graph import Graph, OpNode, TensorInfo
        >>> def mlp(transposed):
        ...     w = TensorInfo("w", shape=(4, 8) if transposed else (8, 4),
        ...                    param_name="fc.weight", is_initializer=True)
        ...     ops = [OpNode("mm", "MatMul", inputs=("x", "w"), outputs=("h",), index=0,
        ...                   module_path="fc", meta={"weight_transposed": transposed}),
        ...            OpNode("relu", "Relu", inputs=("h",), outputs=("y",), index=1,
        ...                   module_path="act")]
        ...     tensors = {"x": TensorInfo("x", shape=(2, 8)), "w": w,
        ...                "h": TensorInfo("h", shape=(2, 4)), "y": TensorInfo("y", shape=(2, 4))}
        ...     return Graph(ops, tensors, ["x"], ["y"], modules={"fc": "Linear", "act": "ReLU"})
        >>> matching = match_graphs(mlp(True), mlp(False), canonicalize=False)
        >>> [(p.a, p.b) for p in matching.tensor_pairs]
        [(('x',), ('x',)), (('h',), ('h',)), (('y',), ('y',))]
        >>> matching.param_pairs[0].transform.describe()
        'transpose[1, 0]'
        >>> matching.module_map()
        {'': '', 'fc': 'fc', 'act': 'act'}
    """
    with _collector_paused():
        return _match(graph_a, graph_b, layer_map, values_a, values_b, canonicalize)


_IGNORED = "ignored by the layer map"


def _ignored(
    graph: Graph, recursive: tuple[str, ...], itself: tuple[str, ...], side: str
) -> list[Unmatched]:
    """The modules and parameters a layer map leaves out, said so."""
    if not recursive and not itself:
        return []

    found = [
        Unmatched(side, "module", path, _IGNORED, module=path, op_type=cls)
        for path, cls in graph.modules.items()
        if within_any(path, recursive) or path in itself
    ]
    seen: set[str] = set()
    for info in graph.tensors.values():
        name = info.param_name
        if name is not None and name not in seen and within_any(owner(name), recursive):
            seen.add(name)
            found.append(Unmatched(side, "tensor", name, _IGNORED, module=owner(name)))
    return found


def _boxed(path: str, boxes: tuple[str, ...]) -> bool:
    """Whether a layer map's black box holds ``path``; a black box ``""`` holds the root only."""
    return any(path == box or (box != "" and within(path, box)) for box in boxes)


class _Laps:
    """Seconds each step of a matching took, in order (``stats["timings"]``)."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._mark = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round(now - self._mark, 4)
        self._mark = now


@dataclass
class _Anchors:
    """Step 3: the parametric units of each side, their tokens and the unit pairs found."""

    units_a: list[Unit]
    units_b: list[Unit]
    tokens_a: list[Token]
    tokens_b: list[Token]
    token_pairs: list[tuple[int, int]]
    unit_pairs: list[UnitPair]
    rejected: int

    @classmethod
    def find(
        cls, view_a: SideView, view_b: SideView, spec: _MapSpec, same: ValueCheck | None
    ) -> _Anchors:
        pins_a = list(spec.pairs)
        pins_b = [spec.pairs[p] for p in pins_a]
        units_a, units_b = build_units(view_a, pins_a), build_units(view_b, pins_b)
        tokens_a, tokens_b = build_tokens(view_a, units_a), build_tokens(view_b, units_b)
        token_pairs = align_tokens(tokens_a, tokens_b)
        unit_pairs = []
        for i, j in token_pairs:
            unit_pairs.extend(expand_tokens(tokens_a[i], tokens_b[j], same))
        unit_pairs, rejected = consistent_pairs(unit_pairs, units_a, units_b)
        unit_pairs.extend(unique_leftovers(unit_pairs, units_a, units_b))
        return cls(units_a, units_b, tokens_a, tokens_b, token_pairs, unit_pairs, rejected)


def _pair_tensors(
    graphs: tuple[Graph, Graph],
    views: tuple[SideView, SideView],
    trees: tuple[ModuleTree, ModuleTree],
    spec: _MapSpec,
    anchors: _Anchors,
    same: ValueCheck | None,
) -> tuple[PairState, int]:
    """Step 4: tensor pairs seeded from graph inputs, units and pins, then propagated; the
    state and how many pairs came by position (units found late join ``anchors``)."""
    (graph_a, graph_b), (tree_a, tree_b) = graphs, trees
    state = PairState(*views)
    state.units_a = {u.head: u for u in anchors.units_a}
    state.units_b = {u.head: u for u in anchors.units_b}
    seed_positions(state, graph_a.inputs, graph_b.inputs, "graph-input")
    seed_anchors(state, anchors.unit_pairs)
    for module_a, module_b in spec.pairs.items():
        for a, b in zip(tree_a.ordered_outputs(module_a), tree_b.ordered_outputs(module_b)):
            state.pair(a, b, 1.0, ("pinned", "position"))
    resolve_groups(state, same)
    resolve_chunks(state, same)
    propagate(state, same)
    seed_positions(state, graph_a.outputs, graph_b.outputs, "graph-output")
    position_pairs = pair_by_position(state, same)
    anchors.unit_pairs.extend(state.late_units)
    return state, position_pairs


def _pair_modules(
    state: PairState,
    trees: tuple[ModuleTree, ModuleTree],
    params: ParamMatcher,
    graph_a: Graph,
    graph_b: Graph,
    spec: _MapSpec,
) -> tuple[list[ModulePair], list[Unmatched]]:
    """Step 6: module pairs by votes and ancestry, and the modules left alone."""
    modules = ModuleMatcher(state, *trees)
    modules.vote_params(params.pairs)
    modules.vote_tensors()
    accepted = modules.assign(spec.pairs)
    module_pairs = modules.module_pairs(accepted, spec.black_box_a, spec.black_box_b)
    fused_a, fused_b = fused_owners(params.pairs, graph_a.modules, graph_b.modules)
    fused_a.update(modules.fused_a)
    fused_b.update(modules.fused_b)
    return module_pairs, modules.unmatched(accepted, fused_b, fused_a)


def _sizes(
    graphs: tuple[Graph, Graph], views: tuple[SideView, SideView], anchors: _Anchors
) -> dict[str, Any]:
    """The sizes a matching's stats report for both sides."""
    (graph_a, graph_b), (view_a, view_b) = graphs, views
    return {
        "ops": [len(graph_a.ops), len(graph_b.ops)],
        "activation_ops": [len(view_a.order), len(view_b.order)],
        "context_ops": [len(graph_a.ops) - len(view_a.order), len(graph_b.ops) - len(view_b.order)],
        "anchors": [len(anchors.units_a), len(anchors.units_b)],
        "tokens": [len(anchors.tokens_a), len(anchors.tokens_b)],
        "token_pairs": len(anchors.token_pairs),
        "unit_pairs_rejected": anchors.rejected,
    }


def _canonical(graph: Graph, canonicalize: bool | None) -> Graph:
    """Step 1: ``graph`` canonicalised when asked, or (``None``) when it needs it."""
    if canonicalize is False:
        return graph
    from padiff_ir.ir import canonicalize as run_canonicalize

    return run_canonicalize(graph) if canonicalize or needs_canonical_form(graph) else graph


def _match(
    graph_a: Graph,
    graph_b: Graph,
    layer_map: Any,
    values_a: Values | None,
    values_b: Values | None,
    canonicalize: bool | None,
) -> Matching:
    start = time.perf_counter()
    spec = _MapSpec.of(layer_map)
    lap = _Laps()
    graph_a, graph_b = _canonical(graph_a, canonicalize), _canonical(graph_b, canonicalize)
    lap("canonicalize")
    same = _value_check(values_a, values_b)
    view_a = SideView(graph_a, spec.ignored_a)
    view_b = SideView(graph_b, spec.ignored_b)
    lap("views")

    anchors = _Anchors.find(view_a, view_b, spec, same)
    unit_pairs = anchors.unit_pairs
    lap("anchors")

    tree_a = ModuleTree(view_a, spec.ignored_a, spec.ignored_self_a)
    tree_b = ModuleTree(view_b, spec.ignored_b, spec.ignored_self_b)
    state, position_pairs = _pair_tensors(
        (graph_a, graph_b), (view_a, view_b), (tree_a, tree_b), spec, anchors, same
    )
    lap("propagate")

    params = ParamMatcher(view_a, view_b)
    for group_a, group_b in unit_pairs:
        params.add_units(group_a, group_b)
    lap("params")

    module_pairs, unmatched = _pair_modules(state, (tree_a, tree_b), params, graph_a, graph_b, spec)
    lap("modules")

    boxed = [
        p for p in module_pairs if _boxed(p.a, spec.black_box_a) or _boxed(p.b, spec.black_box_b)
    ]
    drafts = drop_internal(state, boxed, tree_a, tree_b)
    tensor_pairs = [tensor_pair(state, d, same) for d in drafts]
    tensor_pairs.sort(key=lambda p: rank_of(view_a, p.a))
    unmatched = (
        unmatched_ops(state, "a", boxed)
        + unmatched_ops(state, "b", boxed)
        + unmatched_params(view_a, params.paired_a, anchors.units_a, unit_pairs, "a", state.op_a)
        + unmatched_params(view_b, params.paired_b, anchors.units_b, unit_pairs, "b", state.op_b)
        + unmatched
        + _ignored(graph_a, spec.ignored_a, spec.ignored_self_a, "a")
        + _ignored(graph_b, spec.ignored_b, spec.ignored_self_b, "b")
    )
    lap("report")
    stats = {
        "seconds": round(time.perf_counter() - start, 4),
        "timings": lap.timings,
        **_sizes((graph_a, graph_b), (view_a, view_b), anchors),
        "op_pairs": len(state.op_a),
        "position_pairs": position_pairs,
        "param_conflicts": params.conflicts,
        "values_used": same is not None,
    }
    logger.debug(
        "matched %s vs %s in %.3f s: %d tensor pairs, %d module pairs",
        graph_a.framework,
        graph_b.framework,
        stats["seconds"],
        len(tensor_pairs),
        len(module_pairs),
    )
    return Matching(
        tensor_pairs=tensor_pairs,
        module_pairs=module_pairs,
        param_pairs=params.pairs,
        unmatched=unmatched,
        stats=stats,
    )
