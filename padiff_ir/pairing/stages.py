"""The stages of a pair's life, their progress messages and their timer.

A :class:`~padiff_ir.pairing.pair.ModelPair` is prepared once (``export``, ``ir``, ``match``,
``assign``: :data:`~padiff_ir.pairing.pair.PREPARATION`) and checked many times (``eager``,
``run``, ``compare``, ``localize``, ``fidelity``: :mod:`padiff_ir.compare.check`). Each stage's
seconds go to ``MatchResult.timings`` under the stage's name (the :class:`Stage`
value, a plain string in JSON); the CLI shows the message as the stage starts.

Example:
    >>> timer = StageTimer()
    >>> with timer.stage(Stage.IR):
    ...     pass
    >>> list(timer.timings), Stage.IR == "ir"
    (['ir'], True)
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator

from padiff_ir._result import TextEnum

__all__ = ["Stage", "StageTimer"]

logger = logging.getLogger(__name__)


class Stage(TextEnum):
    """A stage of ``match`` (preparing a pair, then checking it), in the order they run; its
    value is its key in ``timings``."""

    EAGER = "eager"
    EXPORT = "export"
    IR = "ir"
    MATCH = "match"
    ASSIGN = "assign"
    RUN = "run"
    COMPARE = "compare"
    LOCALIZE = "localize"
    FIDELITY = "fidelity"
    NOISE = "noise"

    @property
    def message(self) -> str:
        """What the stage does, as the progress display says it."""
        return _MESSAGES[self]


_MESSAGES = {
    Stage.EAGER: "running both models eagerly",
    Stage.EXPORT: "exporting both models to ONNX",
    Stage.IR: "building the graph IR",
    Stage.MATCH: "matching the graphs",
    Stage.ASSIGN: "copying A's weights into B",
    Stage.RUN: "running both graphs with every intermediate",
    Stage.COMPARE: "comparing matched tensors",
    Stage.LOCALIZE: "measuring each diverging module's own error",
    Stage.FIDELITY: "checking the exports against the eager runs",
    Stage.NOISE: "measuring each module's numerical noise (a float64 shadow of A)",
}


class StageTimer:
    """Seconds per stage (summed when a stage runs twice), and a progress call as each starts."""

    def __init__(self, progress: Callable[[str], None] | None = None) -> None:
        self.timings: dict[str, float] = {}
        self.progress = progress

    @contextlib.contextmanager
    def stage(self, stage: Stage) -> Iterator[None]:
        """Time the body as ``stage``."""
        if self.progress is not None:
            self.progress(stage.message + " ...")
        logger.debug("stage %s", stage.value)
        start = time.perf_counter()
        try:
            yield
        finally:
            key = stage.value
            self.timings[key] = self.timings.get(key, 0.0) + time.perf_counter() - start
