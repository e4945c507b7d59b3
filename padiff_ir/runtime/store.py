"""A mapping ``tensor name -> array`` that spills to disk past a RAM budget.

Comparing two large models tensor by tensor needs every activation of both, and a ViT-B pair run
at a useful batch size produces several gigabytes of them. :class:`ActivationStore` keeps arrays
in RAM until the bytes it holds reach ``memory_budget``; every later array is written to a private
temporary directory as an ``.npy`` file and read back memory-mapped (``np.load(mmap_mode="r")``),
so reading it costs page cache, not process memory. Two stores with the default budget hold at
most 1 GiB in RAM between them, whatever the size of the models.

The policy is first come, first kept: an array stays in RAM if it fits in what is left of the
budget, otherwise it goes to disk. Arrays are never moved afterwards, so a name always reads back
the same way, and the store never copies an array it keeps in RAM: do not modify an array after
putting it. Every array the store hands out is read-only.

:meth:`ActivationStore.put` also records a :class:`TensorSummary` (shape, dtype, min, max, mean,
std, NaN and Inf counts), computed block by block so that summarising a large array needs only a
few megabytes of scratch memory; :meth:`~ActivationStore.summary`, :meth:`~ActivationStore.shape`
and :meth:`~ActivationStore.dtype` answer without touching the array.

The temporary directory is created at the first spill and removed by :meth:`ActivationStore.close`,
at the end of a ``with`` block, or when the store is garbage collected (``weakref.finalize``), so
no file outlives the store. Arrays read from disk before closing stay readable on POSIX systems:
the mapping keeps the removed file's pages.

Example:
    >>> import numpy as np
    >>> with ActivationStore(memory_budget=64) as store:
    ...     store.put("small", np.zeros(4, np.float32))   # 16 bytes: kept in RAM
    ...     store.put("large", np.arange(32.0))           # 256 bytes: spilled to disk
    ...     (store.nbytes_in_memory, store.nbytes_on_disk, store.shape("large"))
    ...     float(store["large"][3]), store.summary("large").maximum
    (16, 256, (32,))
    (3.0, 31.0)
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["DEFAULT_STORE_BUDGET", "ActivationStore", "TensorSummary"]

logger = logging.getLogger(__name__)

DEFAULT_STORE_BUDGET = 512 * 1024 * 1024
"""Bytes an :class:`ActivationStore` keeps in RAM unless told otherwise (512 MiB)."""

_SUMMARY_BLOCK = 1 << 18  # elements per block when summarising (2 MiB of float64 scratch)


@dataclass(frozen=True)
class TensorSummary:
    """Cheap statistics of one stored array, computed when it was put.

    ``minimum``, ``maximum``, ``mean`` and ``std`` are over the finite elements only (NaN when
    there are none, or when the dtype is not numeric); ``nan_count`` and ``inf_count`` count the
    rest.
    """

    shape: tuple[int, ...]
    dtype: str
    nbytes: int
    minimum: float
    maximum: float
    mean: float
    std: float
    nan_count: int
    inf_count: int

    @property
    def size(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)

    @property
    def finite(self) -> bool:
        """Whether no element is NaN or infinite."""
        return self.nan_count == 0 and self.inf_count == 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``shape`` as a list, NaN kept as float NaN)."""
        data = asdict(self)
        data["shape"] = list(self.shape)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TensorSummary:
        """Inverse of :meth:`to_dict`."""
        return cls(**{**data, "shape": tuple(data["shape"])})


def summarize(array: np.ndarray) -> TensorSummary:
    """Compute the :class:`TensorSummary` of ``array`` in blocks of :data:`_SUMMARY_BLOCK` elements.

    Each block is copied into one reused float64 scratch buffer (2 MiB); the means and centred
    sums of squares of the blocks are merged with Chan's parallel formula. NaN and Inf are only
    looked for in blocks whose sum is not finite.
    """
    array = np.asarray(array)
    shape = tuple(int(d) for d in array.shape)
    nan = float("nan")
    numeric = array.dtype.kind in "biuf" and not array.dtype.hasobject
    if not numeric or array.size == 0:
        return TensorSummary(shape, str(array.dtype), int(array.nbytes), nan, nan, nan, nan, 0, 0)

    flat = array.reshape(-1)
    count, mean, m2 = 0, 0.0, 0.0
    minimum, maximum = math.inf, -math.inf
    nan_count = inf_count = 0
    scratch = np.empty(min(flat.size, _SUMMARY_BLOCK), np.float64)  # reused: no page faults
    for start in range(0, flat.size, _SUMMARY_BLOCK):
        source = flat[start : start + _SUMMARY_BLOCK]
        block = scratch[: source.size]
        block[...] = source
        with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: handled just below
            block_sum = float(block.sum())
        if not math.isfinite(block_sum):  # NaN or Inf inside: count them, keep the finite rest
            finite = np.isfinite(block)
            nans = int(np.isnan(block).sum())
            nan_count += nans
            inf_count += int(block.size - finite.sum()) - nans
            block = block[finite]
            block_sum = float(block.sum())
        if block.size == 0:
            continue
        block_mean = block_sum / block.size
        minimum = min(minimum, float(block.min()))
        maximum = max(maximum, float(block.max()))
        block -= block_mean
        block_m2 = float(np.multiply(block, block, out=block).sum())
        total = count + block.size
        delta = block_mean - mean
        mean += delta * block.size / total
        m2 += block_m2 + delta * delta * count * block.size / total
        count = total
    if count == 0:
        return TensorSummary(
            shape, str(array.dtype), int(array.nbytes), nan, nan, nan, nan, nan_count, inf_count
        )
    return TensorSummary(
        shape=shape,
        dtype=str(array.dtype),
        nbytes=int(array.nbytes),
        minimum=minimum,
        maximum=maximum,
        mean=mean,
        std=math.sqrt(m2 / count),
        nan_count=nan_count,
        inf_count=inf_count,
    )


def _read_only(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.flags.writeable = False
    return view


class ActivationStore(Mapping[str, np.ndarray]):
    """Arrays by tensor name, in RAM up to ``memory_budget`` bytes and on disk past it.

    Args:
        memory_budget: bytes of array data to keep in RAM; ``0`` sends everything to disk.
        directory: where to create the private temporary directory (default: the system's
            temporary directory, see :func:`tempfile.gettempdir`).

    Iteration follows insertion order. Reading a name that was spilled returns a read-only
    memory map; reading one kept in RAM returns a read-only view of the array that was put.
    """

    __hash__ = object.__hash__  # identity, like a file: comparing stores would load every array

    def __eq__(self, other: object) -> bool:
        return self is other

    def __init__(
        self, memory_budget: int = DEFAULT_STORE_BUDGET, *, directory: str | None = None
    ) -> None:
        if memory_budget < 0:
            raise ValueError(f"memory_budget must be >= 0 bytes, got {memory_budget}")
        self.memory_budget = int(memory_budget)
        self._parent_directory = directory
        self._directory: str | None = None
        self._finalizer: weakref.finalize | None = None
        self._in_memory: dict[str, np.ndarray] = {}
        self._on_disk: dict[str, str] = {}
        self._entries: dict[str, tuple[tuple[int, ...], str, int]] = {}  # shape, dtype, bytes
        self._summaries: dict[str, TensorSummary] = {}  # computed when first asked for
        self._nbytes_in_memory = 0
        self._nbytes_on_disk = 0
        self._closed = False

    # -- writing ---------------------------------------------------------------------------

    def put(self, name: str, array: np.ndarray) -> None:
        """Store ``array`` under ``name``, replacing any array stored under that name before.

        The array is kept in RAM if it fits in what is left of the budget, else written to disk.
        Arrays of object dtype (strings) cannot be memory-mapped and always stay in RAM.
        """
        self._check_open()
        array = np.asarray(array)
        if name in self._entries:
            self._discard(name)
        fits = self._nbytes_in_memory + array.nbytes <= self.memory_budget
        if fits or array.dtype.hasobject:
            self._in_memory[name] = _read_only(array)
            self._nbytes_in_memory += int(array.nbytes)
        else:
            path = os.path.join(self._ensure_directory(), f"{len(self._on_disk):06d}.npy")
            np.save(path, array, allow_pickle=False)
            self._on_disk[name] = path
            self._nbytes_on_disk += int(array.nbytes)
            logger.debug("spilled %r (%d bytes) to %s", name, array.nbytes, path)
        shape = tuple(int(d) for d in array.shape)
        self._entries[name] = (shape, str(array.dtype), int(array.nbytes))

    def update(self, arrays: Mapping[str, np.ndarray]) -> None:
        """:meth:`put` every item of ``arrays``."""
        for name, array in arrays.items():
            self.put(name, array)

    def discard(self, name: str) -> None:
        """Drop the array stored under ``name`` (and its file); no error if there is none."""
        self._check_open()
        if name in self._entries:
            self._discard(name)

    def _discard(self, name: str) -> None:
        if name in self._in_memory:
            self._nbytes_in_memory -= int(self._in_memory.pop(name).nbytes)
        elif name in self._on_disk:
            self._nbytes_on_disk -= self._entries[name][2]
            path = self._on_disk.pop(name)
            try:
                os.remove(path)
            except OSError:  # still mapped on a platform that forbids removing it
                logger.debug("could not remove %s; it goes with the directory", path)
        del self._entries[name]
        self._summaries.pop(name, None)

    def _ensure_directory(self) -> str:
        if self._directory is None:
            self._directory = tempfile.mkdtemp(
                prefix="padiff_ir_store_", dir=self._parent_directory
            )
            self._finalizer = weakref.finalize(
                self, shutil.rmtree, self._directory, ignore_errors=True
            )
            logger.debug("activation store spills to %s", self._directory)
        return self._directory

    # -- reading ---------------------------------------------------------------------------

    def __getitem__(self, name: str) -> np.ndarray:
        self._check_open()
        if name in self._in_memory:
            return self._in_memory[name]
        if name in self._on_disk:
            return np.load(self._on_disk[name], mmap_mode="r", allow_pickle=False)
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def summary(self, name: str) -> TensorSummary:
        """The statistics of the array stored under ``name`` (computed once, when first
        asked for: a run that never asks pays nothing)."""
        summary = self._summaries.get(name)
        if summary is None:
            summary = self._summaries[name] = summarize(self[name])
        return summary

    def shape(self, name: str) -> tuple[int, ...]:
        """Shape of the array stored under ``name``, without loading it."""
        return self._entries[name][0]

    def dtype(self, name: str) -> np.dtype:
        """Dtype of the array stored under ``name``, without loading it."""
        return np.dtype(self._entries[name][1])

    def is_on_disk(self, name: str) -> bool:
        """Whether ``name`` was spilled to disk."""
        if name not in self._entries:
            raise KeyError(name)
        return name in self._on_disk

    @property
    def nbytes_in_memory(self) -> int:
        """Bytes of array data held in RAM."""
        return self._nbytes_in_memory

    @property
    def nbytes_on_disk(self) -> int:
        """Bytes of array data spilled to disk (excluding ``.npy`` headers)."""
        return self._nbytes_on_disk

    @property
    def directory(self) -> str | None:
        """The private temporary directory, or ``None`` while nothing has been spilled."""
        return self._directory

    # -- lifetime --------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    def close(self) -> None:
        """Drop every array and remove the temporary directory. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._in_memory.clear()
        self._on_disk.clear()
        self._entries.clear()
        self._summaries.clear()
        self._nbytes_in_memory = self._nbytes_on_disk = 0
        if self._finalizer is not None:
            self._finalizer()

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("this ActivationStore is closed; its arrays were dropped")

    def __enter__(self) -> ActivationStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self)} tensors"
        return (
            f"ActivationStore({state}, in_memory={self._nbytes_in_memory}, "
            f"on_disk={self._nbytes_on_disk}, memory_budget={self.memory_budget})"
        )
