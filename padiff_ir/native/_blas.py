"""Run numpy's OpenBLAS single-threaded for the duration of a comparison, then restore it.

:func:`~padiff_ir.metrics.compare_arrays` computes norms and dot products of flattened
tensors through numpy's BLAS. With torch and paddle in the same process, OpenBLAS's own worker
threads compete with the frameworks' OpenMP pools: on a 2-core machine a 100k-element ``dot``
takes about 8 ms instead of 0.02 ms, and the frameworks' next kernels slow down as well (a
training step under ``auto_diff`` ran 5x slower). One thread is enough for these vector
operations. :func:`single_threaded_blas` sets numpy's OpenBLAS (found among the loaded
libraries, as ``threadpoolctl`` does) to one thread and restores the previous count on exit; it
does nothing where it cannot find the library or its symbols (another BLAS, another OS).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
from collections.abc import Iterator

__all__ = ["single_threaded_blas"]

logger = logging.getLogger(__name__)

_SYMBOLS = (  # (get, set) pairs of the OpenBLAS builds numpy ships or links
    ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
    ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
    ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
    ("openblas_get_num_threads", "openblas_set_num_threads"),
)
_cache: list[tuple[object, object]] | None = None


def _numpy_openblas() -> list[tuple[object, object]]:
    """``(get, set)`` functions of the OpenBLAS libraries loaded from numpy's directories."""
    global _cache
    if _cache is not None:
        return _cache
    import numpy

    roots = (os.path.dirname(os.path.dirname(numpy.__file__)),)
    found: list[tuple[object, object]] = []
    paths: set[str] = set()
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            for line in maps:
                path = line.rsplit(" ", 1)[-1].strip()
                name = os.path.basename(path).lower()
                if (
                    "openblas" in name
                    and path.startswith(roots)
                    and ("numpy" in path or "scipy" in path)
                ):
                    paths.add(path)
    except OSError:
        paths = set()
    for path in sorted(paths):
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for get_name, set_name in _SYMBOLS:
            get_fn, set_fn = getattr(library, get_name, None), getattr(library, set_name, None)
            if get_fn is not None and set_fn is not None:
                get_fn.restype = ctypes.c_int
                set_fn.argtypes = [ctypes.c_int]
                found.append((get_fn, set_fn))
                break
    _cache = found
    return found


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """numpy's OpenBLAS with one thread inside; the previous thread counts restored after."""
    try:
        libraries = _numpy_openblas()
        previous = [(set_fn, int(get_fn())) for get_fn, set_fn in libraries]  # type: ignore[operator]
    except Exception as err:
        logger.debug("cannot reach numpy's OpenBLAS (%s); thread count unchanged", err)
        previous = []
    for set_fn, count in previous:
        if count != 1:
            set_fn(1)  # type: ignore[operator]
    try:
        yield
    finally:
        for set_fn, count in previous:
            if count != 1:
                set_fn(count)  # type: ignore[operator]
