"""The native path and the layer-map entry points: global RNG states untouched even when the
user's forward draws from them, and typed errors for unusable options."""

from __future__ import annotations

import numpy as np
import pytest

import padiff_ir
from padiff_ir.errors import OptionError
from tests.reliability.models import DIM, PaddleRandomUser, TorchRandomUser

X = np.random.default_rng(4).standard_normal((2, DIM)).astype(np.float32)

_CALLS = {
    "match": lambda t, p: padiff_ir.match(t, p, {"x": X}),
    "auto_layer_map": lambda t, p: padiff_ir.auto_layer_map(t, p, {"x": X}),
    "assign_weight with inputs": lambda t, p: padiff_ir.assign_weight(p, t, inputs={"x": X}),
    "auto_diff forward": lambda t, p: padiff_ir.auto_diff(
        t, p, {"x": X}, atol=1e-6, diff_phase="forward"
    ),
    "auto_diff both": lambda t, p: padiff_ir.auto_diff(t, p, {"x": X}, atol=1e-6),
}


@pytest.mark.parametrize("name", list(_CALLS))
def test_a_forward_drawing_random_numbers_leaves_the_global_rngs(name, guard):
    torch_model, paddle_model = TorchRandomUser().eval(), PaddleRandomUser()
    paddle_model.eval()
    if not name.startswith("assign"):
        guard.watch(torch_model, paddle_model)
    _CALLS[name](torch_model, paddle_model)


@pytest.mark.parametrize(
    "call",
    [
        lambda t, p: padiff_ir.auto_diff(t, p, {"x": X}, atol="x"),
        lambda t, p: padiff_ir.auto_diff(t, p, {"x": X}, rtol=float("nan")),
        lambda t, p: padiff_ir.auto_diff(t, p, {"x": X}, atol=-1.0),
    ],
    ids=["atol-string", "rtol-nan", "atol-negative"],
)
def test_auto_diff_tolerances_are_checked(call, guard):
    torch_model, paddle_model = TorchRandomUser().eval(), PaddleRandomUser()
    guard.watch(torch_model, paddle_model)
    with pytest.raises(OptionError, match=r"(atol|rtol) must be .*>= 0") as info:
        call(torch_model, paddle_model)
    assert info.value.option in ("atol", "rtol")


@pytest.mark.parametrize(
    "call",
    [
        lambda t, p: padiff_ir.auto_diff(t, p, {"x": X}, layer_map=3),
        lambda t, p: padiff_ir.assign_weight(p, t, 3),
        lambda t, p: padiff_ir.auto_layer_map(t, p, {"x": X}, layer_map=[("fc", "fc")]),
    ],
    ids=["auto_diff", "assign_weight", "auto_layer_map"],
)
def test_a_layer_map_of_another_type_is_an_option_error(call, guard):
    torch_model, paddle_model = TorchRandomUser().eval(), PaddleRandomUser()
    guard.watch(torch_model, paddle_model)
    with pytest.raises(OptionError, match="layer_map must be a LayerMap or a dict") as info:
        call(torch_model, paddle_model)
    assert info.value.option == "layer_map"


def test_a_dict_layer_map_works_everywhere():
    torch_model, paddle_model = TorchRandomUser().eval(), PaddleRandomUser()
    paddle_model.eval()
    pins = {"fc": "fc"}
    assert (
        padiff_ir.auto_layer_map(torch_model, paddle_model, {"x": X}, layer_map=pins).pairs["fc"]
        == "fc"
    )
    padiff_ir.assign_weight(paddle_model, torch_model, pins)
    result = padiff_ir.auto_diff(
        torch_model, paddle_model, {"x": X}, layer_map=pins, atol=1e-5, rtol=1e-4
    )
    assert result, str(result)
