"""The one state guard: what an analysis may disturb in a user's model and process, restored.

:func:`preserved_state` puts a model in eval mode for a block and restores afterwards, even when
the block raises: every module's train flag, the framework's random generators, numpy's global
generator and Python's ``random``. Hooks are removed by whoever installs them
(:func:`padiff_ir.frameworks.hooks.installed`).
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Iterator

import numpy as np

from padiff_ir.hints import Model

__all__ = ["preserved_global_rng", "preserved_state", "quiet_loggers"]


@contextlib.contextmanager
def preserved_global_rng() -> Iterator[None]:
    """Restore numpy's global generator and Python's ``random`` after the block."""
    numpy_state = np.random.get_state()
    python_state = random.getstate()
    try:
        yield
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)


@contextlib.contextmanager
def preserved_state(model: Model) -> Iterator[None]:
    """Eval mode for the block; train flags and every random generator restored after.

    Examples:
        >>> import torch
        >>> model = torch.nn.Dropout(0.5).train()
        >>> with preserved_state(model):
        ...     model.training
        False
        >>> model.training
        True
    """
    from padiff_ir.frameworks import framework_of

    with preserved_global_rng(), framework_of(model).preserved(model):
        yield


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
