"""Keyword-only and defaulted ``forward`` arguments as inputs; a tensor returned twice
(issue 24): each gives a verdict, and a real difference is still found."""

from __future__ import annotations

import numpy as np
import pytest

import padiff_ir
from tests.reliability.interface_models import (
    PaddleDefaulted,
    PaddleKeywordOnly,
    PaddleTwice,
    TorchDefaulted,
    TorchKeywordOnly,
    TorchTwice,
)
from tests.reliability.models import inputs

SCALE = np.full((2, 4), 2.0, np.float32)


def _bugged(model):
    model.fc.bias.set_value(model.fc.bias.numpy() + 0.5)
    return model


CASES = {
    "keyword-only": (TorchKeywordOnly, PaddleKeywordOnly, {"x": inputs(), "scale": SCALE}),
    "defaulted left out": (TorchDefaulted, PaddleDefaulted, {"x": inputs(), "shift": SCALE}),
    "returned twice": (TorchTwice, PaddleTwice, inputs()),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_models_align_and_a_bug_is_named(guard, case):
    torch_class, paddle_class, given = CASES[case]
    model_a, model_b, bugged = torch_class().eval(), paddle_class().eval(), paddle_class().eval()
    _bugged(bugged)
    guard.watch(model_a, model_b, bugged)
    result = padiff_ir.match(model_a, model_b, given)
    assert result.ok, result.notes
    found = padiff_ir.match(model_a, bugged, given)
    assert not found.ok
    assert [c.module_b for c in found.culprits] == ["fc"]


def test_a_keyword_only_argument_is_no_unknown_argument(guard):
    model = TorchKeywordOnly().eval()
    guard.watch(model)
    exported = padiff_ir.export(model, {"x": inputs(), "scale": SCALE})
    assert len(exported.input_names) == 2


def test_an_output_returned_twice_is_paired_twice(guard):
    model_a, model_b = TorchTwice().eval(), PaddleTwice().eval()
    guard.watch(model_a, model_b)
    result = padiff_ir.match(model_a, model_b, inputs())
    assert len(result.outputs) == 2 and all(p.ok for p in result.outputs)
