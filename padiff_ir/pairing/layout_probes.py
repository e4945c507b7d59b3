"""Find the layouts of fused and permuted parameters by running the models.

The matching pairs ``q_proj``, ``k_proj``, ``v_proj`` with one fused ``qkv_proj`` by their
shapes, but shapes cannot say whether the fused rows are ``[q; k; v]`` or grouped per key-value
head, nor whether a rotary embedding pairs neighbours instead of halves, nor whether a norm
computes ``x * (1 + w)``. :func:`discover_layouts` decides by probing:

1. A runs once; the outputs of every paired module are kept (first tensor of each call).
2. B gets A's weights through the matching's transforms, the candidates' first (the plain
   layout), and runs with the same hooks. The first module pair (in A's order of completion)
   whose outputs disagree names the probe site: the nearest module pair enclosing it that
   holds parameters whose layout is open.
3. Each candidate layout of those parameters is written into B, B runs up to the site (the
   run stops there) and the site's outputs are compared with A's. The one candidate that
   reproduces them is kept for every parameter group of the same kind (same names up to layer
   indices, same shapes): layers repeat. Several that reproduce are a :class:`LayoutError`
   listing them; none means the module really differs (a bug the comparison will name there),
   and its output is replaced by A's in later runs so the layouts after it can still be found.
4. Repeat until B agrees everywhere or nothing is left to decide.

B's weights are restored afterwards; neither model is changed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from padiff_ir._paths import ancestors, layer_pattern, within
from padiff_ir.errors import LayoutError, WeightAssignError
from padiff_ir.frameworks import (
    flatten_tensors,
    framework_of,
    installed,
    model_arguments,
    preserved_state,
)
from padiff_ir.hints import Inputs, Model, Module, Outputs
from padiff_ir.matching.layouts import RowLayout, fused_candidates, offset_candidates
from padiff_ir.matching.transform_types import (
    ArrayTransform,
    RegisteredTransform,
    Transform,
    TransformLike,
    as_transform,
)
from padiff_ir.matching.transforms import class_family
from padiff_ir.matching.types import Matching, ParamPair

__all__ = [
    "LayoutChoice",
    "apply_layouts",
    "discover_layouts",
    "found_layouts",
    "open_layouts",
    "scope_of",
    "layout_kind",
]

logger = logging.getLogger(__name__)

TOLERANCE = 1e-3
"""Largest error, relative to the largest magnitude of A's output, that still reproduces it."""


class _Reached(Exception):
    """Raised from a hook to end B's run at the probe site."""


@dataclass(frozen=True)
class LayoutChoice:
    """What probing decided for one kind of parameter group.

    Attributes:
        kind: the group's parameter names with layer indices as ``*``.
        site: the module pair probed (``a`` path, ``b`` path).
        transform: the chosen transform (``None``: none reproduced the site's outputs).
        candidates: the transforms tried, described.
        errors: each candidate's relative error at the site.
    """

    kind: str
    site: tuple[str, str]
    transform: Transform | None
    candidates: tuple[str, ...]
    errors: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "site": list(self.site),
            "transform": self.transform.to_dict() if self.transform is not None else None,
            "candidates": list(self.candidates),
            "errors": [float(f"{e:.3g}") for e in self.errors],
        }


def layout_kind(pair: ParamPair) -> str:
    """The names of a parameter group with layer indices as ``*``: groups of one kind repeat
    in every layer and share their layout.

    Example:
        >>> layout_kind(ParamPair(("layers.0.q.weight", "layers.0.k.weight"), ("layers.0.qk.w",)))
        'layers.*.q.weight+layers.*.k.weight -> layers.*.qk.w'
    """

    def pattern(names: Sequence[str]) -> str:
        return "+".join(layer_pattern(n) for n in names)

    return f"{pattern(pair.a)} -> {pattern(pair.b)}"


def found_layouts(matching: Matching) -> dict[str, Transform]:
    """Kind of parameter group -> the layout (along axis 0: each pair has its own) or the
    offset its pairs carry (for a layer map)."""
    found: dict[str, Transform] = {}
    for pair in matching.param_pairs:
        transform = pair.transform
        if not isinstance(transform, ArrayTransform):
            continue
        if transform.layout is not None:
            found.setdefault(_coupled_kind(pair), ArrayTransform(layout=transform.layout.at(0)))
        elif transform.offset:
            found.setdefault(_coupled_kind(pair), ArrayTransform(offset=transform.offset))
    return found


def apply_layouts(matching: Matching, layouts: Mapping[str, TransformLike]) -> Matching:
    """``matching`` with the layouts of a layer map (:func:`found_layouts`' form) applied to
    every parameter pair of their kinds; those pairs are not probed again.

    Raises:
        LayoutError: a layout that does not fit the pairs of its kind.
    """
    if not layouts:
        return matching
    pairs = []
    for pair in matching.param_pairs:
        entry = layouts.get(_coupled_kind(pair))
        if entry is None:
            pairs.append(pair)
            continue
        chosen = _layer_map_entry(_coupled_kind(pair), entry)
        transform: Transform = chosen
        if isinstance(chosen, ArrayTransform):  # the pair's own steps, the entry's layout
            own = pair.transform if isinstance(pair.transform, ArrayTransform) else ArrayTransform()
            layout = chosen.layout.at(_rows_axis(pair)) if chosen.layout is not None else None
            transform = replace(own, layout=layout, offset=chosen.offset)
            if layout is not None:
                try:
                    layout.permutation(own.sections)
                except ValueError as err:
                    raise LayoutError(
                        f"the layer map's layout {layout.describe()} for "
                        f"{_coupled_kind(pair)} does not fit {', '.join(pair.b)} (pieces "
                        f"{list(own.sections)}): {err}; fix or remove it"
                    ) from err
        pairs.append(replace(pair, transform=transform, evidence=(*pair.evidence, "layer-map")))
    return replace(matching, param_pairs=pairs)


def _layer_map_entry(kind: str, entry: TransformLike) -> Transform:
    """A layer map's layout entry as a transform (a registered one by its name alone).

    Raises:
        LayoutError: the entry is no layout, offset or registered transform name.
    """
    if isinstance(entry, Mapping) and "name" in entry:  # one registered by register_transform
        return RegisteredTransform(str(entry["name"]))
    try:
        return as_transform(entry)
    except ValueError as err:
        raise LayoutError(
            f"the layer map's layout for {kind} is not a layout: {err}; fix or remove it"
        ) from err


def _rows_axis(pair: ParamPair) -> int:
    """The axis (B's layout) a fused group's rows lie along: a bias's only axis, else the
    axis its transform splits or joins along."""
    if "linear-bias" in pair.evidence or "conv-bias" in pair.evidence:
        return 0
    transform = pair.transform
    if isinstance(transform, ArrayTransform) and transform.regroup is not None:
        return transform.regroup.axis
    return 0


def _candidates(pair: ParamPair, family_b: str) -> list[Transform]:
    """Transforms the pair may need, its own first; one candidate means nothing to decide."""
    transform = pair.transform
    if (
        "layer-map" in pair.evidence
        or not isinstance(transform, ArrayTransform)
        or transform.layout is not None
    ):
        return [transform]  # chosen already (a layer map, a registered transform)
    if transform.regroup is not None and "split-group" in pair.evidence:
        layouts = fused_candidates(transform.sections, _rows_axis(pair))
        return [replace(transform, layout=layout) for layout in layouts] or [transform]
    if "rmsnorm" in family_b and pair.b and pair.b[0].endswith("weight") and len(pair.a) == 1:
        return [replace(transform, offset=offset) for offset in offset_candidates()]
    return [transform]


@dataclass
class _Probe:
    """One discovery: the two models, A's module outputs and the state of B's weights."""

    model_a: Model
    model_b: Model
    inputs_b: Inputs
    matching: Matching
    outputs_a: dict[tuple[str, int], np.ndarray]
    order: list[tuple[str, int]]
    partner: dict[str, str]
    transforms: list[Transform]
    complete: bool = True  # A's record went to the end of its run
    inputs_a: Inputs = None
    forced: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)
    runs: int = 0

    def __post_init__(self) -> None:
        self.fw_a, self.fw_b = framework_of(self.model_a), framework_of(self.model_b)
        self.tensors_a = self.fw_a.named_tensors(self.model_a)
        self.tensors_b = self.fw_b.named_tensors(self.model_b)
        self.saved: dict[str, np.ndarray] = {}  # B's own values of the tensors written
        self.pending: set[int] = set()  # pairs whose B tensors do not hold their transform yet
        index = {key: i for i, key in reversed(list(enumerate(self.order)))}
        self.sites = [self._site_of(p, index) for p in self.matching.param_pairs]
        self.frontier = len(self.order) - 1  # runs go up to this module's completion

    def _site_of(self, pair: ParamPair, index: dict[tuple[str, int], int]) -> tuple[int, int]:
        """Where a pair's parameters are first used and where its module completes (indices
        into ``order``): the deepest module pair holding them all. Past the end when A's
        record stopped before it."""
        scope = scope_of(pair, self.partner)
        while (scope, 0) not in index and scope:  # a module never called (MHA's out_proj)
            scope = next(ancestors(scope), "")
        if (scope, 0) not in index:
            end = len(self.order) - 1
            return (0, end) if self.complete else (end + 1, end + 1)
        first = min(i for key, i in index.items() if within(key[0], scope))
        return first, index[(scope, 0)]

    def record_all(self) -> None:
        """A's record to the end (it stopped where the first groups of each kind complete)."""
        if self.complete:
            return
        self.outputs_a, self.order, self.complete = _record_a(
            self.model_a, self.inputs_a, set(self.partner)
        )
        index = {key: i for i, key in reversed(list(enumerate(self.order)))}
        self.sites = [self._site_of(p, index) for p in self.matching.param_pairs]

    def write(self, index: int, transform: Transform) -> None:
        """Put A's values into B's tensors of pair ``index`` through ``transform`` now."""
        pair = self.matching.param_pairs[index]
        if not (set(pair.a) <= self.tensors_a.keys() and set(pair.b) <= self.tensors_b.keys()):
            # a non-persistent buffer (RoPE ``inv_freq``): derived from the config, never copied
            self.pending.discard(index)
            return
        arrays = [self.fw_a.to_numpy(self.tensors_a[n]) for n in pair.a]
        shapes = [list(self.fw_b.shape(self.tensors_b[n])) for n in pair.b]
        values = transform.apply(arrays, target_shapes=shapes)
        for name, array in zip(pair.b, values):
            if name not in self.saved:
                self.saved[name] = self.fw_b.to_numpy(self.tensors_b[name])
            self.fw_b.write(self.tensors_b[name], array)
        self.transforms[index] = transform
        self.pending.discard(index)

    def choose(self, index: int, transform: Transform) -> None:
        """The transform of pair ``index``: written now when a run can reach its parameters,
        else when the frontier gets there (or never, when no run needs them)."""
        self.transforms[index] = transform
        if self.sites[index][0] <= self.frontier:
            self.write(index, transform)
        else:
            self.pending.add(index)

    def advance(self, frontier: int | None = None) -> None:
        """Let runs go up to ``order[frontier]`` (the end without it), writing the parameters
        they now reach."""
        if frontier is None:
            self.record_all()
            frontier = len(self.order) - 1
        self.frontier = frontier
        for index in sorted(self.pending):
            if self.sites[index][0] <= frontier:
                try:
                    self.write(index, self.transforms[index])
                except WeightAssignError as err:  # left to assign_weight to report
                    logger.debug("probing without %s: %s", self.matching.param_pairs[index].b, err)
                    self.pending.discard(index)

    def force(self, key_a: tuple[str, int]) -> None:
        """From now on B's partner of this module call returns A's output (the module differs
        for a reason probing cannot fix; what follows it can still be probed)."""
        self.forced[(self.partner[key_a[0]], key_a[1])] = self.outputs_a[key_a]

    def restore(self) -> None:
        for name, array in self.saved.items():
            self.fw_b.write(self.tensors_b[name], array)

    def run_b(
        self, stop: tuple[str, int] | None = None, *, until_failure: bool = False
    ) -> dict[tuple[str, int], np.ndarray]:
        """B's module outputs (first tensor per call), forced ones replaced, up to ``stop``
        (or, with ``until_failure``, up to the first output that departs from A's)."""
        fw = self.fw_b
        seen: dict[tuple[str, int], np.ndarray] = {}
        calls: dict[str, int] = {}
        partner_a = {b: a for a, b in self.partner.items()}

        def hook(path: str) -> Callable[..., Any]:
            def post(module: Module, args: Any, output: Outputs) -> Any:
                key = (path, calls.get(path, 0))
                calls[path] = key[1] + 1
                tensors = flatten_tensors(output, fw)
                replaced = None
                if key in self.forced and tensors:
                    value = fw.from_numpy(self.forced[key], like=tensors[0])
                    replaced = _replace_first(output, value, fw)
                    tensors = [value]
                if tensors:
                    seen[key] = fw.to_numpy(tensors[0])
                if key == stop:
                    raise _Reached
                key_a = (partner_a.get(path, ""), key[1])
                if (
                    until_failure
                    and key_a in self.outputs_a
                    and self.error(key_a, seen) > TOLERANCE
                ):
                    raise _Reached
                return replaced

            return post

        modules = dict(fw.named_modules(self.model_b))
        hooks = [(modules[p], None, hook(p)) for p in self.partner.values() if p in modules]
        self.runs += 1
        args, kwargs = model_arguments(fw, self.model_b, self.inputs_b)
        try:
            with fw.no_grad(), installed(fw, hooks):
                fw.run(self.model_b, args, kwargs)
        except _Reached:
            pass
        return seen

    def error(
        self, key_a: tuple[str, int], outputs_b: Mapping[tuple[str, int], np.ndarray]
    ) -> float:
        expected = self.outputs_a[key_a]
        got = outputs_b.get((self.partner[key_a[0]], key_a[1]))
        if got is None:
            return 0.0  # B does not call its partner this often: nothing to compare
        if got.size != expected.size:
            return float("inf")
        scale = float(np.max(np.abs(expected))) if expected.size else 0.0
        diff = np.abs(got.reshape(expected.shape).astype(np.float64) - expected)
        return float(np.max(diff)) / max(scale, 1e-12) if diff.size else 0.0

    def first_failure(self) -> tuple[str, int] | None:
        """The first module of A (up to the frontier) whose output B does not reproduce."""
        partial = self.frontier < len(self.order) - 1 or not self.complete
        end = self.order[self.frontier] if partial else None
        stop = (self.partner[end[0]], end[1]) if end is not None else None
        outputs_b = self.run_b(stop, until_failure=True)
        return next(
            (
                k
                for k in self.order
                if (self.partner[k[0]], k[1]) in outputs_b and self.error(k, outputs_b) > TOLERANCE
            ),
            None,
        )


def scope_of(pair: ParamPair, partner: Mapping[str, str]) -> str:
    """The deepest module of A, paired (``partner``: A path -> B path), that holds all of
    ``pair``'s tensors on both sides (``""``, the model, when no deeper one does)."""
    scope = ""
    for path_a, path_b in partner.items():
        if _inside(pair, path_a, path_b) and len(path_a) >= len(scope):
            scope = path_a
    return scope


def _replace_first(output: Outputs, value: Any, fw: Any) -> Any:
    if fw.is_tensor(output):
        return value
    if isinstance(output, (tuple, list)) and output and fw.is_tensor(output[0]):
        return type(output)([value, *output[1:]])
    return None


def _record_a(
    model: Model, inputs: Inputs, paths: set[str], until: set[str] | None = None
) -> tuple[dict, list, bool]:
    """A's module outputs (first tensor per call) in order of completion, up to the first
    completion of every module in ``until`` (all of the run without it); and whether the
    run went to the end."""
    fw = framework_of(model)
    outputs: dict[tuple[str, int], np.ndarray] = {}
    order: list[tuple[str, int]] = []
    calls: dict[str, int] = {}
    waiting = set(until) if until else set()

    def hook(path: str) -> Callable[..., Any]:
        def post(module: Module, args: Any, output: Outputs) -> None:
            key = (path, calls.get(path, 0))
            calls[path] = key[1] + 1
            tensors = flatten_tensors(output, fw)
            if tensors and fw.is_floating(tensors[0]):
                outputs[key] = fw.to_numpy(tensors[0])
                order.append(key)
            if waiting:
                waiting.discard(path)
                if not waiting:
                    raise _Reached

        return post

    hooks = [(m, None, hook(p)) for p, m in fw.named_modules(model) if p in paths]
    args, kwargs = model_arguments(fw, model, inputs)
    try:
        with preserved_state(model), fw.no_grad(), installed(fw, hooks):
            fw.run(model, args, kwargs)
    except _Reached:
        return outputs, order, False
    return outputs, order, True


def _options(model_b: Model, matching: Matching) -> list[list[Transform]]:
    fw_b = framework_of(model_b)
    families = {
        p: class_family(type(m).__name__, fw_b.name) for p, m in fw_b.named_modules(model_b)
    }
    return [_candidates(pair, families.get(pair.module_b, "")) for pair in matching.param_pairs]


def open_layouts(matching: Matching) -> set[str]:
    """Kinds of fused parameter groups whose layout is still open (shapes fit several)."""
    return {_coupled_kind(pair) for pair in matching.param_pairs if len(_candidates(pair, "")) > 1}


def discover_layouts(
    model_a: Model, inputs_a: Inputs, model_b: Model, inputs_b: Inputs, matching: Matching
) -> Matching:
    """``matching`` with the layouts of its fused and permuted parameters found by probing
    (see the module docstring); ``stats["layouts"]`` lists each decision.

    Raises:
        LayoutError: several candidate layouts reproduce a module's outputs.
    """
    options = _options(model_b, matching)
    kinds: dict[str, list[int]] = {}
    for index, (pair, cands) in enumerate(zip(matching.param_pairs, options)):
        if len(cands) > 1:
            kinds.setdefault(_coupled_kind(pair), []).append(index)
    if not kinds:
        return matching
    start = time.perf_counter()
    partner = {p.a: p.b for p in matching.module_pairs}
    fused = [m for m in kinds.values() if "split-group" in matching.param_pairs[m[0]].evidence]
    scopes = {scope_of(matching.param_pairs[m[0]], partner) for m in fused}
    until = scopes if fused and "" not in scopes else None  # A runs as far as those need
    outputs_a, order, complete = _record_a(model_a, inputs_a, set(partner), until)
    probe = _Probe(
        model_a,
        model_b,
        inputs_b,
        matching,
        outputs_a,
        order,
        partner,
        [p.transform for p in matching.param_pairs],
        complete,
        inputs_a,
    )
    choices: list[LayoutChoice] = []
    try:
        with preserved_state(model_b):
            # runs first go as far as the first group of each kind needs (a decoder's first
            # layer): the parameters after it are written only if a run must go further
            probe.pending = set(range(len(options)))
            probe.advance(max((probe.sites[m[0]][1] for m in fused), default=len(order) - 1))
            _decide(probe, kinds, options, choices)
    finally:
        probe.restore()
    pairs = [replace(p, transform=t) for p, t in zip(matching.param_pairs, probe.transforms)]
    stats = {
        **matching.stats,
        "layouts": [c.to_dict() for c in choices],
        "layout_runs": probe.runs,
        "layout_seconds": round(time.perf_counter() - start, 3),
    }
    return replace(matching, param_pairs=pairs, stats=stats)


def _coupled_kind(pair: ParamPair) -> str:
    """A weight and its bias decide together: the kind of the weight, for both."""
    kind = layout_kind(pair)
    return kind.replace(".bias", ".weight") if "split-group" in pair.evidence else kind


ATTEMPTS = 3
"""Occurrences of a kind of fused group probed before its layout is declared unknown."""


def _decide(
    probe: _Probe,
    kinds: dict[str, list[int]],
    options: list[list[Transform]],
    choices: list[LayoutChoice],
) -> None:
    open_kinds = dict(kinds)
    pairs = probe.matching.param_pairs
    tried: set[int] = set()  # pairs probed at a site where no candidate reproduced
    failed: dict[str, list[LayoutChoice]] = {}

    def fused_open() -> bool:
        return any("split-group" in pairs[m[0]].evidence for m in open_kinds.values())

    for _ in range(len(kinds) * (ATTEMPTS + 1) + len(probe.order) + 2):
        if not fused_open():
            break  # norms not reached take the offset their class got (_settle_norms)
        failure = probe.first_failure()
        if failure is None:  # every group reached so far reproduces its module as it is
            reached = [
                k
                for k, m in open_kinds.items()
                if k not in failed and probe.sites[m[0]][1] <= probe.frontier
            ]
            for done in reached:
                del open_kinds[done]
            if (probe.complete and probe.frontier >= len(probe.order) - 1) or not fused_open():
                break
            probe.advance()
            continue
        site, kind = _site(probe, failure, open_kinds, tried)
        if site is None or kind is None:
            probe.force(failure)
            continue
        here = [
            i
            for i in open_kinds[kind]
            if i not in tried and _inside(pairs[i], site[0], probe.partner[site[0]])
        ]
        choice, chosen = _probe_site(probe, site, kind, here, options)
        if chosen is None:  # a real difference here, or a layout we do not know
            for i in here:
                probe.choose(i, options[i][0])
            tried.update(here)
            probe.force(site)
            failed.setdefault(kind, []).append(choice)
            if len(failed[kind]) >= min(ATTEMPTS, _occurrences(pairs, open_kinds[kind])):
                _give_up(probe, kind, open_kinds.pop(kind), options, failed[kind])
            continue
        for i in open_kinds.pop(kind):
            probe.choose(i, _like(options[i], chosen))
        choices.append(choice)
    for kind in open_kinds:  # probed without success, or never reached
        choices.extend(failed.get(kind, []))
    _settle_norms(probe, open_kinds, options, choices)


def _settle_norms(
    probe: _Probe,
    open_kinds: Mapping[str, list[int]],
    options: list[list[Transform]],
    choices: list[LayoutChoice],
) -> None:
    """Norm weights no run reached (the final norm after the last layer probed) take the
    offset probing found for norms of the same class of B, when all such norms agree."""
    pairs = probe.matching.param_pairs
    classes = {p.b: p.class_b for p in probe.matching.module_pairs}
    found: dict[str, set[float]] = {}
    for choice in choices:
        if isinstance(choice.transform, ArrayTransform) and choice.transform.layout is None:
            cls = classes.get(choice.site[1], "")
            found.setdefault(cls, set()).add(choice.transform.offset)
    for members in open_kinds.values():
        cls = classes.get(pairs[members[0]].module_b, "")
        offsets = found.get(cls, set())
        if len(offsets) == 1 and "split-group" not in pairs[members[0]].evidence:
            offset = offsets.pop()
            for i in members:
                probe.choose(
                    i,
                    next((o for o in options[i] if _offset(o) == offset), options[i][0]),
                )


def _probe_site(
    probe: _Probe,
    site: tuple[str, int],
    kind: str,
    here: list[int],
    options: list[list[Transform]],
) -> tuple[LayoutChoice, Transform | None]:
    """Try every candidate of the pairs ``here`` at ``site``; the choice and the chosen
    transform of the lead pair (``None`` when no candidate reproduces the site)."""
    errors: list[float] = []
    everything = _joint(options, here)
    stop = (probe.partner[site[0]], site[1])
    hints = _head_dims(probe, site)
    tried = [c for c in everything if not hints or _head_dim(c[0], next(iter(hints))) in hints]
    done: list[tuple[Transform, ...]] = []
    for batch in (tried, [c for c in everything if c not in tried]):
        for candidate in batch:
            for i, transform in zip(here, candidate):
                probe.write(i, transform)
            errors.append(probe.error(site, probe.run_b(stop=stop)))
            done.append(candidate)
        if any(e <= TOLERANCE for e in errors):
            break  # the head size the modules declare explains it
    tried = done
    good = sorted(
        (c for c, e in zip(tried, errors) if e <= TOLERANCE), key=lambda c: _complexity(c[0])
    )
    described = tuple(" | ".join(t.describe() for t in c) for c in tried)
    if len(good) > 1 and _complexity(good[0][0]) == _complexity(good[1][0]):
        raise LayoutError(
            f"{len(good)} layouts of {kind} reproduce the outputs of {site[0]!r} "
            f"({probe.partner[site[0]]!r} in B): "
            + "; ".join(d for d, e in zip(described, errors) if e <= TOLERANCE)
            + ". Pin one in the layer map (LayerMap.layouts) or register a transform."
        )
    chosen = good[0][0] if good else None
    logger.info(
        "layout of %s at %r: %s (%d candidates)",
        kind,
        site[0],
        chosen.describe() if chosen is not None else "none reproduces",
        len(tried),
    )
    choice = LayoutChoice(kind, (site[0], probe.partner[site[0]]), chosen, described, tuple(errors))
    return choice, chosen


_HEAD_DIM_NAMES = ("head_dim", "head_size", "attention_head_size")


def _head_dims(probe: _Probe, site: tuple[str, int]) -> set[int]:
    """Head sizes the modules at ``site`` (and inside them) declare, on either side: probing
    tries the layouts of those first, and the others only when none of those reproduces."""
    found: set[int] = set()
    for model, path in ((probe.model_a, site[0]), (probe.model_b, probe.partner[site[0]])):
        for name, module in framework_of(model).named_modules(model):
            if within(name, path):
                for attribute in _HEAD_DIM_NAMES:
                    value = getattr(module, attribute, None)
                    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                        found.add(value)
    return found


def _occurrences(pairs: Sequence[ParamPair], members: list[int]) -> int:
    return len({(pairs[i].module_a, pairs[i].module_b) for i in members})


def _give_up(
    probe: _Probe,
    kind: str,
    members: list[int],
    options: list[list[Transform]],
    attempts: list[LayoutChoice],
) -> None:
    """No candidate reproduced any probed occurrence: a norm keeps its plain weights (its
    difference is reported where it is); a fused group's layout is unknown."""
    lead = probe.matching.param_pairs[members[0]]
    if "split-group" not in lead.evidence:
        for i in members:
            probe.write(i, options[i][0])
        return
    shapes_a = ", ".join(f"{n} {list(probe.fw_a.shape(probe.tensors_a[n]))}" for n in lead.a)
    shapes_b = ", ".join(f"{n} {list(probe.fw_b.shape(probe.tensors_b[n]))}" for n in lead.b)
    tried = "; ".join(
        f"{d} (error {e:.3g})" for d, e in zip(attempts[0].candidates, attempts[0].errors)
    )
    raise LayoutError(
        f"no known layout of the fused parameters {kind} reproduces the outputs of "
        f"{', '.join(repr(a.site[0]) for a in attempts)}: A {shapes_a}; B {shapes_b}. "
        f"Tried: {tried}. Register the layout with padiff_ir.register_transform(name, forward, "
        "inverse) and name it in the layer map (LayerMap.layouts), or, if these modules' code "
        "differs in every layer, pin the layout you expect in the layer map to compare anyway"
    )


def _complexity(transform: Transform) -> int:
    """How much a candidate departs from the plain layout: layouts that reproduce a module
    equally (q and k rows permuted alike leave attention unchanged without a rotary
    embedding) resolve to the one that departs least."""
    if not isinstance(transform, ArrayTransform):
        return 0
    layout = transform.layout
    if layout is None:
        return int(bool(transform.offset))
    order = layout.order
    return (
        int(bool(layout.rope))
        + int(layout.name in ("fused_qkv_grouped", "fused_interleaved"))
        + int(order is not None and list(order) != sorted(order))
        + int(bool(transform.offset))
    )


def _offset(transform: Transform) -> float:
    return transform.offset if isinstance(transform, ArrayTransform) else 0.0


def _row_layout(transform: Transform) -> RowLayout | None:
    return transform.layout if isinstance(transform, ArrayTransform) else None


def _head_dim(transform: Transform, default: int) -> int:
    """The head size a candidate's layout assumes (``default`` when it assumes none)."""
    layout = _row_layout(transform)
    return layout.head_dim if layout is not None and layout.head_dim is not None else default


def _inside(pair: ParamPair, path_a: str, path_b: str) -> bool:
    return all(within(n, path_a) for n in pair.a) and all(within(n, path_b) for n in pair.b)


def _site(
    probe: _Probe,
    failure: tuple[str, int],
    open_kinds: Mapping[str, list[int]],
    tried: set[int],
) -> tuple[tuple[str, int] | None, str | None]:
    """The nearest module pair around ``failure`` (the model itself excepted) that holds open
    parameters not probed yet, and their kind; ``(None, None)`` when none does."""
    pairs = probe.matching.param_pairs
    later = probe.order[probe.order.index(failure) :]
    sites = [failure]
    for path in ancestors(failure[0]):
        key = next((k for k in later if k[0] == path), None)
        if path and key is not None:
            sites.append(key)
    for key in sites:
        path_b = probe.partner[key[0]]
        for kind, members in open_kinds.items():
            if any(i not in tried and _inside(pairs[i], key[0], path_b) for i in members):
                return key, kind
    return None, None


def _joint(options: list[list[Transform]], here: list[int]) -> list[tuple[Transform, ...]]:
    """Candidates for the pairs ``here`` together: a weight and its bias take the same layout."""
    return [tuple(_like(options[i], candidate) for i in here) for candidate in options[here[0]]]


def _like(options: list[Transform], chosen: Transform) -> Transform:
    """The option of another pair of the same kind that makes the same choice as ``chosen``."""
    for option in options:
        if _offset(option) == _offset(chosen) and _same_layout(option, chosen):
            return option
    return options[0]


def _same_layout(x: Transform, y: Transform) -> bool:
    lx, ly = _row_layout(x), _row_layout(y)
    if lx is None or ly is None:
        return lx is ly
    return lx.at(0) == ly.at(0)
