"""Interrupts stay interrupts: Ctrl-C and SIGTERM come out of every stage as themselves.

A framework may catch a ``KeyboardInterrupt`` raised inside its own code and raise something
else (paddle's dy2static turns one raised in a C++ callback into ``SystemError`` or
``RuntimeError``, sometimes with the interrupt in the chain, sometimes without). A stage that
turns failures into its own errors (an ``ExportError``, a fallback) asks :func:`interruption`
first, and runs framework code that may lose the interrupt under :func:`noticing_interrupts`,
which remembers the signals that arrived.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["interruption", "noticing_interrupts", "reraise_interruption"]

_INTERRUPTS = (KeyboardInterrupt, SystemExit)


def interruption(err: BaseException) -> BaseException | None:
    """The ``KeyboardInterrupt`` or ``SystemExit`` that ``err`` is or was raised from (through
    its cause and context), or None.

    Examples:
        >>> try:
        ...     try:
        ...         raise KeyboardInterrupt
        ...     except KeyboardInterrupt:
        ...         raise RuntimeError("wrapped")
        ... except RuntimeError as err:
        ...     type(interruption(err)).__name__
        'KeyboardInterrupt'
        >>> interruption(ValueError("plain")) is None
        True
    """
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, _INTERRUPTS):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def reraise_interruption(err: BaseException) -> None:
    """Raise the interrupt inside ``err`` (see :func:`interruption`) as itself, if any."""
    found = interruption(err)
    if found is not None and found is not err:
        raise _fresh(found) from err


def _fresh(found: BaseException) -> BaseException:
    if isinstance(found, SystemExit):
        return SystemExit(found.code if isinstance(found.code, int) else 1)
    return KeyboardInterrupt()


class _Noticed:
    """The signals that arrived while a :func:`noticing_interrupts` block ran."""

    def __init__(self) -> None:
        self.signals: list[int] = []

    def raise_if_any(self, err: BaseException | None) -> None:
        """Raise what the first signal means (``KeyboardInterrupt`` for SIGINT, ``SystemExit``
        for SIGTERM), chained to ``err``; nothing when none arrived."""
        if not self.signals:
            return
        signum = self.signals[0]
        raised: BaseException = (
            KeyboardInterrupt() if signum == signal.SIGINT else SystemExit(128 + signum)
        )
        raise raised from err


@contextlib.contextmanager
def noticing_interrupts() -> Iterator[_Noticed]:
    """Remember SIGINT and SIGTERM while the block runs (their handlers still run as before).

    Only in the main thread and only for a signal whose handler is a Python function (SIGINT's
    default raises ``KeyboardInterrupt``; a SIGTERM left at its default ends the process
    anyway). The handlers in place before are put back on exit. A block that raised anything
    after a signal arrived, or ended normally with one swallowed, raises the interrupt instead.
    """
    noticed = _Noticed()
    if threading.current_thread() is not threading.main_thread():
        yield noticed
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for signum, handler in previous.items():
        if callable(handler):
            signal.signal(signum, _recording(handler, noticed))
    try:
        yield noticed
    except BaseException as err:  # a framework's own version of the interrupt too
        noticed.raise_if_any(err)
        raise
    finally:
        for signum, handler in previous.items():
            if callable(handler):
                signal.signal(signum, handler)
    noticed.raise_if_any(None)


def _recording(handler: Any, noticed: _Noticed) -> Any:
    def record(signum: int, frame: Any) -> Any:
        noticed.signals.append(signum)
        return handler(signum, frame)

    return record
