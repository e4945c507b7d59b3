"""Map paddle's ``struct_name`` scopes back to sublayer attribute paths.

While tracing a layer to a static program, paddle wraps each sublayer call in
``name_struct(type(layer).__name__)``; the n-th call of a class under the same parent call gets
``Class_n`` and every op records the joined path, e.g. ``/Blk_1/Linear/``. Those are class
names, not attribute paths. :class:`CallRecorder` hooks every sublayer during the trace, replays
paddle's naming on the recorded call tree and so learns, for each struct name, which sublayer
(attribute path, e.g. ``blocks.1.fc``) it was.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from padiff_ir.frameworks import get_framework, installed
from padiff_ir.hints import Inputs, Model, Module, Outputs

__all__ = ["CallRecorder"]


def _paddle_framework() -> Any:
    from paddle.base import framework

    return framework


class _Scope:
    __slots__ = ("children", "name", "parent", "path")

    def __init__(self, name: str, parent: _Scope | None, path: str) -> None:
        self.name = name
        self.parent = parent
        self.path = path
        self.children: dict[str, int] = {}

    def child(self, prefix: str, path: str) -> _Scope:
        count = self.children.get(prefix, 0)
        self.children[prefix] = count + 1
        return _Scope(prefix if count == 0 else f"{prefix}_{count}", self, path)

    def full_name(self) -> str:
        parts = []
        scope: _Scope | None = self
        while scope is not None and scope.parent is not None:
            parts.append(scope.name)
            scope = scope.parent
        return "/" + "".join(p + "/" for p in reversed(parts)) if parts else ""


class CallRecorder:
    """Record sublayer calls during a trace; then :meth:`layer_path` maps struct names.

    Use as ``with recorder.recording(model): paddle.jit.save(...)``; the hooks are removed on exit,
    also when the trace raises.
    """

    def __init__(self) -> None:
        self.struct_to_path: dict[str, str] = {}
        #: struct name -> which call of its sublayer it was (from 0)
        self.struct_to_call: dict[str, int] = {}
        #: sublayer path -> how often it was called
        self.calls: dict[str, int] = {}
        self._stack: list[_Scope] = []
        #: what the model's forward returned during the trace (static values; for the keys)
        self.output_structure: Any = None

    @contextlib.contextmanager
    def recording(self, model: Model) -> Iterator[CallRecorder]:
        self._stack = [_Scope("", None, "")]
        # paddle numbers struct names with a process-global counter tree whose root outlives
        # every trace (a second export would see ``ReLU_2``). Trace under a fresh root, so the
        # names depend on this model only, and put the user's counters back afterwards.
        framework = _paddle_framework()
        saved_root = getattr(framework, "_name_struct", None)
        if saved_root is not None:
            framework._name_struct = type(saved_root)()
        hooks = [
            (layer, self._pre_hook(path), self._post_hook())
            for path, layer in model.named_sublayers()
        ]
        try:
            with installed(get_framework("paddle"), hooks):
                yield self
        finally:
            if saved_root is not None:
                framework._name_struct = saved_root

    def _pre_hook(self, path: str):
        def hook(layer: Module, inputs: Inputs, kwargs: Any = None) -> None:
            scope = self._stack[-1].child(type(layer).__name__, path)
            self.struct_to_path.setdefault(scope.full_name(), path)
            self.struct_to_call.setdefault(scope.full_name(), self.calls.get(path, 0))
            self.calls[path] = self.calls.get(path, 0) + 1
            self._stack.append(scope)

        return hook

    def _post_hook(self):
        def hook(layer: Module, inputs: Inputs, outputs: Outputs) -> None:
            if len(self._stack) > 1:
                self._stack.pop()

        return hook

    def layer_call(self, struct_name: str | None) -> int | None:
        """Which call of its sublayer a struct name is, when that sublayer was called several
        times (``None`` otherwise or when unknown)."""
        if not struct_name:
            return None
        name = struct_name if struct_name.endswith("/") else struct_name + "/"
        path = self.struct_to_path.get(name)
        if path is None or self.calls.get(path, 0) < 2:
            return None
        return self.struct_to_call.get(name)

    def layer_path(self, struct_name: str | None) -> str | None:
        """Attribute path for a struct name; ``""`` (root) for none; ``None`` if unknown.

        An unknown struct (a layer created inside ``forward``, not a registered sublayer) maps
        to its nearest known ancestor.
        """
        if not struct_name:
            return ""
        name = struct_name if struct_name.endswith("/") else struct_name + "/"
        while name and name != "/":
            if name in self.struct_to_path:
                return self.struct_to_path[name]
            name = name[: name.rstrip("/").rfind("/") + 1]
        return ""
