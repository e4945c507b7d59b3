"""Export once: exported graphs cached by what they depend on, the weights written on a hit.

The key is :func:`~padiff_ir.exporters._fingerprint.model_fingerprint` (structure, code, input
signature, tool versions). An entry is the exported graph *without* its parameters' values (a
skeleton: each parameter initializer keeps its name, dtype and dims), in memory and as a small
``<key>.onnx`` file in the cache directory (a header, then the serialized skeleton). On a hit
the skeleton is copied and the model's current parameter and buffer values are written into it
through the exporter's parameter map (``ExportedGraph.parameters``: initializer -> parameter
name), so a weight change gives new values and an entry never holds a stale weight.

An export is cached only when that write-back reproduces it: every mapped initializer equals
the model's tensor, and no tensor of the model is left out of the map while a constant of the
graph has its size (a weight an exporter folded into a constant could not be refreshed).

The directory is ``$PADIFF_IR_CACHE_DIR`` when set (empty: no disk cache), else
``$XDG_CACHE_HOME/padiff_ir/exports`` (``~/.cache/padiff_ir/exports``).

A disk entry describes itself: a header (:data:`MAGIC`, the :data:`SCHEMA` version, the
payload's length and a SHA-256 over the entry's key and the payload) before the serialized
skeleton. An entry whose header, length or checksum does not fit (a file cut short, an empty
file, flipped bytes, a file of another key or another tool) is deleted with a warning and the
model exported again: it is never loaded.

A hit is a fast path, not a promise: the fingerprint cannot see every change (a function held
in a closure, a ``functools.partial``'s arguments, a class attribute changed at run time, a
helper in another file). The graph of a hit is marked (``ExportedGraph.cached``), and ``match``
checks it against the model's eager run; one that does not reproduce it is :meth:`dropped
<ExportCache.drop>` and the model exported afresh (:mod:`padiff_ir.compare.verify`;
:mod:`padiff_ir.pairing.served` for the layer map and weight copies). An entry remembers where
its fresh export is known to depart from the model (:meth:`ExportCache.note_faults`, an exporter
fault): a served graph departing there and nowhere else is not exported again.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import os
import struct
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from padiff_ir.exporters._graph import ExportedGraph
from padiff_ir.exporters._live import filled_export, model_tensors
from padiff_ir.frameworks import Framework, get_framework
from padiff_ir.hints import Model, Tensor

if TYPE_CHECKING:
    import onnx

__all__ = [
    "DamagedEntry",
    "ExportCache",
    "default_directory",
    "entry_bytes",
    "entry_payload",
    "export_cache",
    "refreshable_skeleton",
    "stale_parameters",
]

logger = logging.getLogger(__name__)

#: Environment variable naming the cache directory (empty: memory only).
CACHE_DIR_VARIABLE = "PADIFF_IR_CACHE_DIR"

#: The first bytes of every disk entry.
MAGIC = b"PADIFFIR"
#: The layout of a disk entry; an entry of another schema is dropped.
SCHEMA = 1
_HEADER = struct.Struct("<8sIQ32s")  # magic, schema, payload length, SHA-256
#: Metadata key of an entry's skeleton: the modules where its fresh export is known to depart.
FAULTS_KEY = "padiff_ir.known_faults"
_SUFFIX = ".onnx"  # as earlier versions named theirs (under other keys: they age out)


class DamagedEntry(ValueError):
    """A disk entry that cannot be trusted (why, in words)."""


def _digest(key: str, payload: bytes) -> bytes:
    return hashlib.sha256(key.encode("ascii", "replace") + b"\x00" + payload).digest()


def entry_bytes(key: str, payload: bytes) -> bytes:
    """A disk entry: its header (magic, schema, length, checksum of key and payload), then
    ``payload`` (a serialized skeleton)."""
    return _HEADER.pack(MAGIC, SCHEMA, len(payload), _digest(key, payload)) + payload


def entry_payload(key: str, data: bytes) -> bytes:
    """The payload of disk entry ``data`` written for ``key``.

    Raises:
        DamagedEntry: empty, cut short, of another schema, another key or altered.
    """
    if len(data) < _HEADER.size:
        raise DamagedEntry(f"{len(data)} bytes, shorter than the entry header")
    magic, schema, length, digest = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise DamagedEntry("not an entry of the padiff-ir export cache")
    if schema != SCHEMA:
        raise DamagedEntry(f"schema {schema}, this padiff-ir reads schema {SCHEMA}")
    payload = data[_HEADER.size :]
    if len(payload) != length:
        raise DamagedEntry(f"{len(payload)} bytes of payload, the header says {length}")
    if _digest(key, payload) != digest:
        raise DamagedEntry("checksum mismatch (altered, or written for another key)")
    return payload


def default_directory() -> Path | None:
    """The cache directory the environment asks for (see the module docstring)."""
    value = os.environ.get(CACHE_DIR_VARIABLE)
    if value is not None:
        return Path(value).expanduser() if value.strip() else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "padiff_ir" / "exports"


def _copy_fields(target: Any, source: Any, skipped: str = "") -> None:
    """Every set field of protobuf message ``source`` into ``target``, but ``skipped``."""
    for descriptor, value in source.ListFields():
        if descriptor.name == skipped:
            continue
        if hasattr(value, "extend"):  # a repeated field
            getattr(target, descriptor.name).extend(value)
        elif descriptor.message_type is not None:
            getattr(target, descriptor.name).CopyFrom(value)
        else:
            setattr(target, descriptor.name, value)


def _skeleton(exported: ExportedGraph) -> onnx.ModelProto:
    """A copy of the exported model whose parameter initializers hold no values (the weights
    are never copied: a large model is not held twice)."""
    import onnx

    skeleton = onnx.ModelProto()
    _copy_fields(skeleton, exported.model, skipped="graph")
    _copy_fields(skeleton.graph, exported.model.graph, skipped="initializer")
    for tensor in exported.model.graph.initializer:
        if tensor.name in exported.parameters:
            entry = skeleton.graph.initializer.add()
            entry.name = tensor.name
            entry.data_type = tensor.data_type
            entry.dims.extend(tensor.dims)
        else:
            skeleton.graph.initializer.add().CopyFrom(tensor)
    return skeleton


_CHUNK = 1 << 24  # bytes compared at a time: no temporary the size of a large weight


def _holds(tensor: onnx.TensorProto, fw: Framework, value: Tensor) -> bool:
    """Whether initializer ``tensor`` holds framework tensor ``value`` (shape, dtype, values;
    NaNs equal). A weight of hundreds of MB is compared in place, chunk by chunk: its bytes
    are read from the proto once and the model's tensor through a view."""
    from onnx import helper, numpy_helper

    array = fw.view(value)
    if array is None or not tensor.HasField("raw_data"):
        stored, array = numpy_helper.to_array(tensor), fw.to_numpy(value)
        return (
            stored.shape == array.shape
            and stored.dtype == array.dtype
            and bool(np.array_equal(stored, array, equal_nan=True))
        )
    if array.dtype != helper.tensor_dtype_to_np_dtype(tensor.data_type):
        return False
    if list(array.shape) != list(tensor.dims):
        return False
    ours = array.reshape(-1).view(np.uint8)
    theirs = np.frombuffer(tensor.raw_data, np.uint8)
    if ours.size != theirs.size:
        return False
    return all(
        np.array_equal(ours[i : i + _CHUNK], theirs[i : i + _CHUNK])
        for i in range(0, ours.size, _CHUNK)
    )


def _refreshable(exported: ExportedGraph, model: Model, framework: str) -> bool:
    """Whether writing the model's tensors through the parameter map reproduces the export."""
    fw = get_framework(framework)
    tensors = model_tensors(model, framework)
    sizes: set[int] = set()
    for tensor in exported.model.graph.initializer:
        name = exported.parameters.get(tensor.name)
        if name is None:
            sizes.add(int(np.prod(tensor.dims, dtype=np.int64)))
            continue
        if name not in tensors or not _holds(tensor, fw, tensors[name]):
            return False
    for node in exported.model.graph.node:
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.HasField("t"):
                    sizes.add(int(np.prod(attribute.t.dims, dtype=np.int64)))
    mapped = set(exported.parameters.values())
    for name, tensor in tensors.items():
        numel = fw.numel(tensor)
        if name not in mapped and numel > 1 and numel in sizes:
            logger.debug("export not cached: %s may be folded into a constant", name)
            return False
    return True


def refreshable_skeleton(
    exported: ExportedGraph, model: Model, framework: str
) -> onnx.ModelProto | None:
    """``exported`` without its parameters' values, when writing ``model``'s tensors back
    through the parameter map reproduces it (else None: the graph depends on the weights)."""
    if not _refreshable(exported, model, framework):
        return None
    return _skeleton(exported)


def stale_parameters(exported: ExportedGraph, model: Model, framework: str) -> list[str]:
    """The parameters and buffers of ``model`` whose values differ from ``exported``'s (the
    model's weights changed since the export or the cache hit that gave it); the weights a
    live export reads from the model (``exported.weights``) never do."""
    fw = get_framework(framework)
    tensors = model_tensors(model, framework)
    stale = []
    for tensor in exported.model.graph.initializer:
        name = exported.parameters.get(tensor.name)
        if name is None or name not in tensors or tensor.name in exported.weights:
            continue
        if not _holds(tensor, fw, tensors[name]):
            stale.append(name)
    return stale


class ExportCache:
    """Exported graphs by model fingerprint, in memory and on disk.

    Args:
        directory: where entries are written as ``<key>.onnx`` (None: memory only).
        max_entries: entries kept in memory (least recently used go first); the files on disk
            are capped at ten times as many (oldest go first).
        enabled: False turns the cache off (every export runs).

    Attributes ``hits`` and ``misses`` count lookups since creation or :meth:`clear`.

    Example:
        >>> cache = ExportCache(directory=None)
        >>> cache.hits, cache.misses, len(cache)
        (0, 0, 0)
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None,
        *,
        max_entries: int = 32,
        enabled: bool = True,
    ) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.max_entries = max_entries
        self.enabled = enabled
        self.hits = 0
        self.misses = 0
        self._memory: collections.OrderedDict[str, onnx.ModelProto] = collections.OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._memory)

    def clear(self, *, disk: bool = True) -> None:
        """Forget every entry (and remove the files of the cache directory with ``disk``)."""
        with self._lock:
            self._memory.clear()
            self.hits = self.misses = 0
        if disk and self.directory is not None and self.directory.is_dir():
            for path in self.directory.glob(f"*{_SUFFIX}"):
                path.unlink(missing_ok=True)

    def drop(self, key: str) -> None:
        """Forget the entry of ``key``, in memory and on disk (a stale or damaged entry)."""
        with self._lock:
            self._memory.pop(key, None)
        path = self._path(key)
        if path is not None:
            path.unlink(missing_ok=True)

    def known_faults(self, key: str) -> frozenset[str]:
        """The modules where a fresh export of ``key`` is known to depart from its model's
        eager run (an exporter fault, found by ``match``'s export check); empty when none is
        known or there is no entry."""
        skeleton = self._memory_entry(key) or self._disk_entry(key)
        if skeleton is None:
            return frozenset()
        found = next((p.value for p in skeleton.metadata_props if p.key == FAULTS_KEY), "")
        return frozenset(json.loads(found)) if found else frozenset()

    def note_faults(self, key: str, modules: Iterable[str]) -> None:
        """Remember on ``key``'s entry (memory and disk) where its fresh export departs from
        its model: a served graph departing exactly there needs no export again."""
        skeleton = self._memory_entry(key)
        if skeleton is None:
            return
        value = json.dumps(sorted(set(modules)))
        with self._lock:
            kept = [p for p in skeleton.metadata_props if p.key != FAULTS_KEY]
            del skeleton.metadata_props[:]
            skeleton.metadata_props.extend(kept)
            if value != "[]":
                skeleton.metadata_props.add(key=FAULTS_KEY, value=value)
        self._write(key, skeleton)

    def _path(self, key: str) -> Path | None:
        return self.directory / f"{key}{_SUFFIX}" if self.directory is not None else None

    def lookup(
        self, key: str, model: Model, framework: str, *, live: bool = False
    ) -> ExportedGraph | None:
        """The cached export of ``key`` with ``model``'s current weights, or None; ``live``:
        the weights are read from the model in place (:func:`~._live.filled_export`)."""
        if not self.enabled:
            return None
        skeleton = self._memory_entry(key) or self._disk_entry(key)
        exported = None
        if skeleton is not None:
            exported = filled_export(skeleton, model, framework, live=live)
        with self._lock:
            if exported is None:
                self.misses += 1
            else:
                self.hits += 1
        logger.debug("export cache %s for %s", "hit" if exported else "miss", key[:12])
        if exported is not None:
            exported.cached = True
        return exported

    def store(
        self, key: str, exported: ExportedGraph, model: Model, framework: str
    ) -> onnx.ModelProto | None:
        """Keep ``exported`` for ``key`` if its weights can be written back (see
        :func:`refreshable_skeleton`); the skeleton kept, or None."""
        if not self.enabled:
            return None
        skeleton = refreshable_skeleton(exported, model, framework)
        if skeleton is None:
            return None
        with self._lock:
            self._memory[key] = skeleton
            self._memory.move_to_end(key)
            while len(self._memory) > self.max_entries:
                self._memory.popitem(last=False)
        self._write(key, skeleton)
        return skeleton

    def _memory_entry(self, key: str) -> onnx.ModelProto | None:
        with self._lock:
            skeleton = self._memory.get(key)
            if skeleton is not None:
                self._memory.move_to_end(key)
            return skeleton

    def _disk_entry(self, key: str) -> onnx.ModelProto | None:
        import onnx

        path = self._path(key)
        if path is None or not path.is_file():
            return None
        try:
            payload = entry_payload(key, path.read_bytes())
            skeleton = onnx.load_from_string(payload)
        except OSError as err:  # unreadable now (permissions): a miss, the file left alone
            logger.debug("export cache: cannot read %s: %s", path, err)
            return None
        except Exception as err:  # damaged or foreign: never loaded, exported again
            logger.warning("export cache: dropped the damaged entry %s (%s)", path.name, err)
            path.unlink(missing_ok=True)
            return None
        with self._lock:
            self._memory[key] = skeleton
        return skeleton

    def _write(self, key: str, skeleton: onnx.ModelProto) -> None:
        if self.directory is None or skeleton.ByteSize() > 2**31 - 2**24:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(handle, "wb") as file:
                file.write(entry_bytes(key, skeleton.SerializeToString()))
            os.replace(temporary, self.directory / f"{key}{_SUFFIX}")
            self._trim_disk()
        except OSError as err:  # a read-only or full disk: the memory cache still works
            logger.debug("export cache: cannot write to %s: %s", self.directory, err)

    def _trim_disk(self) -> None:
        assert self.directory is not None
        files = sorted(self.directory.glob(f"*{_SUFFIX}"), key=lambda p: p.stat().st_mtime)
        for path in files[: max(0, len(files) - 10 * self.max_entries)]:
            path.unlink(missing_ok=True)

    def __repr__(self) -> str:
        where = str(self.directory) if self.directory is not None else "memory only"
        state = "" if self.enabled else ", disabled"
        return f"ExportCache({where}, entries={len(self)}, hits={self.hits}{state})"


export_cache = ExportCache(default_directory())
"""The cache every export goes through (``padiff_ir.export_cache``)."""
