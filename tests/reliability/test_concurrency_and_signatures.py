"""Concurrent calls, paddle signatures (keyword inputs next to ``**kwargs``, 0-d inputs),
data-dependent branches and train-mode models."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import padiff_ir
from tests.reliability import models


def test_two_threads_calling_match_at_once_both_succeed(guard):
    from padiff_ir.zoo import get_pair

    pairs = [get_pair("mlp"), get_pair("mlp", seed=1)]
    for pair in pairs:
        guard.watch(pair.torch_model, pair.paddle_model)
    results: list = [None, None]
    errors: list = []
    start = threading.Barrier(2)

    def run(index: int) -> None:
        pair = pairs[index]
        start.wait()
        try:
            results[index] = padiff_ir.match(
                pair.torch_model, pair.paddle_model, pair.inputs, localize=False
            )
        except Exception as err:  # reported below with the thread's index
            errors.append((index, err))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(results), [str(r) for r in results]


def test_paddle_forward_with_defaults_and_kwargs_takes_keyword_inputs(guard):
    torch_model, paddle_model = models.TorchScaled(), models.PaddleScaled()
    guard.watch(torch_model, paddle_model)
    result = padiff_ir.match(torch_model, paddle_model, {"x": models.inputs()})
    assert result, str(result)


def test_a_0d_input_keeps_its_rank(guard):
    torch_model, paddle_model = models.TorchScalar(), models.PaddleScalar()
    guard.watch(torch_model, paddle_model)
    inputs = {"x": models.inputs(), "scale": np.array(2.0, dtype=np.float32)}
    result = padiff_ir.match(torch_model, paddle_model, inputs)
    assert result, str(result)


@pytest.mark.parametrize(
    ("sign", "aligned"), [(1.0, True), (-1.0, False)], ids=["branch taken", "other branch"]
)
def test_a_paddle_data_dependent_branch_exports_a_valid_graph(guard, sign, aligned):
    """The ``If`` branches read the parameters by their new names: the graph runs, and the
    verdict depends on the branch the input takes."""
    torch_model, paddle_model = models.TorchBranch(), models.PaddleDataDependent()
    guard.watch(torch_model, paddle_model)
    result = padiff_ir.match(torch_model, paddle_model, sign * np.abs(models.inputs()))
    assert bool(result) is aligned, str(result)
    exported = padiff_ir.export(paddle_model, np.abs(models.inputs()))
    branches = [n for n in exported.model.graph.node if n.op_type == "If"]
    assert branches
    initializers = {t.name for t in exported.model.graph.initializer}
    read = {
        name
        for node in branches
        for attribute in node.attribute
        for inner in attribute.g.node
        for name in inner.input
        if name.endswith((".weight", ".bias"))
    }
    assert read and read <= initializers


def test_train_mode_models_are_compared_in_eval_mode_with_a_note(guard):
    torch_model, paddle_model = models.TorchDropoutNet(), models.PaddleDropoutNet()
    torch_model.train()
    paddle_model.train()
    guard.watch(torch_model, paddle_model)
    result = padiff_ir.match(torch_model, paddle_model, models.inputs())
    assert result, str(result)
    assert any("train mode" in note and "eval mode" in note for note in result.notes)
    assert torch_model.training and paddle_model.training


def test_eval_mode_models_get_no_train_mode_note(mlp, guard):
    result = padiff_ir.match(mlp.torch_model, mlp.paddle_model, mlp.inputs, localize=False)
    assert not any("train mode" in note for note in result.notes)
