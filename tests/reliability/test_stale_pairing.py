"""The layer map, the weight copies and auto_diff are made on verified graphs: a cached export
that a change the fingerprint cannot see made stale (here a routing function held in a
closure: the same layers, called in the other order) is exported again, and the pairs follow
the model as it is now."""

from __future__ import annotations

import numpy as np
import torch

import padiff_ir
from padiff_ir.pairing.served import reproduces, verified_pair


class Reference(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first = torch.nn.Linear(6, 6)
        self.second = torch.nn.Linear(6, 6)

    def forward(self, x):
        return self.second(torch.relu(self.first(x)))


def p_first(model, x):
    return model.q(torch.relu(model.p(x)))


def q_first(model, x):
    return model.p(torch.relu(model.q(x)))


def routed_class(route):
    """A class made by a factory: its forward's closure holds ``route``."""

    class RoutedNet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.p = torch.nn.Linear(6, 6)
            self.q = torch.nn.Linear(6, 6)

        def forward(self, x):
            return route(self, x)

    return RoutedNet


def _inputs() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((3, 6)).astype(np.float32)


def _reference() -> Reference:
    torch.manual_seed(0)
    return Reference()


def _served_then_rerouted() -> tuple[Reference, torch.nn.Module]:
    """A first layer map caches B's graph with ``p`` first; the model returned calls ``q``
    first, with the same fingerprint."""
    reference = _reference()
    first = padiff_ir.auto_layer_map(reference, routed_class(p_first)(), _inputs())
    assert first.pairs["first"] == "p"
    return reference, routed_class(q_first)()


def test_auto_layer_map_follows_the_model_as_it_is_now(cache):
    reference, rerouted = _served_then_rerouted()
    hits = cache.hits
    layer_map = padiff_ir.auto_layer_map(reference, rerouted, _inputs())
    assert cache.hits > hits  # the stale graph was served, and found so
    assert (layer_map.pairs["first"], layer_map.pairs["second"]) == ("q", "p")


def test_assign_weight_copies_through_the_pairs_of_the_model_now(cache):
    reference, rerouted = _served_then_rerouted()
    padiff_ir.assign_weight(rerouted, reference, inputs=_inputs())
    x = torch.from_numpy(_inputs())
    with torch.no_grad():
        torch.testing.assert_close(rerouted(x), reference(x))


def test_auto_diff_on_a_model_changed_after_a_first_call(cache):
    reference, rerouted = _served_then_rerouted()
    result = padiff_ir.auto_diff(reference, rerouted, _inputs())
    assert result, str(result)


def test_a_served_graph_is_checked_against_one_eager_forward(cache):
    reference, rerouted = _served_then_rerouted()
    x = _inputs()
    served, _ = padiff_ir.exporters.export_pair(rerouted, x, reference, x, check=False)
    assert served.cached and not reproduces(served, rerouted, x)
    fresh, _ = verified_pair(rerouted, x, reference, x)
    assert not fresh.cached and reproduces(fresh, rerouted, x)
    again, _ = verified_pair(rerouted, x, reference, x)  # the fresh graph is the entry now
    assert again.cached and reproduces(again, rerouted, x)
