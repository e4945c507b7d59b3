"""Comparisons on worker threads, so they overlap the frameworks' work and each other.

:func:`~padiff_ir.metrics.compare_arrays` is numpy from end to end and numpy releases
the GIL in its loops, so comparisons submitted from the hooks run while the models go on
computing, and the parameter comparisons after a backward pass (when the frameworks are idle)
spread over the cores. Tensors are turned into numpy copies on the calling thread; only numpy
work is handed over. :class:`Workers` with one worker (or ``workers=0``) runs everything inline.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from padiff_ir.metrics import TensorMetrics, Tolerance, compare_arrays, default_workers

__all__ = ["Deferred", "Workers", "default_workers"]

logger = logging.getLogger(__name__)


class Deferred:
    """A :class:`TensorMetrics` being computed (or already known)."""

    __slots__ = ("_future", "_value")

    def __init__(
        self, value: TensorMetrics | None = None, future: Future[TensorMetrics] | None = None
    ) -> None:
        self._value = value
        self._future = future

    def result(self) -> TensorMetrics:
        if self._value is None:
            assert self._future is not None
            self._value = self._future.result()
            self._future = None
        return self._value


class Workers:
    """A pool of comparison threads for one auto_diff call (closed at its end).

    Attributes:
        tolerance: for every comparison.
        seconds: time spent comparing, summed over the workers.
    """

    def __init__(self, tolerance: Tolerance, workers: int | None = None) -> None:
        count = default_workers() if workers is None else workers
        self.tolerance = tolerance
        self.seconds = 0.0
        self._lock = threading.Lock()
        self._executor = (
            ThreadPoolExecutor(count, thread_name_prefix="padiff-compare") if (count > 1) else None
        )

    def compare(self, array_a: np.ndarray, array_b: np.ndarray) -> Deferred:
        """``compare_arrays(array_a, array_b)``, maybe on a worker."""
        return self.run(lambda: compare_arrays(array_a, array_b, self.tolerance))

    def run(self, fn: Callable[[], TensorMetrics]) -> Deferred:
        """``fn()`` (numpy work returning metrics), maybe on a worker."""

        def timed() -> TensorMetrics:
            start = time.perf_counter()
            try:
                return fn()
            finally:
                elapsed = time.perf_counter() - start
                with self._lock:
                    self.seconds += elapsed

        if self._executor is None:
            return Deferred(timed())
        return Deferred(future=self._executor.submit(timed))

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
