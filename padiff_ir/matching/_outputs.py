"""Whether two modules compute the same tensors: their outputs, traced through layout ops to
the tensor pairs of a matching, compared.

A module pair is one computation only if its two modules return the same tensors. Votes for a
pair come from parameters and ops, which a module can share with a layer returning another
tensor: torchvision DenseNet's BatchNorm (returned before its ReLU module) holds the parameters
of paddle's ``BatchNorm(act="relu")`` (which returns the ReLU's output); its dense layer's first
op, the concatenation of earlier features, is the last op of paddle's previous DenseLayer.
:class:`OutputCheck` tells such pairs apart and finds the module of the other side that returns
a module's output (the *holder*).
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from padiff_ir._paths import ancestors, depth, within
from padiff_ir.matching._seeds import paired_root

if TYPE_CHECKING:
    from padiff_ir.matching._module_tree import ModuleTree
    from padiff_ir.matching._state import PairState

__all__ = ["OutputCheck"]


class OutputCheck:
    """Output comparisons of A's modules against B's, over one matching's tensor pairs."""

    def __init__(self, state: PairState, tree_a: ModuleTree, tree_b: ModuleTree) -> None:
        self.state = state
        self.tree_a = tree_a
        self.tree_b = tree_b
        #: B modules by their outputs' paired tensors (built on first use)
        self._holders: dict[frozenset[str], list[str]] | None = None

    def partners(self, module_a: str) -> frozenset[str] | None:
        """The B tensors ``module_a``'s outputs pair with (through layout ops); ``None`` when
        it has no output or one of them pairs with nothing."""
        state = self.state
        partners = [
            state.one_a.get(paired_root(state.view_a, state.one_a, t))
            for t in self.tree_a.ordered_outputs(module_a)
        ]
        if not partners or None in partners:
            return None
        return frozenset(p for p in partners if p is not None)

    def roots_b(self, module_b: str, paired: bool = True) -> frozenset[str] | None:
        """``module_b``'s outputs traced back to paired tensors; ``None`` when it has none, or
        (``paired``) when one of them is unpaired."""
        state = self.state
        roots = [
            paired_root(state.view_b, state.one_b, t) for t in self.tree_b.ordered_outputs(module_b)
        ]
        if not roots or (paired and any(r not in state.one_b for r in roots)):
            return None
        return frozenset(roots)

    def disagree(self, module_a: str, module_b: str, made_inside: bool = True) -> bool:
        """Whether ``module_a``'s outputs pair with tensors of the other side, none of them
        one of ``module_b``'s outputs, while ``module_b``'s outputs pair with other tensors or
        ``module_a``'s partners are made inside ``module_b``: the two compute different
        tensors. A BatchNorm before a ReLU module against paddle's ``BatchNorm(act="relu")``
        (its parameters vote for the fused layer, whose output is the ReLU's). Without
        ``made_inside``, only outputs paired on both sides count (a container's children pair
        inside a block whose unpaired output its parent makes: ShuffleNet's ``branch2``)."""
        partners = self.partners(module_a)
        roots = self.roots_b(module_b, paired=False) if partners is not None else None
        if partners is None or roots is None or partners & roots:
            return False
        if all(r in self.state.one_b for r in roots):
            return True
        if not made_inside:
            return False
        view_b, of_b = self.state.view_b, self.tree_b.module_of
        producers = [view_b.producer(p) for p in partners]
        return all(p is not None and within(of_b[p], module_b) for p in producers)

    def returned_above(self, module_a: str, module_b: str) -> bool:
        """Whether ``module_b``'s outputs pair with tensors made by the own ops of a module
        enclosing ``module_a``."""
        state = self.state
        enclosing = set(ancestors(module_a))
        for root in self.roots_b(module_b) or ():
            producer = state.view_a.producer(state.one_b[root])
            if producer is not None and self.tree_a.module_of[producer] in enclosing:
                return True
        return False

    def holder(self, module_a: str) -> str | None:
        """The outermost B module (not the root) whose outputs are exactly the partners of
        ``module_a``'s outputs, if any. torchvision DenseNet's dense layer (its concatenation
        of earlier features pairs with paddle's previous DenseLayer's) returns what paddle's
        ``bn_ac_func2`` returns."""
        partners = self.partners(module_a)
        if partners is None:
            return None
        if self._holders is None:
            self._holders = defaultdict(list)
            for module_b in self.tree_b.classes:
                roots = self.roots_b(module_b) if module_b else None
                if roots is not None:
                    self._holders[roots].append(module_b)
        found = self._holders.get(partners, [])
        return min(
            found, key=lambda m: (depth(m), self.tree_b.first_use.get(m, 1 << 30)), default=None
        )
