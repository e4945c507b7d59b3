"""Module-tree matching without ONNX: pair the modules and parameters of two eager models.

:func:`match_modules` pairs the modules of model A (a torch module or paddle layer) with the
layers of model B without relying on names, in four steps:

1. **Units.** Each model's tree is cut into *units*: a module that holds parameters itself, or
   a whole subtree for layers matched as one (``MultiheadAttention``, ``LSTM``, ``GRU``,
   ``SimpleRNN``, classes with a registered weight transform, pinned black boxes), and
   parameter-free *leaves* (activations, dropout, pooling). Ignored modules are left out.
2. **Order.** With ``inputs`` each model runs once (eval mode, no grad, forward hooks on every
   module); units are ordered by their first call and carry their output shapes. Without inputs
   the order is the definition order (``named_modules``).
3. **Alignment.** Units are paired by *signature* (class family such as ``conv2d`` for torch
   ``Conv2d`` and paddle ``Conv2D``, plus own parameter shapes modulo a transpose) with an
   order-preserving dynamic program (an alignment, not a zip), then units whose signature is
   unique among the leftovers on both sides (so definition order may differ), then leftovers
   of one family or of equal shapes. Pins of the :class:`~padiff_ir.matching.LayerMap` restrict
   each pinned subtree to its partner. Leaves are aligned by family between consecutive anchor
   pairs; a Dropout on one side only stays unmatched with a reason.
4. **Containers.** A container is paired with the container of the other side that holds the
   same matched units (the lowest such one when several nest); the two roots are always paired,
   so an extra ``Sequential`` wrapper on one side simply stays unpaired.

Parameters of each unit pair are paired by name (paddle's ``_mean``/``_variance`` read as
``running_mean``/``running_var``), then role and shape, then shape, with the layout transform of
:mod:`padiff_ir.matching.transforms`. The models' train/eval flags and the RNG states of torch and
paddle are left as they were; hooks are always removed.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from padiff_ir.errors import MatchError
from padiff_ir.matching.compat import unwrap_model
from padiff_ir.matching.layer_map import LayerMap, named_modules
from padiff_ir.matching.transforms import (
    SKIPPED_TENSORS,
    UNIT_FAMILIES,
    TensorInfo,
    builtin_param_pairs,
    class_family,
    layout_transform,
    param_role,
)
from padiff_ir.matching.types import Matching, ModulePair, ParamPair, Unmatched

__all__ = ["match_modules", "model_tensors"]

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Module trees.
# ---------------------------------------------------------------------------------------------


@dataclass
class _Node:
    path: str
    class_name: str
    family: str
    index: int
    module: Any
    children: list[str] = field(default_factory=list)
    own: dict[str, TensorInfo] = field(default_factory=dict)  # relative to the node


@dataclass
class _Tree:
    framework: str
    nodes: dict[str, _Node]  # preorder

    def subtree(self, path: str) -> Iterator[_Node]:
        prefix = f"{path}." if path else ""
        for node in self.nodes.values():
            if node.path == path or node.path.startswith(prefix):
                yield node


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _framework(model: Any) -> str:
    from padiff_ir.exporters._detect import detect_framework

    framework = detect_framework(model)
    if framework not in ("torch", "paddle"):
        raise MatchError(
            f"match_modules needs torch or paddle models, got a {framework} model; use "
            "padiff_ir.matching.match_graphs for ONNX graphs"
        )
    return framework


def model_tensors(model: Any) -> dict[str, Any]:
    """Every parameter and persistent buffer of a model by each of its names (aliases included).

    Tensors reached under several names (shared weights, paddle's RNN aliases such as
    ``lstm.0.cell.weight_ih``) appear once per name, as the same object.
    """
    model = unwrap_model(model)
    framework = _framework(model)
    persistent = set(model.state_dict().keys())
    tensors: dict[str, Any] = {}
    modules = (
        model.named_modules(remove_duplicate=False)
        if framework == "torch"
        else model.named_sublayers(include_self=True)
    )
    for path, module in modules:
        for name, tensor in _own_tensors(module, framework):
            full = _join(path, name)
            if full in persistent:
                tensors.setdefault(full, tensor)
    return tensors


def _own_tensors(module: Any, framework: str) -> list[tuple[str, Any]]:
    if framework == "torch":
        return [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]
    return [
        *module.named_parameters(include_sublayers=False),
        *module.named_buffers(include_sublayers=False),
    ]


def _build_tree(model: Any, framework: str) -> _Tree:
    persistent = set(model.state_dict().keys())
    nodes: dict[str, _Node] = {}
    seen: set[int] = set()
    for index, (path, module) in enumerate(named_modules(model)):
        class_name = type(module).__name__
        node = _Node(path, class_name, class_family(class_name, framework), index, module)
        family = node.family
        for name, tensor in _own_tensors(module, framework):
            full = _join(path, name)
            if full not in persistent or id(tensor) in seen:
                continue
            seen.add(id(tensor))
            node.own[name] = TensorInfo(full, name, tuple(int(d) for d in tensor.shape), family)
        nodes[path] = node
        if path:
            parent = path.rpartition(".")[0]
            if parent in nodes:
                nodes[parent].children.append(path)
    return _Tree(framework, nodes)


# ---------------------------------------------------------------------------------------------
# Tracing a forward pass.
# ---------------------------------------------------------------------------------------------


@dataclass
class _Call:
    start: int
    output_shapes: tuple[tuple[int, ...], ...] = ()


def _shapes(value: Any) -> tuple[tuple[int, ...], ...]:
    if hasattr(value, "shape"):
        return (tuple(int(d) for d in value.shape),)
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return tuple(s for v in value for s in _shapes(v))
    return ()


@contextlib.contextmanager
def _preserved_state(model: Any, framework: str) -> Iterator[None]:
    """Eval mode and no grad inside; train flags, RNG states and fast-path flag restored after."""
    if framework == "torch":
        import torch

        flags = [(m, m.training) for m in model.modules()]
        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        mha = getattr(torch.backends, "mha", None)
        fastpath = mha.get_fastpath_enabled() if mha is not None else None
        try:
            with torch.random.fork_rng(devices=devices), torch.no_grad():
                if mha is not None:  # the fused fast path skips submodule hooks
                    mha.set_fastpath_enabled(False)
                model.eval()
                yield
        finally:
            if mha is not None:
                mha.set_fastpath_enabled(fastpath)
            for module, flag in flags:
                module.training = flag
    else:
        import paddle

        flags = [(m, m.training) for m in model.sublayers(include_self=True)]
        cpu_state = paddle.get_rng_state("cpu")
        device_state = paddle.get_rng_state()
        try:
            with paddle.no_grad():
                model.eval()
                yield
        finally:
            paddle.set_rng_state(cpu_state, "cpu")
            paddle.set_rng_state(device_state)
            for layer, flag in flags:
                layer.training = flag


def _float_dtype(model: Any) -> Any:
    for tensor in model.parameters():
        if tensor.is_floating_point():
            return tensor.dtype
    return None


def _framework_inputs(inputs: Any, model: Any, framework: str) -> tuple[tuple, dict]:
    from padiff_ir._inputs import normalize_inputs

    neutral = normalize_inputs(inputs)
    args, kwargs = neutral.to_torch() if framework == "torch" else neutral.to_paddle()
    dtype = _float_dtype(model)
    device = None
    if framework == "torch":
        device = next((p.device for p in model.parameters()), None)

    def cast(t: Any) -> Any:
        if dtype is not None and t.is_floating_point() and t.dtype != dtype:
            t = t.to(dtype) if framework == "torch" else t.astype(dtype)
        return t.to(device) if device is not None else t

    return tuple(cast(t) for t in args), {k: cast(v) for k, v in kwargs.items()}


def _trace(model: Any, framework: str, inputs: Any) -> dict[str, _Call]:
    args, kwargs = _framework_inputs(inputs, model, framework)
    calls: dict[str, _Call] = {}
    counter = iter(range(sys.maxsize))
    handles = []

    def pre_hook(path: str) -> Callable[..., None]:
        def hook(module: Any, hook_inputs: Any) -> None:
            if path not in calls:
                calls[path] = _Call(next(counter))

        return hook

    def post_hook(path: str) -> Callable[..., None]:
        def hook(module: Any, hook_inputs: Any, output: Any) -> None:
            call = calls.get(path)
            if call is not None and not call.output_shapes:
                call.output_shapes = _shapes(output)

        return hook

    with _preserved_state(model, framework):
        try:
            for path, module in named_modules(model):
                handles.append(module.register_forward_pre_hook(pre_hook(path)))
                if framework == "torch":
                    handles.append(module.register_forward_hook(post_hook(path)))
                else:
                    handles.append(module.register_forward_post_hook(post_hook(path)))
            model(*args, **kwargs)
        except Exception as err:
            raise MatchError(
                f"running {framework} model {type(model).__name__} on the given inputs failed "
                f"({type(err).__name__}: {err}); fix the inputs, or match without inputs"
            ) from err
        finally:
            for handle in handles:
                handle.remove()
    return calls


def _split_inputs(inputs: Any, framework_a: str, framework_b: str) -> tuple[Any, Any]:
    """Per-model inputs: one neutral set for both, or a pair ordered by tensor framework.

    A pair is two dicts/sequences, or two tensors of different frameworks.
    """
    if not isinstance(inputs, (tuple, list)) or len(inputs) != 2:
        return inputs, inputs
    structured = all(isinstance(x, (Mapping, list, tuple)) for x in inputs)
    frameworks = {_tensor_framework([x]) for x in inputs}
    if not structured and frameworks != {"torch", "paddle"}:
        return inputs, inputs
    first, second = inputs
    if framework_a != framework_b and _tensor_framework(first) == framework_b:
        first, second = second, first
    return first, second


def _tensor_framework(value: Any) -> str | None:
    values = value.values() if isinstance(value, Mapping) else value
    for v in values:
        module = type(v).__module__.split(".")[0]
        if module in ("torch", "paddle"):
            return module
    return None


# ---------------------------------------------------------------------------------------------
# Items: units and parameter-free leaves, in order.
# ---------------------------------------------------------------------------------------------


@dataclass
class _Item:
    side: str
    path: str
    kind: str  # "unit" (a module or collapsed subtree), "own" (a container's own tensors), "leaf"
    node: _Node
    tensors: dict[str, TensorInfo]
    order: tuple[int, int]
    output_shapes: tuple[tuple[int, ...], ...]
    scope: str | None
    signature: tuple[Any, ...] = ()

    @property
    def leaf_name(self) -> str:
        return self.path.rpartition(".")[2]

    def shapes(self) -> tuple[tuple[int, ...], ...]:
        return tuple(sorted(_canonical(t.shape) for t in self.tensors.values()))


def _canonical(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(sorted(shape)) if len(shape) == 2 else shape


@dataclass
class _Side:
    name: str  # "a" or "b"
    tree: _Tree
    calls: dict[str, _Call] | None
    items: list[_Item] = field(default_factory=list)
    ignored: dict[str, str] = field(default_factory=dict)  # path -> reason
    excluded: set[str] = field(default_factory=set)  # paths inside collapsed units or ignored
    ignored_tensors: dict[str, str] = field(default_factory=dict)  # tensor name -> module path

    def order(self, path: str) -> tuple[int, int]:
        call = self.calls.get(path) if self.calls is not None else None
        return (0, call.start) if call is not None else (1, self.tree.nodes[path].index)


_IGNORED = "ignored by the layer map"


def _collect_items(
    side: _Side,
    *,
    ignored: set[str],
    ignored_self: set[str],
    collapse: set[str],
    pins: Mapping[str, str],
) -> None:
    """Fill ``side.items`` (sorted) and ``side.ignored``; ``pins``: this side's path -> scope."""
    tree = side.tree

    def drop(node: _Node) -> None:
        side.ignored.setdefault(node.path, _IGNORED)
        side.excluded.add(node.path)
        side.ignored_tensors.update((info.name, node.path) for info in node.own.values())

    def visit(path: str, scope: str | None) -> None:
        node = tree.nodes[path]
        skip_self = path in ignored_self
        collapsed = (
            path in collapse or node.family in UNIT_FAMILIES or node.family.startswith("custom:")
        )
        if path in ignored or (skip_self and collapsed):  # a unit cannot lose only itself
            for inner in tree.subtree(path):
                drop(inner)
            return
        scope = pins.get(path, scope)
        calls = side.calls.get(path) if side.calls is not None else None
        shapes = calls.output_shapes if calls is not None else ()
        if skip_self:
            side.ignored[path] = f"{_IGNORED} (its sublayers are matched)"
            side.ignored_tensors.update((info.name, path) for info in node.own.values())
        if collapsed:
            tensors: dict[str, TensorInfo] = {}
            for inner in tree.subtree(path):
                if inner.path != path:
                    side.excluded.add(inner.path)
                if any(inner.path == p or _inside(inner.path, p) for p in ignored):
                    drop(inner)
                    continue
                if inner.path == path:
                    prefix = ""
                else:
                    prefix = inner.path[len(path) + 1 :] if path else inner.path
                for info in inner.own.values():
                    relative = _join(prefix, info.relative)
                    tensors[relative] = replace(info, relative=relative)
            side.items.append(
                _Item(side.name, path, "unit", node, tensors, side.order(path), shapes, scope)
            )
            return
        if not skip_self and (node.own or not node.children):
            kind = "leaf" if not node.own else ("own" if node.children else "unit")
            side.items.append(
                _Item(side.name, path, kind, node, dict(node.own), side.order(path), shapes, scope)
            )
        for child in node.children:
            visit(child, scope)

    visit("", None)
    for item in side.items:
        if item.kind == "leaf":
            item.signature = (item.node.family,)
        elif item.node.family in UNIT_FAMILIES or item.path in collapse:
            item.signature = (item.node.family, sum(int(np.prod(s)) for s in item.shapes()))
        elif item.node.family.startswith("custom:"):
            item.signature = (item.node.family,)
        else:
            item.signature = (item.node.family, item.shapes())
    side.items.sort(key=lambda it: it.order)


# ---------------------------------------------------------------------------------------------
# Alignment.
# ---------------------------------------------------------------------------------------------


def _align(xs: Sequence[_Item], ys: Sequence[_Item], score: Callable[[_Item, _Item], float]):
    """Order-preserving alignment maximising the summed score (pairs with score <= 0 refused)."""
    n, m = len(xs), len(ys)
    if not n or not m:
        return []
    if n == m and all(score(x, y) > 0 for x, y in zip(xs, ys)):
        return [(i, i) for i in range(n)]  # the diagonal pairs everything: nothing beats it
    scores = [[score(x, y) for y in ys] for x in xs]
    dp = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        row, prev, srow = dp[i], dp[i - 1], scores[i - 1]
        for j in range(1, m + 1):
            best = max(prev[j], row[j - 1])
            s = srow[j - 1]
            if s > 0 and prev[j - 1] + s > best:
                best = prev[j - 1] + s
            row[j] = best
    pairs = []
    i, j = n, m
    while i and j:
        s = scores[i - 1][j - 1]
        if s > 0 and dp[i][j] == dp[i - 1][j - 1] + s:
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif dp[i][j] == dp[i - 1][j]:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


def _bonus(x: _Item, y: _Item) -> float:
    bonus = 0.0
    if x.output_shapes and x.output_shapes == y.output_shapes:
        bonus += 1.0
    if x.leaf_name == y.leaf_name:
        bonus += 0.5
    return bonus


def _exact_score(x: _Item, y: _Item) -> float:
    return 10.0 + _bonus(x, y) if x.signature == y.signature else 0.0


def _relaxed_score(x: _Item, y: _Item) -> float:
    if x.node.family == y.node.family:
        return 3.0 + _bonus(x, y)
    if x.tensors and x.shapes() == y.shapes():
        return 2.0 + _bonus(x, y)
    return 0.0


@dataclass
class _ItemPair:
    a: _Item
    b: _Item
    evidence: tuple[str, ...]
    confidence: float


def _match_units(units_a: list[_Item], units_b: list[_Item]) -> list[_ItemPair]:
    pairs: list[_ItemPair] = []
    for i, j in _align(units_a, units_b, _exact_score):
        evidence = ("param-anchor", "position")
        if units_a[i].output_shapes and units_a[i].output_shapes == units_b[j].output_shapes:
            evidence += ("shape",)
        pairs.append(_ItemPair(units_a[i], units_b[j], evidence, 1.0))
    taken = {id(p.a) for p in pairs} | {id(p.b) for p in pairs}
    left_a = [u for u in units_a if id(u) not in taken]
    left_b = [u for u in units_b if id(u) not in taken]
    count_a = Counter(u.signature for u in left_a)
    count_b = Counter(u.signature for u in left_b)
    unique_b = {u.signature: u for u in left_b if count_b[u.signature] == 1}
    for unit in left_a:
        if count_a[unit.signature] == 1 and unit.signature in unique_b:
            partner = unique_b[unit.signature]
            pairs.append(_ItemPair(unit, partner, ("param-anchor", "unique-signature"), 0.8))
            taken |= {id(unit), id(partner)}
    left_a = [u for u in left_a if id(u) not in taken]
    left_b = [u for u in left_b if id(u) not in taken]
    for i, j in _align(left_a, left_b, _relaxed_score):
        x, y = left_a[i], left_b[j]
        evidence = ("op-family",) if x.node.family == y.node.family else ("shape",)
        pairs.append(_ItemPair(x, y, (*evidence, "position"), 0.5))
    return pairs


def _leaf_score(x: _Item, y: _Item) -> float:
    return 2.0 + _bonus(x, y) if x.node.family == y.node.family else 0.0


def _match_leaves(
    seq_a: list[_Item], seq_b: list[_Item], unit_pairs: list[_ItemPair]
) -> list[_ItemPair]:
    """Align parameter-free leaves between consecutive order-consistent anchor pairs."""
    pos_a = {id(it): k for k, it in enumerate(seq_a)}
    pos_b = {id(it): k for k, it in enumerate(seq_b)}
    anchors = sorted((pos_a[id(p.a)], pos_b[id(p.b)]) for p in unit_pairs)
    chain = _increasing_chain(anchors)
    bounds = [(-1, -1), *chain, (len(seq_a), len(seq_b))]
    pairs = []
    for (a0, b0), (a1, b1) in itertools.pairwise(bounds):
        gap_a = [it for it in seq_a[a0 + 1 : a1] if it.kind == "leaf"]
        gap_b = [it for it in seq_b[b0 + 1 : b1] if it.kind == "leaf"]
        for i, j in _align(gap_a, gap_b, _leaf_score):
            pairs.append(_ItemPair(gap_a[i], gap_b[j], ("op-family", "position"), 0.7))
    return pairs


def _increasing_chain(points: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Longest chain of points increasing in both coordinates (points sorted by the first,
    first coordinates distinct): a longest increasing subsequence of the second, O(k log k)."""
    tails: list[int] = []  # tails[k]: index of the smallest last point of a chain of length k+1
    tail_values: list[int] = []
    previous: list[int] = [-1] * len(points)
    for index, (_, second) in enumerate(points):
        k = bisect.bisect_left(tail_values, second)
        previous[index] = tails[k - 1] if k else -1
        if k == len(tails):
            tails.append(index)
            tail_values.append(second)
        else:
            tails[k] = index
            tail_values[k] = second
    chain = []
    index = tails[-1] if tails else -1
    while index != -1:
        chain.append(points[index])
        index = previous[index]
    return chain[::-1]


# ---------------------------------------------------------------------------------------------
# Parameter pairs of a unit pair.
# ---------------------------------------------------------------------------------------------


def _pair_tensors(
    x: _Item, y: _Item, framework_a: str, framework_b: str
) -> tuple[list[ParamPair], list[Unmatched]]:
    family = x.node.family if x.node.family == y.node.family else ""
    left_a, left_b = dict(x.tensors), dict(y.tensors)
    specs: list[tuple[tuple[str, ...], tuple[str, ...], dict[str, Any], tuple[str, ...]]] = []
    if family.startswith("custom:"):
        if left_a or left_b:
            specs.append((tuple(left_a), tuple(left_b), {"module": family}, ("registered",)))
        left_a, left_b = {}, {}
    for names_a, names_b, transform in (
        builtin_param_pairs(family, framework_a, left_a, framework_b, left_b) or []
    ):
        specs.append((names_a, names_b, transform, ("builtin-layout",)))
        for name in names_a:
            left_a.pop(name)
        for name in names_b:
            left_b.pop(name)

    def transform_of(ta: TensorInfo, tb: TensorInfo) -> dict[str, Any] | None:
        owner = "linear" if "linear" in (ta.family, tb.family) else ta.family
        role = param_role(ta.relative)
        return layout_transform(owner, role, framework_a, ta.shape, framework_b, tb.shape)

    def take(ta: TensorInfo, tb: TensorInfo, transform: dict, evidence: tuple[str, ...]) -> None:
        specs.append(((ta.relative,), (tb.relative,), transform, evidence))
        left_a.pop(ta.relative)
        left_b.pop(tb.relative)

    def normalised(name: str) -> str:
        prefix, _, _ = name.rpartition(".")
        return _join(prefix, param_role(name))

    by_name_b = {normalised(n): t for n, t in left_b.items()}
    for ta in list(left_a.values()):
        tb = by_name_b.get(normalised(ta.relative))
        if tb is not None and (transform := transform_of(ta, tb)) is not None:
            take(ta, tb, transform, ("name", "shape"))
    for same_role in (True, False):
        for ta in list(left_a.values()):
            for tb in list(left_b.values()):
                if same_role and param_role(ta.relative) != param_role(tb.relative):
                    continue
                if _canonical(ta.shape) == _canonical(tb.shape):
                    transform = transform_of(ta, tb)
                    if transform is not None:
                        take(ta, tb, transform, ("role", "shape") if same_role else ("shape",))
                        break
    for ta in list(left_a.values()):  # same role, shapes disagree: a conflict to report
        role = param_role(ta.relative)
        tb = next((t for t in left_b.values() if param_role(t.relative) == role), None)
        if tb is not None:
            take(ta, tb, {}, ("role", "shape-conflict"))

    params = [
        ParamPair(
            tuple(_join(x.path, n) for n in names_a),
            tuple(_join(y.path, n) for n in names_b),
            module_a=x.path,
            module_b=y.path,
            transform=transform,
            evidence=evidence,
        )
        for names_a, names_b, transform, evidence in specs
    ]
    unmatched = [
        _unmatched_tensor(side, unit, info, other)
        for side, unit, other, rest in (("a", x, y, left_a), ("b", y, x, left_b))
        for info in rest.values()
    ]
    return params, unmatched


def _unmatched_tensor(side: str, unit: _Item, info: TensorInfo, other: _Item) -> Unmatched:
    leaf = info.relative.rpartition(".")[2]
    reason = SKIPPED_TENSORS.get(leaf) or (
        f"no tensor of {other.node.class_name} {other.path!r} fits {info.relative} "
        f"{list(info.shape)}"
    )
    return Unmatched(side, "param", info.name, reason, module=unit.path)


# ---------------------------------------------------------------------------------------------
# The matcher.
# ---------------------------------------------------------------------------------------------


def match_modules(
    model_a: Any, model_b: Any, inputs: Any = None, *, layer_map: LayerMap | None = None
) -> Matching:
    """Pair the modules and parameters of two torch/paddle models (no export, no names needed).

    Args:
        model_a / model_b: torch modules or paddle layers (or :class:`PadiffModel` wrappers).
        inputs: ``None`` for static matching (definition order); inputs for both models (numpy
            arrays or tensors, one array, a sequence or a dict by argument name); or a pair
            ``(inputs_a, inputs_b)`` of per-framework inputs (either order: the tensors'
            framework decides). Floating inputs are cast to each model's parameter dtype.
        layer_map: pins, ignores and black boxes (object entries resolved against the models).

    Returns:
        A :class:`Matching` with ``module_pairs``, ``param_pairs`` (transforms A -> B) and
        ``unmatched`` (modules and tensors, kinds ``"module"`` and ``"param"``); ``stats``
        records the frameworks, the mode (``traced``/``static``) and counts.

    Raises:
        MatchError: a layer map path names no module, or a model fails on the inputs.

    Example:
        >>> import paddle, torch
        >>> t = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        >>> p = paddle.nn.Sequential(paddle.nn.Linear(4, 8), paddle.nn.ReLU(),
        ...                          paddle.nn.Linear(8, 2))
        >>> m = match_modules(t, p)
        >>> m.module_map()
        {'': '', '0': '0', '1': '1', '2': '2'}
        >>> m.param_pairs[0].transform
        {'transpose': [1, 0]}
    """
    start = time.perf_counter()
    model_a, model_b = unwrap_model(model_a), unwrap_model(model_b)
    framework_a, framework_b = _framework(model_a), _framework(model_b)
    layer_map = (layer_map if layer_map is not None else LayerMap()).resolve(model_a, model_b)
    tree_a, tree_b = _build_tree(model_a, framework_a), _build_tree(model_b, framework_b)
    calls_a = calls_b = None
    if inputs is not None:
        inputs_a, inputs_b = _split_inputs(inputs, framework_a, framework_b)
        calls_a = _trace(model_a, framework_a, inputs_a)
        calls_b = _trace(model_b, framework_b, inputs_b)
    side_a, side_b = _Side("a", tree_a, calls_a), _Side("b", tree_b, calls_b)

    pins = dict(layer_map.pairs)
    collapse_a, collapse_b = set(), set()
    for a, b in pins.items():
        node_a, node_b = tree_a.nodes[a], tree_b.nodes[b]
        if (
            a in layer_map.black_box_a
            or b in layer_map.black_box_b
            or {node_a.family, node_b.family} & UNIT_FAMILIES
        ):
            collapse_a.add(a)
            collapse_b.add(b)
    _collect_items(
        side_a,
        ignored=layer_map.ignored_a,
        ignored_self=layer_map.ignored_self_a,
        collapse=collapse_a,
        pins={a: a for a in pins},
    )
    _collect_items(
        side_b,
        ignored=layer_map.ignored_b,
        ignored_self=layer_map.ignored_self_b,
        collapse=collapse_b,
        pins={b: a for a, b in pins.items()},
    )

    item_pairs: list[_ItemPair] = []
    scopes = {it.scope for it in side_a.items} | {it.scope for it in side_b.items}
    for scope in sorted(scopes, key=lambda s: (s is not None, s or "")):
        seq_a = [it for it in side_a.items if it.scope == scope]
        seq_b = [it for it in side_b.items if it.scope == scope]
        forced = []
        if scope is not None:
            head_a = next((it for it in seq_a if it.path == scope), None)
            head_b = next((it for it in seq_b if it.path == pins[scope]), None)
            if head_a is not None and head_b is not None:
                forced.append(_ItemPair(head_a, head_b, ("pinned",), 1.0))
                seq_a = [it for it in seq_a if it is not head_a]
                seq_b = [it for it in seq_b if it is not head_b]
        units = _match_units(
            [it for it in seq_a if it.kind != "leaf"], [it for it in seq_b if it.kind != "leaf"]
        )
        leaves = _match_leaves(seq_a, seq_b, units)
        item_pairs += forced + units + leaves

    matching = _assemble(side_a, side_b, item_pairs, layer_map, pins, framework_a, framework_b)
    matching.stats.update(
        {
            "framework_a": framework_a,
            "framework_b": framework_b,
            "mode": "traced" if inputs is not None else "static",
            "units_a": sum(it.kind != "leaf" for it in side_a.items),
            "units_b": sum(it.kind != "leaf" for it in side_b.items),
            "anchors": sum(p.a.kind != "leaf" for p in item_pairs),
            "seconds": round(time.perf_counter() - start, 4),
        }
    )
    logger.debug(
        "matched %d module pairs and %d parameter pairs (%s) in %.3f s",
        len(matching.module_pairs),
        len(matching.param_pairs),
        matching.stats["mode"],
        matching.stats["seconds"],
    )
    return matching


def _containers(side: _Side) -> list[_Node]:
    units = {it.path for it in side.items if it.kind != "own"}
    return [
        node
        for node in side.tree.nodes.values()
        if node.children
        and node.path not in side.excluded
        and node.path not in side.ignored
        and node.path not in units
    ]


def _keys(side: _Side, pairs: list[_ItemPair], attr: str) -> dict[str, frozenset[Any]]:
    """Container path -> the pairs of matched units (or, without units, leaves) inside it."""
    units: dict[str, set[int]] = {}
    leaves: dict[str, set[int]] = {}
    for k, pair in enumerate(pairs):
        item: _Item = getattr(pair, attr)
        target = leaves if item.kind == "leaf" else units
        path = item.path
        while True:
            target.setdefault(path, set()).add(k)
            if not path:
                break
            path = path.rpartition(".")[0]
    keys = {}
    for path in set(units) | set(leaves):
        if units.get(path):
            keys[path] = frozenset(("unit", k) for k in units[path])
        else:
            keys[path] = frozenset(("leaf", k) for k in leaves[path])
    return keys


def _assemble(
    side_a: _Side,
    side_b: _Side,
    item_pairs: list[_ItemPair],
    layer_map: LayerMap,
    pins: dict[str, str],
    framework_a: str,
    framework_b: str,
) -> Matching:
    nodes_a, nodes_b = side_a.tree.nodes, side_b.tree.nodes
    module_pairs: dict[str, ModulePair] = {}
    paired_b: set[str] = set()

    def add(a: str, b: str, evidence: tuple[str, ...], confidence: float) -> None:
        if a in module_pairs or b in paired_b:
            return
        module_pairs[a] = ModulePair(
            a,
            b,
            nodes_a[a].class_name,
            nodes_b[b].class_name,
            confidence,
            evidence,
            black_box=a in layer_map.black_box_a or b in layer_map.black_box_b,
        )
        paired_b.add(b)

    for pair in item_pairs:
        if pair.a.kind != "own" and pair.b.kind != "own":
            add(pair.a.path, pair.b.path, pair.evidence, pair.confidence)
    for a, b in pins.items():
        if a not in side_a.excluded and b not in side_b.excluded:
            add(a, b, ("pinned",), 1.0)
    if "" not in side_a.ignored and "" not in side_b.ignored:
        add("", "", ("root",), 1.0)
    keys_a, keys_b = _keys(side_a, item_pairs, "a"), _keys(side_b, item_pairs, "b")
    groups_b: dict[frozenset[Any], list[_Node]] = {}
    for node in _containers(side_b):
        if node.path in keys_b:
            groups_b.setdefault(keys_b[node.path], []).append(node)
    groups_a: dict[frozenset[Any], list[_Node]] = {}
    for node in _containers(side_a):
        if node.path in keys_a:
            groups_a.setdefault(keys_a[node.path], []).append(node)
    for key, group_a in groups_a.items():
        group_b = [n for n in groups_b.get(key, []) if n.path not in paired_b]
        group_a = [n for n in group_a if n.path not in module_pairs]
        for node_a in list(group_a):  # same family first, outermost first
            match = next((n for n in group_b if n.family == node_a.family), None)
            if match is not None:
                add(node_a.path, match.path, ("children", "op-family"), 0.9)
                group_a.remove(node_a)
                group_b.remove(match)
        for node_a, node_b in zip(group_a, group_b):
            add(node_a.path, node_b.path, ("children",), 0.8)

    black_boxes = [p for p in module_pairs.values() if p.black_box]
    inside = [
        a
        for a, p in module_pairs.items()
        if any(_inside(a, bb.a) and _inside(p.b, bb.b) for bb in black_boxes if bb is not p)
    ]
    for a in inside:
        del module_pairs[a]

    param_pairs: list[ParamPair] = []
    unmatched: list[Unmatched] = []
    for pair in sorted(item_pairs, key=lambda p: p.a.order):
        if pair.a.kind == "leaf" and pair.b.kind == "leaf":
            continue
        params, rest = _pair_tensors(pair.a, pair.b, framework_a, framework_b)
        param_pairs += params
        unmatched += rest
    paired_items = {id(p.a) for p in item_pairs} | {id(p.b) for p in item_pairs}
    for side, other, paired in (
        (side_a, side_b, set(module_pairs)),
        (side_b, side_a, paired_b),
    ):
        unmatched += _unmatched_modules(side, other, paired, paired_items)
    ordered = sorted(module_pairs.values(), key=lambda p: side_a.order(p.a))
    return Matching(module_pairs=ordered, param_pairs=param_pairs, unmatched=unmatched)


def _inside(path: str, ancestor: str) -> bool:
    return path != ancestor and (not ancestor or path.startswith(f"{ancestor}."))


def _unmatched_modules(
    side: _Side, other: _Side, paired: set[str], paired_items: set[int]
) -> list[Unmatched]:
    label, other_label = side.name.upper(), other.name.upper()
    result = [
        Unmatched(side.name, "param", name, _IGNORED, path)
        for name, path in side.ignored_tensors.items()
    ]
    item_by_path = {it.path: it for it in side.items}
    for path, node in side.tree.nodes.items():
        if path in paired or (path in side.excluded and path not in side.ignored):
            continue
        if path in side.ignored:
            reason = side.ignored[path]
        else:
            item = item_by_path.get(path)
            if item is not None and id(item) in paired_items:
                continue  # own tensors matched; the container itself has no partner
            if item is not None and item.kind == "leaf":
                reason = f"{node.class_name} present in model {label} only"
            elif item is not None:
                shapes = [list(s) for s in item.shapes()]
                reason = (
                    f"no layer of model {other_label} matches {node.class_name} with parameter "
                    f"shapes {shapes}"
                )
            else:
                reason = (
                    f"container without a counterpart in model {other_label} (its layers are "
                    "matched under other containers)"
                )
        result.append(Unmatched(side.name, "module", path, reason))
        item = item_by_path.get(path)
        if item is not None and item.kind != "leaf" and id(item) not in paired_items:
            why = f"its module {path!r} has no partner"
            tensors = item.tensors.values()
            result += [Unmatched(side.name, "param", t.name, why, path) for t in tensors]
    return result
