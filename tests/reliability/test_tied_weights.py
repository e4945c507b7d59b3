"""Tied parameters (issue 24): a weight one side shares between two layers pairs once per use,
``assign_weights`` copies it into every target it reaches, and a real difference in one of them
is still named."""

from __future__ import annotations

import numpy as np
import pytest

import padiff_ir
from tests.reliability.interface_models import (
    PaddleTiedPair,
    PaddleTinyLM,
    TorchTiedPair,
    TorchTinyLM,
)
from tests.reliability.models import inputs

IDS = np.array([[1, 2, 3], [4, 5, 10]], np.int64)
MODELS = {
    "two linears": (TorchTiedPair, PaddleTiedPair, inputs()),
    "an embedding and its output projection": (TorchTinyLM, PaddleTinyLM, IDS),
}
TIES = {"torch side": (True, False), "paddle side": (False, True), "both sides": (True, True)}


@pytest.mark.parametrize("ties", list(TIES))
@pytest.mark.parametrize("models", list(MODELS))
def test_assign_weights_reaches_every_use_of_a_tied_weight(guard, models, ties):
    torch_class, paddle_class, given = MODELS[models]
    tied_a, tied_b = TIES[ties]
    model_a, model_b = torch_class(tied_a).eval(), paddle_class(tied_b).eval()
    guard.watch(model_a)  # assign_weights writes A's weights into B
    assert not padiff_ir.match(model_a, model_b, given).ok  # their own weights differ
    result = padiff_ir.match(model_a, model_b, given, assign_weights=True)
    assert result.ok, [str(c) for c in result.culprits]


@pytest.mark.parametrize("layer", ["first", "second"])
@pytest.mark.parametrize("ties", list(TIES))
def test_a_difference_in_a_tied_weight_is_named(guard, ties, layer):
    tied_a, tied_b = TIES[ties]
    model_a, model_b = TorchTiedPair(tied_a).eval(), PaddleTiedPair(tied_b).eval()
    guard.watch(model_a)
    padiff_ir.assign_weight(model_b, model_a, inputs=inputs())
    bugged = getattr(model_b, layer).weight
    weight = bugged.numpy()
    weight[1, 2] += 0.5
    bugged.set_value(weight)
    result = padiff_ir.match(model_a, model_b, inputs())
    assert not result.ok
    assert layer in [c.module_b for c in result.culprits]
    for culprit in result.culprits:  # each layer reading the bugged weight names it
        assert any("max abs 0.5" in d for d in culprit.param_diffs), culprit


def test_the_export_of_a_tied_model_never_stands_in_for_an_untied_one(guard):
    tied, untied = TorchTiedPair(True).eval(), TorchTiedPair(False).eval()
    guard.watch(tied, untied)
    assert set(padiff_ir.export(tied, inputs()).parameters.values()) == {
        "first.bias",
        "second.weight",
        "second.bias",
    }
    assert set(padiff_ir.export(untied, inputs()).parameters.values()) == {
        "first.weight",
        "first.bias",
        "second.weight",
        "second.bias",
    }
