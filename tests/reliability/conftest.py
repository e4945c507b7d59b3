"""Fixtures of the reliability tests: each case checks that the models, the global RNG states
and the temporary folder are as they were."""

from __future__ import annotations

import os
import random
import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from tests.conftest import zoo_pair


def model_state(model: Any) -> tuple[dict[str, np.ndarray], list[bool]]:
    """Every parameter and buffer (copied, any dtype read as numbers) and every module's train
    flag."""
    import torch

    from padiff_ir.frameworks import framework_of

    framework = framework_of(model)
    tensors = {n: framework.to_numpy(t) for n, t in model.state_dict().items()}
    if isinstance(model, torch.nn.Module):
        return tensors, [m.training for m in model.modules()]
    return tensors, [layer.training for layer in model.sublayers(include_self=True)]


def assert_same_state(before: tuple[dict[str, np.ndarray], list[bool]], model: Any) -> None:
    tensors, flags = model_state(model)
    assert flags == before[1], "train/eval flags changed"
    assert tensors.keys() == before[0].keys()
    for name, value in tensors.items():
        np.testing.assert_array_equal(value, before[0][name], err_msg=name)


def _rng_states() -> tuple[Any, ...]:
    import torch

    numpy_state = np.random.get_state()
    return (
        random.getstate(),
        numpy_state[0],
        numpy_state[1].tobytes(),
        numpy_state[2],
        torch.get_rng_state().numpy().tobytes(),
    )


def _paddle_rng() -> Any:
    import paddle

    return paddle.get_rng_state("cpu")


def _paddle_rng_unchanged(before: Any) -> bool:
    """Whether paddle's CPU generator is where it was: the next draws from the current state
    and from ``before`` agree (the current state is put back afterwards)."""
    import paddle

    now = paddle.get_rng_state("cpu")
    drawn_now = paddle.rand([8]).numpy()
    paddle.set_rng_state(before, "cpu")
    drawn_before = paddle.rand([8]).numpy()
    paddle.set_rng_state(now, "cpu")
    return bool(np.array_equal(drawn_now, drawn_before))


def _padiff_temp_entries() -> set[str]:
    return {n for n in os.listdir(tempfile.gettempdir()) if n.startswith("padiff_ir_")}


@dataclass
class Guard:
    """What a case must leave as it found: models, RNG states, temporary files."""

    models: list[Any]
    states: list[Any]

    def watch(self, *models: Any) -> None:
        for model in models:
            self.models.append(model)
            self.states.append(model_state(model))


@pytest.fixture
def guard():
    """Yield a :class:`Guard` (``guard.watch(model)``); afterwards, check that the watched
    models, the global RNG states of random, numpy, torch and paddle, and the temporary folder
    are unchanged."""
    rng_before = _rng_states()
    paddle_before = _paddle_rng()
    temp_before = _padiff_temp_entries()
    watcher = Guard([], [])
    yield watcher
    for model, state in zip(watcher.models, watcher.states):
        assert_same_state(state, model)
    assert _rng_states() == rng_before, "a global RNG state changed"
    assert _paddle_rng_unchanged(paddle_before), "paddle's RNG state changed"
    left = _padiff_temp_entries() - temp_before
    assert not left, f"temporary folders left behind: {sorted(left)}"


@pytest.fixture(scope="session")
def mlp():
    return zoo_pair("mlp")
