"""What an export depends on, as one hash: the key of the export cache.

An exported graph is a function of the model's *structure* (its module tree, each module's class
and the plain attributes that steer its forward, such as a pooling's ``ceil_mode`` or a
dropout's ``p``, the names, shapes and dtypes of its parameters and buffers), its *code* (the
code objects of its classes' methods and the text of the files that define them, so a helper
function edited in the file counts too), the *input signature* (names, shapes, dtypes) and the
*tools* (torch, paddle, paddle2onnx, onnx, Python, the exporters of this package). Parameter and
buffer *values* are not in the key: the cache writes the current ones into the graph on a hit.

Tensors held as plain attributes (not parameters or buffers) are hashed by value: an exporter
bakes them into the graph as constants. Not covered: global variables the forward reads.

Example:
    >>> import torch
    >>> from padiff_ir.frameworks import normalize_inputs
    >>> model = torch.nn.Sequential(torch.nn.MaxPool1d(2))
    >>> inputs = normalize_inputs(torch.zeros(1, 2, 4))
    >>> key = model_fingerprint(model, "torch", inputs, None)
    >>> model[0].ceil_mode = True
    >>> model_fingerprint(model, "torch", inputs, None) != key
    True
"""

from __future__ import annotations

import enum
import functools
import hashlib
import inspect
import logging
import os
import re
import sys
import types
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from padiff_ir.exporters._torchscript import selected_backend
from padiff_ir.frameworks import Framework, ModelInputs, get_framework
from padiff_ir.hints import Model, Module

__all__ = ["model_fingerprint", "tool_versions"]

logger = logging.getLogger(__name__)

#: Attributes of torch modules and paddle layers that hold the tree, the tensors (keyed
#: separately), the train flag (exports run in eval mode) or names drawn from a process-wide
#: counter (``_full_name``) or set by paddle's first call and ``jit.save`` (``_built``,
#: ``_original_funcs``): left out of the key.
_SKIPPED_ATTRIBUTES = frozenset(
    {
        "training",
        "_parameters",
        "_buffers",
        "_modules",
        "_sub_layers",
        "_full_name",
        "_helper",
        "_loaddict_holder",
        "_op_recorder",
        "_built",
        "_original_funcs",
    }
)
_FRAMEWORK_PACKAGES = ("torch", "paddle")
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_MAX_DEPTH = 4


@functools.cache
def tool_versions() -> str:
    """Versions of the tools an export depends on, and a hash of this package's exporters."""
    from importlib import metadata

    parts = [f"python {sys.version_info[:3]}"]
    for package in ("torch", "paddlepaddle", "paddle2onnx", "onnx", "onnxscript"):
        try:
            parts.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{package} -")
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    parts.append(f"exporters {digest.hexdigest()[:16]}")
    return "; ".join(parts)


@functools.lru_cache(maxsize=1024)
def _file_digest(path: str, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _source_file_digest(cls: type) -> str:
    try:
        path = inspect.getsourcefile(cls)
    except (TypeError, OSError):
        return "-"
    if not path or not os.path.isfile(path):
        return "-"
    stat = os.stat(path)
    return _file_digest(path, stat.st_mtime_ns, stat.st_size)


def _code_parts(code: types.CodeType) -> Iterator[str]:
    yield code.co_name
    yield code.co_code.hex()
    yield repr(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_parts(const)
        else:
            yield repr(const)


def _function_parts(fn: object) -> Iterator[str]:
    fn = getattr(fn, "__func__", fn)
    fn = inspect.unwrap(fn) if callable(fn) else fn
    code = getattr(fn, "__code__", None)
    yield getattr(fn, "__qualname__", type(fn).__qualname__)
    if code is not None:
        yield from _code_parts(code)
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            contents = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if isinstance(contents, (bool, int, float, str, type(None))):
            yield repr(contents)


def _is_framework_class(cls: type) -> bool:
    return cls.__module__.split(".")[0] in _FRAMEWORK_PACKAGES or cls is object


def _class_parts(cls: type) -> Iterator[str]:
    """Every user class of ``cls``'s MRO: its file's text and its methods' code."""
    for klass in cls.__mro__:
        if _is_framework_class(klass):
            continue
        yield f"class {klass.__module__}.{klass.__qualname__} {_source_file_digest(klass)}"
        for name, value in sorted(vars(klass).items()):
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            if isinstance(value, property):
                value = value.fget
            if isinstance(value, types.FunctionType):
                yield name
                yield from _function_parts(value)


def _value_parts(value: object, framework: Framework, depth: int) -> Iterator[str]:
    """A description of an attribute's value that changes when the value does."""
    if isinstance(value, (bool, int, float, complex, str, bytes, type(None), enum.Enum)):
        yield repr(value)
    elif isinstance(value, np.ndarray) or framework.is_tensor(value):
        array = np.ascontiguousarray(
            value if isinstance(value, np.ndarray) else framework.to_numpy(value)
        )
        yield f"tensor {array.dtype} {array.shape} {hashlib.sha256(array.tobytes()).hexdigest()}"
    elif depth >= _MAX_DEPTH:
        yield type(value).__qualname__
    elif isinstance(value, (list, tuple)):
        yield f"{type(value).__name__}["
        for item in value:
            yield from _value_parts(item, framework, depth + 1)
        yield "]"
    elif isinstance(value, (set, frozenset)):
        yield f"set{sorted(repr(item) for item in value)}"
    elif isinstance(value, Mapping):
        yield "{"
        for key, item in value.items():
            # hook dicts are keyed by a process-wide counter: their values say what they do
            if not isinstance(key, int):
                yield repr(key)
            yield from _value_parts(item, framework, depth + 1)
        yield "}"
    elif isinstance(value, type):
        yield f"type {value.__module__}.{value.__qualname__}"
    elif callable(value) and (hasattr(value, "__code__") or hasattr(value, "__func__")):
        yield from _function_parts(value)
    elif framework.owns(value):  # a module referenced outside the tree: its class only
        yield f"module {type(value).__qualname__}"
    else:
        yield type(value).__qualname__
        attributes = getattr(value, "__dict__", None)
        if isinstance(attributes, dict):
            yield from _value_parts(attributes, framework, depth + 1)
        else:
            yield _ADDRESS.sub("", repr(value))


def _module_parts(module: Module, framework: Framework) -> Iterator[str]:
    cls = type(module)
    yield f"{cls.__module__}.{cls.__qualname__}"
    for name, tensor in framework.own_tensors(module):
        yield f"{name} {tuple(framework.shape(tensor))} {framework.dtype_name(tensor)}"
    for name, value in sorted(vars(module).items()):
        if name in _SKIPPED_ATTRIBUTES:
            continue
        yield name
        yield from _value_parts(value, framework, 1)


def model_fingerprint(model: Model, framework: str, inputs: ModelInputs, opset: int | None) -> str:
    """The export cache's key of ``model`` exported on inputs like ``inputs`` (hex SHA-256)."""
    fw = get_framework(framework)
    digest = hashlib.sha256()

    def feed(text: str) -> None:
        digest.update(text.encode("utf-8", "backslashreplace"))
        digest.update(b"\x00")

    feed(tool_versions())
    feed(f"{framework} opset {opset}")
    if framework == "torch":  # graphs of the two torch exporters never stand in for each other
        feed(f"torch exporter {selected_backend()}")
    for name, array in zip(inputs.names, inputs.arrays):
        feed(f"input {name} {array.dtype} {array.shape}")
    classes: dict[type, None] = {}
    for path, module in fw.all_module_paths(model):
        feed(f"module {path}")
        classes.setdefault(type(module))
        for part in _module_parts(module, fw):
            feed(part)
    for cls in classes:
        for part in _class_parts(cls):
            feed(part)
    for names in _tied_names(model, fw):
        feed(f"tied {' '.join(names)}")  # which names share one tensor shapes the graph
    return digest.hexdigest()


def _tied_names(model: Model, framework: Framework) -> list[list[str]]:
    """The names of each tensor reached under several names (tied weights)."""
    by_tensor: dict[int, list[str]] = {}
    for name, tensor in framework.named_tensors(model).items():
        by_tensor.setdefault(id(tensor), []).append(name)
    return [names for names in by_tensor.values() if len(names) > 1]
