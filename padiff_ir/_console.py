"""What the command line shows on standard error: its log handler and its progress display.

:func:`configure_logging` sets the ``padiff_ir`` logger's one handler and level (only the CLI
configures logging; the library only logs).

:class:`ProgressDisplay` is the ``progress`` callable the CLI hands to
:func:`~padiff_ir.match`: each message starts a stage (``"exporting both models to ONNX ..."``).
On a terminal each stage is a rich progress row with a spinner and its elapsed time, frozen when
the next stage starts; ``"batch i/N"`` messages move one bar over the batches. When the stream is
not a terminal (a pipe, a CI log) each message is one plain line ``padiff-ir: <message>``, and the
previous stage's time a line ``padiff-ir:   done in 1.2s``; ``quiet`` shows nothing.

Example:
    >>> import io
    >>> stream = io.StringIO()
    >>> with ProgressDisplay(stream) as progress:
    ...     progress("exporting both models to ONNX ...")
    >>> stream.getvalue().splitlines()[0]
    'padiff-ir: exporting both models to ONNX ...'
"""

from __future__ import annotations

import logging
import re
import sys
import time
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

__all__ = ["ProgressDisplay", "configure_logging"]

_BATCH = re.compile(r"^batch (\d+)/(\d+|\?)$")


def configure_logging(verbosity: int, quiet: bool = False) -> None:
    """Log ``padiff_ir`` records to standard error: warnings (``-v`` info, ``-vv`` debug), only
    errors when ``quiet``."""
    levels = {0: logging.WARNING, 1: logging.INFO}
    level = logging.ERROR if quiet else levels.get(verbosity, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("padiff_ir")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


class ProgressDisplay:
    """Progress of the CLI's stages on ``stream`` (standard error by default)."""

    def __init__(self, stream: IO[str] | None = None, *, quiet: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        isatty = getattr(self.stream, "isatty", None)
        self.live = not quiet and bool(isatty is not None and isatty())
        self._progress: Progress | None = None
        self._stage: TaskID | None = None
        self._batches: TaskID | None = None
        self._started: float | None = None

    def __call__(self, message: str) -> None:
        """Start the stage ``message`` (or move the batch bar, for ``"batch i/N"``)."""
        if self.quiet:
            return
        if self.live:
            self._live(message)
            return
        now = time.perf_counter()
        if self._started is not None and not _BATCH.match(message):
            self._line(f"  done in {now - self._started:.1f}s")
        self._started = now
        self._line(message)

    def _line(self, text: str) -> None:
        self.stream.write(f"padiff-ir: {text}\n")
        self.stream.flush()

    def _live(self, message: str) -> None:
        progress = self._ensure()
        batch = _BATCH.match(message)
        if batch is not None:
            index = int(batch.group(1))
            total = None if batch.group(2) == "?" else int(batch.group(2))
            label = f"batch {index}/{batch.group(2)}"
            if self._batches is None:
                self._batches = progress.add_task(label, total=total)
            progress.update(self._batches, description=label, completed=index - 1, total=total)
            return
        self._finish_stage()
        self._stage = progress.add_task(message.removesuffix(" ..."), total=None)

    def _ensure(self) -> Progress:
        if self._progress is None:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                SpinnerColumn(finished_text="[green]done"),
                TextColumn("{task.description}"),
                BarColumn(),
                TimeElapsedColumn(),
                console=Console(file=self.stream),
                transient=False,
            )
            self._progress.start()
        return self._progress

    def _finish_stage(self) -> None:
        if self._progress is not None and self._stage is not None:
            self._progress.update(self._stage, total=1, completed=1)
            self._stage = None

    def close(self) -> None:
        """End the display (the last stage is done); what is printed next starts on a new line."""
        if self._progress is not None:
            self._finish_stage()
            if self._batches is not None:
                task = self._progress.tasks[self._batches]
                self._progress.update(self._batches, completed=task.total or task.completed + 1)
            self._progress.stop()
            self._progress = None
        elif self._started is not None and not self.quiet:
            self._line(f"  done in {time.perf_counter() - self._started:.1f}s")
        self._started = None

    def __enter__(self) -> ProgressDisplay:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> Any:
        self.close()
        return None
