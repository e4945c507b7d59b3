"""One matcher: every entry point gives the same layer map for the same pair of models.

Each entry point runs on its own fresh copy of the pair (nothing remembered between them):
``auto_layer_map``, ``match(...).layer_map`` and the layer pairs ``auto_diff`` compares must be
identical, on the zoo pairs, their renamed variants and the special cases; and
``assign_weight`` (without inputs, on the module trees) makes outputs agree wherever
``match(assign_weights=True)`` does.
"""

from __future__ import annotations

import numpy as np
import paddle
import pytest
import torch

import padiff_ir
from padiff_ir.zoo import get_pair
from tests.matching.models import CASES, renamed
from tests.matching.native_models import randomize

_ZOO = ["mlp", "cnn", "vit", "vitpose", "bert"]


def _zoo(name: str, rename: bool):
    def make():
        pair = get_pair(name, "tiny")
        torch_model = renamed(pair.torch_model)[0] if rename else pair.torch_model
        return torch_model, pair.paddle_model, dict(pair.inputs)

    return make


def _case(name: str):
    def make():
        case = CASES[name]()
        return case.torch_model, case.paddle_model, dict(case.inputs)

    return make


_PAIRS = {
    **{f"zoo-{n}": _zoo(n, False) for n in _ZOO},
    **{f"zoo-{n}-renamed": _zoo(n, True) for n in ("mlp", "cnn", "vit")},
    **{f"case-{n}": _case(n) for n in CASES},
}


def _as_map(pairs) -> dict[str, str]:
    return {p.a: p.b for p in pairs}


@pytest.mark.parametrize("name", list(_PAIRS))
def test_every_entry_point_gives_the_same_layer_map(name):
    make = _PAIRS[name]
    torch_model, paddle_model, inputs = make()
    from_auto = padiff_ir.auto_layer_map(torch_model, paddle_model, inputs).pairs
    torch_model, paddle_model, inputs = make()
    from_match = _as_map(
        padiff_ir.match(torch_model, paddle_model, inputs, localize=False).layer_map
    )
    torch_model, paddle_model, inputs = make()
    diff = padiff_ir.auto_diff(
        torch_model,
        paddle_model,
        inputs,
        auto_init=False,
        diff_phase="forward",
        atol=1e-4,
        rtol=1e-4,
    )
    from_auto_diff = _as_map(diff.layer_map)
    assert from_auto == from_match == from_auto_diff
    assert len(from_match) >= 3


def _first(output):
    return output[0] if isinstance(output, (tuple, list)) else output


def _outputs(torch_model, paddle_model, inputs):
    with torch.no_grad():
        out_t = torch_model(**{k: torch.from_numpy(v) for k, v in inputs.items()})
    out_p = paddle_model(**{k: paddle.to_tensor(v) for k, v in inputs.items()})
    return _first(out_t).detach().numpy(), _first(out_p).numpy()


@pytest.mark.parametrize("name", list(_PAIRS))
def test_assign_weight_succeeds_where_match_does(name):
    make = _PAIRS[name]
    torch_model, paddle_model, inputs = make()
    randomize(paddle_model, 11)
    result = padiff_ir.match(torch_model, paddle_model, inputs, assign_weights=True, localize=False)
    assert all(p.ok for p in result.outputs), str(result)  # match's copy worked
    torch_model, paddle_model, inputs = make()
    randomize(paddle_model, 11)
    out_t, out_p = _outputs(torch_model, paddle_model, inputs)
    assert np.abs(out_t - out_p).max() > 1e-3  # the scrambled weights show
    if name == "case-fused_qkv":  # a fused layout no generated input can prove: refused
        with pytest.raises(padiff_ir.LayoutError, match="inputs="):
            padiff_ir.assign_weight(paddle_model, torch_model)
        padiff_ir.assign_weight(paddle_model, torch_model, inputs=inputs)
    else:
        padiff_ir.assign_weight(paddle_model, torch_model)  # no inputs: the module trees
    out_t, out_p = _outputs(torch_model, paddle_model, inputs)
    np.testing.assert_allclose(out_p, out_t, atol=1e-5, rtol=1e-4)


def _wrapped(forward):
    """What Paddle LLM libraries do to ``forward`` (a generic ``*args, **kwargs`` wrapper):
    ``paddle.jit.save`` then refuses the model."""
    import functools

    @functools.wraps(forward)
    def wrapper(*args, **kwargs):
        return forward(*args, **kwargs)

    wrapper.__wrapped__ = None  # no way back to a signature starting with ``self``
    return wrapper


class _WrappedPaddleMlp(paddle.nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = paddle.nn.Linear(8, 16)
        self.act = paddle.nn.GELU()
        self.fc2 = paddle.nn.Linear(16, 4)

    @_wrapped
    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class _TorchMlp(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(8, 16)
        self.act = torch.nn.GELU()
        self.fc2 = torch.nn.Linear(16, 4)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def test_a_model_that_cannot_export_is_matched_on_traces():
    from padiff_ir.pairing import pair_models

    x = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    torch_model, paddle_model = _TorchMlp(), _WrappedPaddleMlp()
    with pytest.raises(padiff_ir.PadiffError):
        padiff_ir.export(paddle_model, {"x": x})
    with pytest.raises(padiff_ir.PadiffError):
        padiff_ir.export(paddle_model, [x])
    matching = pair_models(torch_model, paddle_model, {"x": x}, reuse=False)
    assert matching.stats["graphs"] == "trace"
    assert "export_failed" in matching.stats
    layer_map = padiff_ir.auto_layer_map(torch_model, paddle_model, {"x": x})
    assert layer_map.pairs == {"": "", "fc1": "fc1", "act": "act", "fc2": "fc2"}
    padiff_ir.assign_weight(paddle_model, torch_model, inputs={"x": x})
    out_t, out_p = _outputs(torch_model, paddle_model, {"x": x})
    np.testing.assert_allclose(out_p, out_t, atol=1e-5, rtol=1e-4)
    result = padiff_ir.auto_diff(
        torch_model, paddle_model, {"x": x}, auto_init=False, atol=1e-5, rtol=1e-4
    )
    assert result, str(result)
    assert _as_map(result.layer_map) == layer_map.pairs
