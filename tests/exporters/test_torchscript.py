"""The opt-in TorchScript torch exporter (``PADIFF_IR_TORCH_EXPORTER=torchscript``): the same
kind of attributed graph as the dynamo exporter's, and ``match`` on the zoo pairs with it."""

from __future__ import annotations

import numpy as np
import pytest

import padiff_ir
from padiff_ir.errors import ExportError, OptionError
from padiff_ir.exporters import export
from padiff_ir.exporters._fingerprint import model_fingerprint
from padiff_ir.exporters._torchscript import BACKEND_VARIABLE
from padiff_ir.frameworks import normalize_inputs
from padiff_ir.zoo import get_pair, list_pairs
from tests.compare import bugs
from tests.compare.call_site_pairs import example_input, pair
from tests.exporters.models import TorchDataDependent
from tests.matching.models import TorchMha
from tests.reliability import models as reliability_models


@pytest.fixture
def torchscript(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BACKEND_VARIABLE, "torchscript")


def test_nodes_know_their_module_call_and_parameters(torchscript):
    model, _ = pair()
    exported = export(model, example_input())
    modules = dict(model.named_modules())
    assert set(exported.node_modules.values()) <= set(modules)
    pools = {n: c for n, c in exported.node_calls.items() if exported.node_modules[n] == "pool"}
    assert sorted(pools.values()) == [0, 1, 2]
    assert set(exported.node_calls) == set(pools)  # only the shared layer has call indices
    assert exported.node_classes[next(iter(pools))] == "MaxPool2d"
    assert exported.parameters == {name: name for name, _ in model.named_parameters()}
    assert exported.input_names == ("x",)


@pytest.mark.parametrize("name", ["cnn", "vit", "bert"])
def test_every_initializer_is_a_parameter(torchscript, name):
    zoo = get_pair(name)
    exported = export(zoo.torch_model, zoo.inputs)
    initializers = {t.name for t in exported.model.graph.initializer}
    assert initializers == set(exported.parameters)
    assert exported.modules == {n: type(m).__name__ for n, m in zoo.torch_model.named_modules()}
    assert exported.input_names == tuple(zoo.inputs)


def test_the_cache_key_tells_the_exporters_apart(monkeypatch):
    zoo = get_pair("mlp")
    inputs = normalize_inputs(zoo.inputs)
    monkeypatch.delenv(BACKEND_VARIABLE, raising=False)
    dynamo = model_fingerprint(zoo.torch_model, "torch", inputs, None)
    monkeypatch.setenv(BACKEND_VARIABLE, "torchscript")
    assert model_fingerprint(zoo.torch_model, "torch", inputs, None) != dynamo
    monkeypatch.setenv(BACKEND_VARIABLE, "tracing")
    with pytest.raises(OptionError, match="dynamo, torchscript"):
        export(zoo.torch_model, zoo.inputs)


@pytest.mark.parametrize("name", list_pairs())
def test_zoo_pairs_are_aligned(torchscript, name):
    zoo = get_pair(name)
    result = padiff_ir.match(zoo.torch_model, zoo.paddle_model, zoo.inputs, atol=1e-4, rtol=1e-4)
    assert result, str(result)
    assert result.culprits == []


def test_a_value_dependent_trace_is_refused(torchscript):
    with pytest.raises(ExportError, match="depends on input values"):
        export(TorchDataDependent(), np.ones((2, 3), np.float32))


def test_torchs_own_shape_checks_are_traced(torchscript):
    # MultiheadAttention compares traced shapes in torch's code: the tracer warns, the export
    # goes on (shapes are in the cache key)
    exported = export(TorchMha(), np.ones((2, 5, 16), np.float32))
    assert set(exported.node_modules.values()) == {"attn"}  # out_proj is read, not called
    assert "attn.out_proj.weight" in exported.parameters


def test_forward_defaults_stay_constants(torchscript):
    # forward(self, x, scale=1.0, **kwargs): the exporter passes scale; it is no graph input
    exported = export(reliability_models.TorchScaled(), {"x": reliability_models.inputs()})
    assert exported.input_names == ("x",)


def test_an_injected_bug_is_found(torchscript):
    zoo = get_pair("vit")
    zoo.paddle_model.blocks[0].attn.__class__ = bugs.WrongSoftmaxAttention
    result = padiff_ir.match(zoo.torch_model, zoo.paddle_model, zoo.inputs)
    assert not result
    assert [c.module_a for c in result.culprits] == ["blocks.0.attn"], str(result)


def test_the_call_of_a_shared_layer_is_the_culprit(torchscript):
    model_a, model_b = pair(ceil_mode=True)
    result = padiff_ir.match(model_a, model_b, example_input())
    assert [(c.module_a, c.module_b) for c in result.culprits] == [("pool#2", "pool2")], str(result)
