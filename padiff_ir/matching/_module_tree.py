"""The modules of one side of a matching: classes, ops, first use and boundary tensors.

Every op is attributed to a module: the one the exporter names, or, when the op reads only
parameters of one submodule of it, that submodule (torch's attention reads
``out_proj.weight`` itself). A module's boundary tensors are those its ops read from outside
(inputs) and those they make that are read outside or are graph outputs (outputs). Modules the
layer map leaves out are dropped (``ignored``: with their submodules; ``ignored_self``: only
themselves).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from padiff_ir._paths import ancestors, strictly_within, within_any
from padiff_ir.matching._params import owner_module

if TYPE_CHECKING:
    from padiff_ir.matching._view import SideView

__all__ = ["ModuleTree"]

logger = logging.getLogger(__name__)


def _shared_suffix(chain_a: list[str], chain_b: list[str]) -> int:
    """How many ancestors (from the root down) two module chains share."""
    n = 0
    while n < len(chain_a) and n < len(chain_b) and chain_a[-1 - n] == chain_b[-1 - n]:
        n += 1
    return n


@dataclass
class ModuleTree:
    """The modules of one side: classes, ops, first use, boundary tensors."""

    view: SideView
    ignored: tuple[str, ...] = ()
    ignored_self: tuple[str, ...] = ()
    classes: dict[str, str] = field(default_factory=dict)
    direct_ops: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    first_use: dict[str, int] = field(default_factory=dict)
    inputs: dict[str, dict[str, None]] = field(default_factory=lambda: defaultdict(dict))
    outputs: dict[str, dict[str, None]] = field(default_factory=lambda: defaultdict(dict))
    has_ops: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        view = self.view
        graph = view.graph
        self.classes = {p: c for p, c in graph.modules.items() if not self.is_ignored(p)}
        self.classes.setdefault("", graph.meta.get("model_class", ""))
        hidden = set(self.ignored_self)
        self.module_of = {name: self._attribute(name) for name in view.order}
        chains: dict[str, list[str]] = {}

        def chain(path: str) -> list[str]:
            found = chains.get(path)
            if found is None:
                found = [path, *ancestors(path)]
                chains[path] = found
                for module in found:
                    self.classes.setdefault(module, "")
            return found

        module_of = self.module_of
        seen_paths: set[str] = set()
        for name in view.order:
            if name in view.ignored:
                continue
            path = module_of[name]
            self.direct_ops[path].append(name)
            chain_c = chain(path)
            if path not in seen_paths:
                seen_paths.add(path)
                rank = view.rank[name]
                for module in chain_c:
                    self.has_ops.add(module)
                    if module not in self.first_use:
                        self.first_use[module] = rank
            for tensor in view.act_inputs(name):
                producer = view.producer(tensor)
                path_p = module_of[producer] if producer is not None else None
                if path_p == path:
                    continue  # the common case: no module boundary crossed
                chain_p = chain(path_p) if path_p is not None else []
                shared = _shared_suffix(chain_c, chain_p)
                for module in chain_c[: len(chain_c) - shared]:
                    self.inputs[module][tensor] = None
                for module in chain_p[: len(chain_p) - shared]:
                    self.outputs[module][tensor] = None
        for tensor in graph.outputs:
            producer = view.producer(tensor)
            if producer is not None and producer not in view.ignored:
                for module in chain(self.module_of[producer]):
                    self.outputs[module][tensor] = None
        for module in hidden:  # left out themselves, their submodules still matched
            self.classes.pop(module, None)
        self.children: dict[str, list[str]] = defaultdict(list)
        for module in self.classes:
            owner = next((p for p in ancestors(module) if p in self.classes), None)
            if owner is not None:
                self.children[owner].append(module)

    def post_order(self) -> list[str]:
        """Modules, every module after all of its submodules."""
        order: list[str] = []
        stack: list[tuple[str, bool]] = [("", False)]
        while stack:
            module, done = stack.pop()
            if done:
                order.append(module)
                continue
            stack.append((module, True))
            stack.extend((child, False) for child in self.children.get(module, ()))
        return order

    def own_ops(self, module: str, paired: set[str]) -> list[str]:
        """Ops of ``module`` and of its submodules that are not in ``paired`` (nor below one)."""
        found = list(self.direct_ops.get(module, ()))
        stack = [c for c in self.children.get(module, ()) if c not in paired]
        while stack:
            current = stack.pop()
            found.extend(self.direct_ops.get(current, ()))
            stack.extend(c for c in self.children.get(current, ()) if c not in paired)
        return found

    def _attribute(self, name: str) -> str:
        """The op's module, or the submodule owning the parameters it reads.

        torch's ``MultiheadAttention`` reads ``out_proj.weight`` without calling ``out_proj``,
        so the exporter attributes that ``MatMul`` to the attention module; it belongs to
        ``out_proj`` as far as matching is concerned.
        """
        view = self.view
        path = view.op(name).module_path
        facts = view.facts[name]
        if not facts.sources:
            return path
        owners = {
            owner_module(view.graph.modules, view.graph.tensors[t].param_name or t)
            for tensors in facts.sources.values()
            for t in tensors
        }
        if len(owners) != 1:
            return path
        owner = owners.pop()
        return owner if strictly_within(owner, path) else path

    def only_reads_own_params(self, module: str) -> bool:
        """Whether every op of ``module`` (and below) reads parameters ``module`` owns."""
        ops = self.own_ops(module, set())
        if not ops:
            return False
        for name in ops:
            facts = self.view.facts[name]
            owners = {
                owner_module(self.view.graph.modules, self.view.graph.tensors[t].param_name or t)
                for tensors in facts.sources.values()
                for t in tensors
            }
            if owners != {module}:
                return False
        return True

    def is_ignored(self, path: str) -> bool:
        return within_any(path, self.ignored)

    def ordered_outputs(self, module: str) -> list[str]:
        rank = self.view.rank

        def key(tensor: str) -> int:
            producer = self.view.producer(tensor)
            return rank[producer] if producer is not None else -1

        return sorted(self.outputs.get(module, {}), key=key)
