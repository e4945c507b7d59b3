"""What a later check of the same models reuses: the canonical graph of a cached export."""

from __future__ import annotations

import numpy as np
import torch

from padiff_ir.exporters import export
from padiff_ir.ir import build_graph, canonicalize
from padiff_ir.pairing.pair import canonical_graph


def _model() -> torch.nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))


def test_a_cached_export_is_built_into_a_graph_once(cache):
    model = _model()
    x = np.ones((2, 4), np.float32)
    first = export(model, x)
    with torch.no_grad():
        model[0].weight.add_(1.0)  # weights are not part of the graph
    second = export(model, x)
    assert cache.hits == 1 and first.fingerprint == second.fingerprint != ""
    graph = canonical_graph(first)
    assert canonical_graph(second) is graph
    fresh = canonicalize(build_graph(second))
    assert sorted(fresh.ops) == sorted(graph.ops)
    assert {n: op.op_type for n, op in fresh.ops.items()} == {
        n: op.op_type for n, op in graph.ops.items()
    }


def test_another_input_signature_gets_its_own_graph(cache):
    model = _model()
    small = export(model, np.ones((2, 4), np.float32))
    large = export(model, np.ones((5, 4), np.float32))
    assert small.fingerprint != large.fingerprint
    assert canonical_graph(small) is not canonical_graph(large)
    shapes = {t.shape for t in canonical_graph(large).tensors.values() if t.is_input}
    assert (5, 4) in shapes


def test_an_export_without_fingerprint_is_built_each_time(cache, monkeypatch):
    monkeypatch.setattr(cache, "enabled", False)
    exported = export(_model(), np.ones((2, 4), np.float32))
    assert exported.fingerprint == ""
    assert canonical_graph(exported) is not canonical_graph(exported)
