"""``match`` over many batches: one export, a verdict per batch and a summary over them.

:func:`match_batches` prepares a :class:`~padiff_ir.compare.comparison.Comparison` on the
first batch and checks every batch with it; :class:`BatchResults` holds each batch's
:class:`MatchResult`, the worst pair of each batch and the first failing batch.
:func:`is_batches` tells a stream of batches (a torch or paddle ``DataLoader``, an iterator, a
generator, :class:`Batches`, or a pair of them: one per model, as PaDiff users hold a torch
and a paddle ``DataLoader``) from the inputs of one run.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from padiff_ir.compare.comparison import Comparison, KeySpec, comparison_progress
from padiff_ir.compare.match_result import MatchResult, PairResult
from padiff_ir.compare.options import MatchOptions
from padiff_ir.errors import InputError
from padiff_ir.hints import Inputs, Model

__all__ = ["BatchResults", "Batches", "is_batches", "match_batches"]

logger = logging.getLogger(__name__)

_LOADER_PACKAGES = ("torch", "paddle")


class Batches:
    """Marks an iterable (a list of batches, say) as batches for :func:`padiff_ir.match`.

    A torch or paddle ``DataLoader``, an iterator or a generator needs no marking; a list or
    tuple is otherwise the inputs of one run.

    Example:
        >>> list(Batches([1, 2]))
        [1, 2]
    """

    def __init__(self, batches: Iterable[Inputs]) -> None:
        self.batches = batches

    def __iter__(self) -> Iterator[Any]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)  # type: ignore[arg-type]


def _loader_framework(stream: object) -> str | None:
    cls = type(stream)
    root = cls.__module__.split(".")[0]
    return root if cls.__name__ == "DataLoader" and root in _LOADER_PACKAGES else None


def _is_stream(inputs: Inputs) -> bool:
    return isinstance(inputs, (Batches, Iterator)) or _loader_framework(inputs) is not None


def is_paired_streams(inputs: Inputs) -> bool:
    """Whether ``inputs`` is two streams of batches, one per model."""
    return isinstance(inputs, (tuple, list)) and len(inputs) == 2 and all(map(_is_stream, inputs))


def is_batches(inputs: Inputs) -> bool:
    """Whether ``inputs`` is a stream of batches (or two) rather than the inputs of one run.

    Example:
        >>> import numpy as np
        >>> is_batches([np.zeros(2)]), is_batches(iter([np.zeros(2)]))
        (False, True)
    """
    return _is_stream(inputs) or is_paired_streams(inputs)


def _zip_streams(
    streams: Iterable[Iterable[Inputs]], frameworks: tuple[str, str]
) -> tuple[Iterable[Any], int | None]:
    """Two streams zipped as ``(batch of A, batch of B)``: a DataLoader goes to the model of
    its framework, else they are taken in order (A's, then B's)."""
    first, second = streams
    if (_loader_framework(first), _loader_framework(second)) == (frameworks[1], frameworks[0]):
        first, second = second, first
    sizes = [_size(first), _size(second)]
    total = min(sizes) if None not in sizes else None  # type: ignore[type-var]
    return zip(first, second), total


def _size(batches: Any) -> int | None:
    try:
        return len(batches)
    except TypeError:
        return None


def _worst_pair(result: MatchResult) -> PairResult | None:
    candidates = [*result.pairs, *result.outputs]
    if not candidates:
        return None

    def key(pair: PairResult) -> tuple[bool, float]:
        error = pair.metrics.max_abs
        return not pair.ok, error if math.isfinite(error) else 1e300

    return max(candidates, key=key)


@dataclass(frozen=True)
class BatchResults:
    """The answer of :func:`padiff_ir.match` over batches.

    ``bool(results)`` is true when every batch agrees; ``results[i]`` is batch ``i``'s
    :class:`MatchResult`; ``str(results)`` a summary.

    Attributes:
        results: one :class:`MatchResult` per batch, in order.
        prepare_s: seconds spent exporting, matching and opening the sessions (once).
        check_s: seconds per batch (eager runs, both graphs, comparison).
    """

    results: tuple[MatchResult, ...]
    prepare_s: float = 0.0
    check_s: tuple[float, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return all(self.results)

    @property
    def first_failing(self) -> int | None:
        """The index of the first batch that diverges; None when all agree."""
        return next((i for i, result in enumerate(self.results) if not result), None)

    @property
    def worst(self) -> tuple[PairResult | None, ...]:
        """Per batch, the failing pair with the largest error (else the largest error)."""
        return tuple(_worst_pair(result) for result in self.results)

    def __bool__(self) -> bool:
        return self.ok

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, index: int) -> MatchResult:
        return self.results[index]

    def __iter__(self) -> Iterator[MatchResult]:
        return iter(self.results)

    def summary(self, *, width: int | None = None, color: bool = False) -> str:
        """One line for the verdict, then a row per failing batch (its worst pair), ``width``
        columns wide (default: the terminal's), with ANSI colours when ``color``."""
        from padiff_ir._terminal import MIN_WIDTH, Column, line, render, table, terminal_width

        width = max(MIN_WIDTH, width) if width is not None else terminal_width()
        failing = [i for i, result in enumerate(self.results) if not result]
        verdict = "all aligned" if not failing else f"{len(failing)} diverged"
        head = (
            f"{len(self)} batches: {verdict}"
            + (f", first batch {failing[0]}" if failing else "")
            + f" (prepared in {self.prepare_s:.2f} s, {sum(self.check_s):.2f} s checking)"
        )
        parts: list[Any] = [line(head, spans=[(verdict, "red" if failing else "green")])]
        if failing:
            worst = self.worst
            rows = []
            for index in failing[:10]:
                pair = worst[index]
                rows.append(
                    [
                        str(index),
                        (pair.module_a or "<root>") if pair is not None else "outputs",
                        pair.op_a if pair is not None else "",
                        f"{pair.metrics.max_abs:.3g}" if pair is not None else "",
                    ]
                )
            columns = (
                Column("batch", width=5, justify="right"),
                Column("worst at module (A)", width=19, flexible=True),
                Column("op", width=16),
                Column("max abs", width=9, justify="right"),
            )
            parts.append(table(columns, rows, width - 1))
        return render(parts, width, color=color)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "batches",
            "ok": self.ok,
            "first_failing": self.first_failing,
            "prepare_s": self.prepare_s,
            "check_s": list(self.check_s),
            "batches": [result.to_dict() for result in self.results],
        }


def match_batches(
    model_a: Model,
    model_b: Model,
    batches: Iterable[Inputs],
    options: MatchOptions,
    keys: Sequence[KeySpec] | None = None,
) -> BatchResults:
    """Compare two models on every batch of ``batches`` (or of two streams, one per model),
    exporting and matching once.

    Raises:
        InputError: no batch at all; what :func:`padiff_ir.match` raises for a batch.
    """
    from padiff_ir.frameworks import detect_framework
    from padiff_ir.frameworks.wrapper import unwrap_model

    progress = comparison_progress(options)
    paired = is_paired_streams(batches)
    if paired:
        frameworks = (
            detect_framework(unwrap_model(model_a)),
            detect_framework(unwrap_model(model_b)),
        )
        batches, total = _zip_streams(batches, frameworks)
    else:
        total = _size(batches)
    iterator = iter(batches)
    try:
        first = next(iterator)
    except StopIteration:
        raise InputError("match was given no batches: the iterable or loader is empty") from None
    start = time.perf_counter()
    results, seconds = [], []
    with Comparison(
        model_a, model_b, first, keys=keys, paired=paired, options=options
    ) as comparison:
        prepare_s = time.perf_counter() - start
        for index, batch in enumerate(_chain(first, iterator)):
            progress(index, total)
            start = time.perf_counter()
            results.append(comparison.check(batch))
            seconds.append(time.perf_counter() - start)
    logger.debug("match over %d batches: prepared in %.2f s", len(results), prepare_s)
    return BatchResults(results=tuple(results), prepare_s=prepare_s, check_s=tuple(seconds))


def _chain(first: Inputs, rest: Iterator[Inputs]) -> Iterator[Inputs]:
    yield first
    yield from rest
