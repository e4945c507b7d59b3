"""Snapshot and restore what an export may disturb in a user's model (mode flags, RNG)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

__all__ = ["preserved_paddle_state", "preserved_torch_state", "quiet_loggers"]


@contextlib.contextmanager
def preserved_torch_state(model: Any) -> Iterator[None]:
    """Put ``model`` in eval mode for the block; restore every module's flag and the RNG after."""
    import torch

    flags = [(m, m.training) for m in model.modules()]
    with torch.random.fork_rng(devices=[]):
        try:
            model.eval()
            yield
        finally:
            for module, flag in flags:
                module.training = flag


@contextlib.contextmanager
def preserved_paddle_state(model: Any) -> Iterator[None]:
    """Put ``model`` in eval mode for the block; restore every layer's flag and the RNG after."""
    import paddle

    layers = [model, *model.sublayers()]
    flags = [(layer, layer.training) for layer in layers]
    rng = paddle.get_rng_state()
    try:
        model.eval()
        yield
    finally:
        for layer, flag in flags:
            layer.training = flag
        paddle.set_rng_state(rng)


@contextlib.contextmanager
def quiet_loggers(*names: str, level: int = logging.ERROR) -> Iterator[None]:
    """Raise the level of third-party loggers for the block; restore them after."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(max(level, lg.getEffectiveLevel()))
        yield
    finally:
        for lg, old in zip(loggers, levels):
            lg.setLevel(old)
