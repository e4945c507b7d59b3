"""The one cache: what padiff-ir keeps from one call to the next.

Everything the library remembers between calls lives in :data:`pair_cache` (the only
module-level state besides the registries of user extensions), emptied by
:func:`padiff_ir.clear`:

* ``exports``: the export cache (:data:`padiff_ir.exporters.export_cache`: graph skeletons by
  model fingerprint, in memory and on disk; a served graph is verified before it is used,
  :mod:`padiff_ir.pairing.served`);
* ``graphs``: the canonical graph IR of recent exports by fingerprint (the IR holds no
  weights: an export served from the cache has the same graph);
* ``traces``: the eager-trace graphs of recent pairs by the exports' fingerprints and the layer
  map (a trace depends on structure, code and input signature, not on weights);
* per pair of model objects, a :class:`PairEntry` (held weakly: an entry never keeps a model
  alive and goes when either model is collected, or when the table holds :data:`PAIRS_KEPT`
  newer ones): the matching every entry point reuses, what one ``auto_diff`` call leaves for the
  next, and the prepared :class:`~padiff_ir.pairing.pair.ModelPair` a ``match`` keeps for a
  later call (one such pair in the whole process, its onnxruntime sessions open).

Example:
    >>> cache = PairCache(exports=None)
    >>> cache.graphs.put("fingerprint", "graph")
    >>> cache.graphs.get("fingerprint"), len(cache.traces)
    ('graph', 0)
    >>> cache.clear()
    >>> cache.graphs.get("fingerprint") is None
    True
"""

from __future__ import annotations

import collections
import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from padiff_ir.exporters import ExportCache, export_cache
from padiff_ir.hints import Model
from padiff_ir.ir import Graph
from padiff_ir.matching.types import Matching

if TYPE_CHECKING:
    from padiff_ir.pairing.pair import ModelPair

__all__ = [
    "KeptPair",
    "NativeMemo",
    "PairCache",
    "PairEntry",
    "Recent",
    "RememberedMatching",
    "pair_cache",
]

logger = logging.getLogger(__name__)

K = TypeVar("K")
V = TypeVar("V")

#: Pairs of model objects the cache holds an entry for (the oldest goes first).
PAIRS_KEPT = 8


class Recent(Generic[K, V]):
    """The ``size`` most recently used values by key (the least recently used goes first).

    Example:
        >>> recent = Recent(2)
        >>> for key in "abc":
        ...     recent.put(key, key.upper())
        >>> recent.get("a"), recent.get("c"), len(recent)
        (None, 'C', 2)
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._values: collections.OrderedDict[K, V] = collections.OrderedDict()

    def get(self, key: K) -> V | None:
        """The value of ``key`` (now the most recent), or None."""
        value = self._values.get(key)
        if value is not None:
            self._values.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        """Keep ``value`` for ``key`` as the most recent."""
        self._values[key] = value
        self._values.move_to_end(key)
        while len(self._values) > self.size:
            self._values.popitem(last=False)

    def clear(self) -> None:
        self._values.clear()

    def __len__(self) -> int:
        return len(self._values)


@dataclass(frozen=True)
class RememberedMatching:
    """The matching of a pair of models with what it was made for (:mod:`.memo` decides
    whether it still fits a call)."""

    matching: Matching
    layer_map: str
    structure: tuple[Any, ...]
    inputs: tuple[Any, ...] | None
    export: bool


@dataclass
class NativeMemo:
    """What one ``auto_diff`` call on a pair leaves for the next on the same pair.

    Attributes:
        matching: the module and parameter pairs.
        weights_verified: the previous call compared every weight and found them equal, and
            nothing of this library changed them since.
        layer_map: the layer map object the matching was made with (weakly), and
        signature: both module trees then (the memo serves while they are the same).
    """

    matching: Matching
    weights_verified: bool = False
    layer_map: Callable[[], Any] = field(default=lambda: None, repr=False)
    signature: tuple[Any, ...] = ()


@dataclass
class KeptPair:
    """A prepared pair kept for a later ``match`` (its models dropped: the entry holds them
    weakly), with what a later call must share with it to be served (``key``)."""

    key: tuple[Any, ...]
    pair: ModelPair


@dataclass
class PairEntry:
    """What the one cache holds for one pair of model objects (see the module docstring)."""

    refs: tuple[weakref.ref[Any], weakref.ref[Any]]
    matching: RememberedMatching | None = None
    native: NativeMemo | None = None
    kept: KeptPair | None = None

    def holds(self, model_a: Model, model_b: Model) -> bool:
        """Whether this is the entry of these two model objects (not of others that reuse the
        ids of collected ones)."""
        return self.refs[0]() is model_a and self.refs[1]() is model_b

    def release(self) -> None:
        """Close the sessions of the kept pair, if any."""
        kept, self.kept = self.kept, None
        if kept is not None:
            kept.pair.close()


class PairCache:
    """The exports, graphs, traces and pair entries kept between calls (the module docstring).

    Args:
        exports: the export cache (None: none, as in a test of the rest).
    """

    def __init__(self, exports: ExportCache | None) -> None:
        self.exports = exports
        self.graphs: Recent[str, Graph] = Recent(8)
        self.traces: Recent[tuple[str, str, str], tuple[Graph, Graph]] = Recent(4)
        self._pairs: dict[tuple[int, int], PairEntry] = {}
        self._lock = threading.RLock()

    def entry(self, model_a: Model, model_b: Model, *, create: bool = False) -> PairEntry | None:
        """The entry of these two model objects (a new one with ``create``; None for models
        that take no weak reference)."""
        key = (id(model_a), id(model_b))
        with self._lock:
            found = self._pairs.get(key)
            if found is not None and found.holds(model_a, model_b):
                return found
            if not create:
                return None
            try:
                refs = (
                    weakref.ref(model_a, self._collected),
                    weakref.ref(model_b, self._collected),
                )
            except TypeError:  # a model that takes no weak reference: nothing is kept
                return None
            self._drop(key)
            while len(self._pairs) >= PAIRS_KEPT:
                self._drop(next(iter(self._pairs)))
            entry = self._pairs[key] = PairEntry(refs)
            return entry

    def kept(self) -> PairEntry | None:
        """The entry holding the prepared pair kept for a later ``match``, if any."""
        with self._lock:
            return next((e for e in self._pairs.values() if e.kept is not None), None)

    def keep(self, entry: PairEntry, kept: KeptPair) -> None:
        """Keep ``kept`` on ``entry``, releasing the pair kept before (one in the process)."""
        with self._lock:
            self.forget_kept()
            entry.kept = kept

    def forget_kept(self) -> None:
        """Drop the kept pair and release its sessions."""
        with self._lock:
            for entry in self._pairs.values():
                entry.release()

    def clear(self, *, disk: bool = False) -> None:
        """Forget everything: pair entries (their sessions released), graphs, traces and the
        exports held in memory (and the export cache's files with ``disk``)."""
        with self._lock:
            for key in list(self._pairs):
                self._drop(key)
            self.graphs.clear()
            self.traces.clear()
        if self.exports is not None:
            self.exports.clear(disk=disk)

    def __len__(self) -> int:
        return len(self._pairs)

    def _drop(self, key: tuple[int, int]) -> None:
        entry = self._pairs.pop(key, None)
        if entry is not None:
            entry.release()

    def _collected(self, ref: weakref.ref[Any]) -> None:
        with self._lock:
            for key, entry in list(self._pairs.items()):
                if ref in entry.refs:
                    self._drop(key)

    def __repr__(self) -> str:
        return (
            f"PairCache(pairs={len(self)}, graphs={len(self.graphs)}, "
            f"traces={len(self.traces)}, exports={self.exports!r})"
        )


pair_cache = PairCache(export_cache)
"""The one cache of the process (see the module docstring)."""
