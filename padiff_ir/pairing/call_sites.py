"""Call sites: one module pair per call of a layer called several times.

A model may keep one pooling layer and call it three times where its port has three pooling
layers. The matching pairs modules, so A's ``pool`` pairs with one of B's three and the other
two stay alone; a difference in the second call could only be blamed on the whole model.
Every op of an export or a trace knows which call of its module made it (``op.meta["call"]``,
from the exporters' attribution or the trace), so here each pair whose module (on either side)
was called several times becomes one pair per call: the ops of A's call ``c``, their boundary
tensors, and the call of B whose ops produce the partners of those tensors (``pool#2`` with
``pool2``). Call sites are split for modules whose ops are their own (no submodule has ops);
a container called several times stays one pair over all its calls.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import replace

from padiff_ir._paths import call_site, strictly_within
from padiff_ir.ir import Graph
from padiff_ir.matching.types import Matching, ModulePair

__all__ = ["module_calls", "producer_site", "split_call_sites"]

logger = logging.getLogger(__name__)

_Calls = dict[int, list[str]]  # call index -> op names, in graph order


def module_calls(graph: Graph) -> dict[str, _Calls]:
    """Module path -> its ops per call, for the leaf modules called several times.

    An op without a call index (a helper op an exporter added) joins the call of the op of the
    same module it reads from or feeds.
    """
    by_module: dict[str, list[str]] = defaultdict(list)
    for op in graph.topological_order():
        if op.kind == "data":
            by_module[op.module_path].append(op.name)
    found: dict[str, _Calls] = {}
    for path, names in by_module.items():
        calls = {graph.ops[n].meta.get("call") for n in names} - {None}
        if len(calls) < 2 or any(strictly_within(p, path) for p in by_module if p != path):
            continue
        call_of = {n: graph.ops[n].meta["call"] for n in names if "call" in graph.ops[n].meta}
        for name in names:  # helper ops: the call of a neighbour of the same module
            if name in call_of:
                continue
            op = graph.ops[name]
            near = [graph.producer(t) for t in op.inputs] + [
                c for t in op.outputs for c in graph.consumers(t)
            ]
            call_of[name] = next((call_of[o.name] for o in near if o and o.name in call_of), 0)
        per_call: _Calls = defaultdict(list)
        for name in names:
            per_call[call_of[name]].append(name)
        found[path] = dict(sorted(per_call.items()))
    return found


def _boundary(graph: Graph, ops: list[str]) -> tuple[list[str], list[str]]:
    """Activation tensors the ops read from outside, and those they make for outside."""
    inside = set(ops)
    made = {t for n in ops for t in graph.ops[n].outputs}
    outputs_of_graph = set(graph.outputs)
    inputs: dict[str, None] = {}
    outputs: dict[str, None] = {}
    for name in ops:
        op = graph.ops[name]
        for tensor in op.inputs:
            info = graph.tensors.get(tensor)
            producer = graph.producer(tensor)
            if tensor in made or (info is not None and info.is_param):
                continue
            if producer is not None and producer.kind != "data":
                continue
            inputs[tensor] = None
        for tensor in op.outputs:
            used_outside = any(c.name not in inside for c in graph.consumers(tensor))
            if used_outside or tensor in outputs_of_graph:
                outputs[tensor] = None
    return list(inputs), list(outputs)


def _site_of(graph: Graph, calls: dict[str, _Calls], tensor: str) -> tuple[str, int | None] | None:
    producer = graph.producer(tensor)
    if producer is None:
        return None
    per_call = calls.get(producer.module_path)
    if per_call is None:
        return producer.module_path, None
    call = next((c for c, names in per_call.items() if producer.name in names), None)
    return producer.module_path, call


def producer_site(graph: Graph, calls: dict[str, _Calls], tensor: str, default: str) -> str:
    """The call site (``pool#2``) of the op making ``tensor`` when its module was called
    several times (``calls`` from :func:`module_calls`), else ``default``."""
    site = _site_of(graph, calls, tensor)
    if site is None or site[1] is None:
        return default
    return call_site(*site)


class _Splitter:
    """The state of one split: both graphs, their call sites, the tensor pairs."""

    def __init__(self, matching: Matching, graph_a: Graph, graph_b: Graph) -> None:
        self.matching = matching
        self.graph_a, self.graph_b = graph_a, graph_b
        self.calls_a, self.calls_b = module_calls(graph_a), module_calls(graph_b)
        self.b_of: dict[str, str] = {}
        self.a_of: dict[str, str] = {}
        for pair in matching.tensor_pairs:
            if len(pair.a) == 1 and len(pair.b) == 1:
                self.b_of.setdefault(pair.a[0], pair.b[0])
                self.a_of.setdefault(pair.b[0], pair.a[0])
        self.paired_b = {p.b for p in matching.module_pairs}
        self.classes_b = graph_b.modules

    def split(self, pair: ModulePair) -> list[ModulePair]:
        calls_a = self.calls_a.get(pair.a)
        calls_b = self.calls_b.get(pair.b)
        if calls_a is None:
            if calls_b is None:
                return [pair]
            # B calls a layer several times where A has one module per call
            return [self._swap(p) for p in self._sites(self._swap(pair), calls_b, swapped=True)]
        return self._sites(pair, calls_a, swapped=False)

    def _sites(self, pair: ModulePair, calls: _Calls, *, swapped: bool) -> list[ModulePair]:
        graph_a, graph_b = (self.graph_b, self.graph_a) if swapped else (self.graph_a, self.graph_b)
        calls_b = self.calls_a if swapped else self.calls_b
        partner = self.a_of if swapped else self.b_of
        paired_b = {p.a for p in self.matching.module_pairs} if swapped else self.paired_b
        sites: list[ModulePair] = []
        leftover: list[int] = []
        for call, ops in calls.items():
            inputs, outputs = _boundary(graph_a, ops)
            votes = Counter(
                site
                for tensor in outputs
                if tensor in partner
                for site in [_site_of(graph_b, calls_b, partner[tensor])]
                if site is not None and (site[0] == pair.b or site[0] not in paired_b)
            )
            if not votes:  # outputs unpaired (a shape changed upstream): who reads the inputs
                votes = Counter(
                    site
                    for tensor in inputs
                    if tensor in partner
                    for reader in graph_b.consumers(partner[tensor])
                    for site in [_site_of(graph_b, calls_b, reader.outputs[0])]
                    if reader.outputs
                    and site is not None
                    and site[0] not in paired_b
                    and graph_b.modules.get(site[0]) == pair.class_b
                )
            if not votes:
                leftover.append(call)
                continue
            (path_b, call_b), _ = votes.most_common(1)[0]
            ins = [(t, partner[t]) for t in inputs if t in partner]
            outs = [(t, partner[t]) for t in outputs if t in partner]
            classes = self.graph_a.modules if swapped else self.classes_b
            sites.append(
                replace(
                    pair,
                    b=path_b,
                    class_b=classes.get(path_b, pair.class_b),
                    call_a=call,
                    call_b=call_b,
                    inputs_a=tuple(a for a, _ in ins),
                    inputs_b=tuple(b for _, b in ins),
                    outputs_a=tuple(a for a, _ in outs),
                    outputs_b=tuple(b for _, b in outs),
                    evidence=(*pair.evidence, "call-site"),
                )
            )
        sites += self._by_position(pair, leftover, sites, graph_b, paired_b)
        return sorted(sites, key=lambda p: p.call_a or 0) or [pair]

    def _by_position(
        self,
        pair: ModulePair,
        calls: list[int],
        sites: list[ModulePair],
        graph_b: Graph,
        paired_b: set[str],
    ) -> list[ModulePair]:
        """Calls without a tensor to tell their partner (the matching lost them downstream of
        a shape change): the other side's unpaired modules of the same class, in graph order."""
        taken = {p.b for p in sites}
        first: dict[str, int] = {}
        for op in graph_b.topological_order():
            first.setdefault(op.module_path, op.index)
        free = sorted(
            (
                path
                for path, cls in graph_b.modules.items()
                if cls == pair.class_b and path not in paired_b and path not in taken
            ),
            key=lambda path: first.get(path, 1 << 30),
        )
        return [
            replace(
                pair,
                b=path,
                call_a=call,
                call_b=None,
                inputs_a=(),
                inputs_b=(),
                outputs_a=(),
                outputs_b=(),
                evidence=(*pair.evidence, "call-site", "position"),
            )
            for call, path in zip(calls, free)
        ]

    @staticmethod
    def _swap(pair: ModulePair) -> ModulePair:
        return replace(
            pair,
            a=pair.b,
            b=pair.a,
            class_a=pair.class_b,
            class_b=pair.class_a,
            inputs_a=pair.inputs_b,
            inputs_b=pair.inputs_a,
            outputs_a=pair.outputs_b,
            outputs_b=pair.outputs_a,
            call_a=pair.call_b,
            call_b=pair.call_a,
        )


def split_call_sites(matching: Matching, graph_a: Graph, graph_b: Graph) -> Matching:
    """``matching`` with one module pair per call of the leaf modules called several times
    (on either side); modules of the other side that a call pairs with leave ``unmatched``.

    The pairs stay in data-flow order: the calls of a module take its place, in call order.
    """
    splitter = _Splitter(matching, graph_a, graph_b)
    if not splitter.calls_a and not splitter.calls_b:
        return matching
    pairs: list[ModulePair] = []
    seen: set[tuple[str, int | None, str, int | None]] = set()
    for pair in matching.module_pairs:
        for site in splitter.split(pair):
            key = (site.a, site.call_a, site.b, site.call_b)
            if key not in seen:
                seen.add(key)
                pairs.append(site)
    if len(pairs) == len(matching.module_pairs):
        return matching
    paired = {("a", p.a) for p in pairs} | {("b", p.b) for p in pairs}
    unmatched = [
        u for u in matching.unmatched if not (u.kind == "module" and (u.side, u.name) in paired)
    ]
    logger.debug("call sites: %d module pairs became %d", len(matching.module_pairs), len(pairs))
    stats = {**matching.stats, "call_sites": len(pairs) - len(matching.module_pairs)}
    return replace(matching, module_pairs=pairs, unmatched=unmatched, stats=stats)
