"""Every zoo pair, both frameworks: ONNX reproduces eager, attribution is real, state is kept."""

from __future__ import annotations

import numpy as np
import paddle
import pytest
import torch

from padiff_ir.exporters import export
from padiff_ir.ir import build_graph, canonicalize, lint
from padiff_ir.runtime import Runner
from tests.conftest import ZOO_NAMES, zoo_export, zoo_pair

CASES = [(name, side) for name in ZOO_NAMES for side in ("torch", "paddle")]


def _eager(name: str, side: str) -> list[np.ndarray]:
    pair = zoo_pair(name)
    if side == "torch":
        with torch.no_grad():
            out = pair.torch_model(**{k: torch.from_numpy(v) for k, v in pair.inputs.items()})
        outs = out if isinstance(out, (tuple, list)) else [out]
        return [t.numpy() for t in outs]
    out = pair.paddle_model(**{k: paddle.to_tensor(v) for k, v in pair.inputs.items()})
    outs = out if isinstance(out, (tuple, list)) else [out]
    return [t.numpy() for t in outs]


@pytest.mark.parametrize(("name", "side"), CASES)
def test_onnx_run_reproduces_eager(name, side):
    exported = zoo_export(name, side)
    with Runner(exported) as runner:
        got = runner.infer(zoo_pair(name).inputs)
    want = _eager(name, side)
    assert len(got) == len(want)
    for output, expected in zip(exported.output_names, want):
        np.testing.assert_allclose(
            got[output], expected, atol=1e-5, rtol=0, err_msg=f"{name}/{side} output {output}"
        )


@pytest.mark.parametrize(("name", "side"), CASES)
def test_every_data_node_names_a_real_module(name, side):
    exported = zoo_export(name, side)
    pair = zoo_pair(name)
    model = pair.torch_model if side == "torch" else pair.paddle_model
    if side == "torch":
        real = {path for path, _ in model.named_modules()}
    else:
        real = {path for path, _ in model.named_sublayers()} | {""}
    graph = canonicalize(build_graph(exported))
    lint(graph)
    data_ops = graph.data_ops()
    assert data_ops
    for op in data_ops:
        assert op.module_path in real, f"{op.name} ({op.op_type}) -> {op.module_path!r}"
    # most data ops sit inside a submodule, not at the root
    inside = sum(1 for op in data_ops if op.module_path)
    assert inside / len(data_ops) > 0.6
    # every parameter the graph reads is named after a real parameter or buffer
    if side == "torch":
        names = {n for n, _ in model.named_parameters()} | {n for n, _ in model.named_buffers()}
    else:
        names = {n for n, _ in model.named_parameters()} | {n for n, _ in model.named_buffers()}
    assert set(exported.parameters.values()) <= names
    trainable = {n for n, _ in model.named_parameters()}
    assert trainable <= set(exported.parameters.values())


@pytest.mark.parametrize(("name", "side"), CASES)
def test_export_round_trips_through_a_file(name, side, tmp_path):
    exported = zoo_export(name, side)
    path = tmp_path / f"{name}_{side}.onnx"
    exported.save(str(path))
    again = export(str(path))
    assert again.node_modules == exported.node_modules
    assert again.node_classes == exported.node_classes
    assert again.parameters == exported.parameters
    assert again.framework == side


@pytest.mark.parametrize("side", ["torch", "paddle"])
def test_model_state_unchanged_by_export(side, no_temp_leftovers):
    from padiff_ir.zoo import get_pair

    pair = get_pair("cnn", "tiny", seed=3)
    model = pair.torch_model if side == "torch" else pair.paddle_model
    model.train()
    if side == "torch":
        before = {k: v.clone() for k, v in model.state_dict().items()}
        rng = torch.get_rng_state()
    else:
        before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
        rng = paddle.get_rng_state()
    export(model, pair.inputs)
    assert model.training
    assert all(m.training for m in (model.modules() if side == "torch" else model.sublayers()))
    if side == "torch":
        assert torch.equal(torch.get_rng_state(), rng)
        for key, value in model.state_dict().items():
            assert torch.equal(value, before[key]), key
    else:
        after_export = paddle.rand([4]).numpy()
        paddle.set_rng_state(rng)
        np.testing.assert_array_equal(paddle.rand([4]).numpy(), after_export)
        for key, value in model.state_dict().items():
            np.testing.assert_array_equal(value.numpy(), before[key], err_msg=key)
