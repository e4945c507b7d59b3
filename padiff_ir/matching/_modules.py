"""Pair modules (the layer map) from the tensor and parameter pairs, by votes and ancestry.

* **Votes**: every parameter pair votes (weight 3) for the pair of the modules owning the two
  parameters (the lowest common owner for a split group: three ``q/k/v_proj`` vote as their
  attention layer, with torch's ``MultiheadAttention`` owning ``in_proj``; a fused ``qkv``
  ``Linear`` that does nothing but the projection has no counterpart and does not vote), every
  tensor pair (weight 1) for the modules of the two producing ops (slices of a fused output do
  not vote). A module's candidate partner is its most voted one (ties: closest depth, then
  graph order). Ops are attributed to the module owning the parameters they read when the
  exporter put them in an ancestor (torch's attention reads ``out_proj.weight`` itself).
* **Ancestry**: a module without votes (a container with no op of its own) takes the lowest
  common ancestor of its descendants' partners, if that module's paired descendants all pair
  back inside it; so a ``Sequential`` wrapping blocks on one side only finds no partner, while
  the blocks themselves do.
* **One to one**: the two roots pair (unless a pin says otherwise); candidates are accepted
  pins first, then voted ones, then those by ancestry, each by decreasing strength and then
  the smaller difference in depth; each module at most once.

A pair is a *black box* when the ops of the two modules that no paired submodule explains do not
pair with each other op for op (fused vs split projections, ``Gelu`` vs its ``Erf``
decomposition), or when the layer map says so. Boundary tensors: those a module's ops read from
outside (inputs) and those they make that are read outside or are graph outputs (outputs); the
pair lists the boundary tensors of both sides that pair with each other, position by position.

Each side's modules (classes, ops, first use, boundary tensors) are a
:class:`~padiff_ir.matching._module_tree.ModuleTree`.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import TYPE_CHECKING

from padiff_ir._paths import (
    ancestors,
    common_ancestor,
    depth,
    within,
    within_any,
)
from padiff_ir.ir.families import layer_kind, module_family
from padiff_ir.matching._outputs import OutputCheck
from padiff_ir.matching._seeds import paired_root
from padiff_ir.matching.types import ModulePair, Unmatched

if TYPE_CHECKING:
    from collections.abc import Iterable

    from padiff_ir.matching._module_tree import ModuleTree
    from padiff_ir.matching._state import PairState
    from padiff_ir.matching.types import ParamPair

__all__ = ["ModuleMatcher"]

logger = logging.getLogger(__name__)


class ModuleMatcher:
    """Builds the module pairs and the unmatched modules of a matching."""

    def __init__(self, state: PairState, tree_a: ModuleTree, tree_b: ModuleTree) -> None:
        self.state = state
        self.tree_a = tree_a
        self.tree_b = tree_b
        self.votes: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.param_votes: set[str] = set()
        self.rejected: dict[str, str] = {}
        #: A modules whose ops' tensors pair only with a B layer of another kind
        self.other_kind: dict[str, str] = {}
        #: modules that own an op themselves (not only through their submodules)
        self.own_ops_a = set(tree_a.module_of.values())
        self.own_ops_b = set(tree_b.module_of.values())
        #: module pairs with a tensor pair made by ops of one family on both sides
        self.same_ops: set[tuple[str, str]] = set()
        self.spread: dict[str, str] = {}
        #: voted modules -> their children's partners' common ancestor (a second choice)
        self.second: dict[str, tuple[str, float, tuple[str, ...], float]] = {}
        #: fused layers (one projection for several of the other side) -> the other side's
        #: common ancestor of those
        self.fused_a: dict[str, str] = {}
        self.fused_b: dict[str, str] = {}
        #: A modules whose output pairs only inside their voted B module (a BatchNorm before
        #: a ReLU against a fused ``BatchNorm(act="relu")``) -> that module
        self.fused_inside: dict[str, str] = {}
        self.outputs = OutputCheck(state, tree_a, tree_b)

    # -- votes -----------------------------------------------------------------------------
    def vote_params(self, pairs: Iterable[ParamPair]) -> None:
        for pair in pairs:
            if len(pair.a) != len(pair.b):
                # a fused layer against several: the single owner is the counterpart of the
                # others' common ancestor only if it does more than the fused projection
                single_a = len(pair.a) == 1
                tree = self.tree_a if single_a else self.tree_b
                owner = pair.module_a if single_a else pair.module_b
                other = pair.module_b if single_a else pair.module_a
                if tree.only_reads_own_params(owner):
                    (self.fused_a if single_a else self.fused_b)[owner] = (
                        "a fused layer: its parameters are split over several layers under "
                        f"{other!r} on the other side; compare the modules around them"
                    )
                    continue
            self.votes[pair.module_a][pair.module_b] += 3.0
            self.param_votes.add(pair.module_a)

    def vote_tensors(self) -> None:
        view_a, view_b = self.state.view_a, self.state.view_b
        of_a, of_b = self.tree_a.module_of, self.tree_b.module_of
        votes = self.votes
        for draft in self.state.drafts:
            if "split-group" in draft.evidence or "chunk" in draft.evidence:
                # pieces of a fused layer against whole layers, or chunks whose split an
                # exporter puts in the module reading one of them: no module pair
                continue
            if len(draft.a) == 1 and len(draft.b) == 1:
                producer_a, producer_b = view_a.producer(draft.a[0]), view_b.producer(draft.b[0])
                if (
                    producer_a is not None
                    and producer_b is not None
                    and not (
                        view_a.op(producer_a).meta.get("synthetic")
                        or view_b.op(producer_b).meta.get("synthetic")
                    )
                ):
                    votes[of_a[producer_a]][of_b[producer_b]] += 1
                    if view_a.facts[producer_a].family == view_b.facts[producer_b].family:
                        self.same_ops.add((of_a[producer_a], of_b[producer_b]))
                continue  # an op a graph made up (``meta["synthetic"]``) is no evidence
            mods_a = [of_a[p] for p in map(view_a.producer, draft.a) if p]
            mods_b = [of_b[p] for p in map(view_b.producer, draft.b) if p]
            if len(mods_a) == len(draft.a) and len(mods_b) == len(draft.b):
                votes[common_ancestor(mods_a)][common_ancestor(mods_b)] += 1

    # -- assignment ------------------------------------------------------------------------
    def assign(self, pins: dict[str, str]) -> dict[str, tuple[str, float, tuple[str, ...]]]:
        """A module -> (B module, confidence, evidence)."""
        candidates: dict[str, tuple[str, float, tuple[str, ...], float]] = {}
        for module_a, ballot in self.votes.items():
            if module_a not in self.tree_a.classes:
                continue
            ballot = {
                b: v
                for b, v in ballot.items()
                if b in self.tree_b.classes
                and (module_a in self.param_votes or self._same_kind(module_a, b))
            }
            if not ballot:
                continue
            total = sum(ballot.values())
            best = max(
                ballot,
                key=lambda b: (
                    ballot[b],
                    -abs(depth(b) - depth(module_a)),
                    -self.tree_b.first_use.get(b, 1 << 30),
                ),
            )
            evidence: tuple[str, ...] = ("params",) if module_a in self.param_votes else ("ops",)
            strength = ballot[best]
            if module_a and self.outputs.disagree(module_a, best):
                holder = self.outputs.holder(module_a)
                if holder is None:
                    self.fused_inside[module_a] = best
                    continue
                best, evidence = holder, (*evidence, "outputs")
            candidates[module_a] = (best, strength / total, evidence, strength)
        if "" not in pins and "" not in pins.values():
            # both roots compute the model: graph inputs and outputs pair by position
            pins = {"": "", **pins}
        for module_a, module_b in pins.items():
            candidates[module_a] = (module_b, 1.0, ("pinned",), float("inf"))
        self._ancestry(candidates)
        priority = {"pinned": 0, "params": 1, "ops": 1, "children": 2}
        order = sorted(
            candidates.items(),
            key=lambda item: (
                priority[item[1][2][0]],
                -item[1][3],
                abs(depth(item[1][0]) - depth(item[0])),
                self.tree_a.first_use.get(item[0], 1 << 30),
            ),
        )
        taken_b: dict[str, str] = {}
        accepted: dict[str, tuple[str, float, tuple[str, ...]]] = {}
        for module_a, (module_b, confidence, evidence, _) in order:
            if module_b in taken_b:
                self.rejected[module_a] = taken_b[module_b]
                continue
            taken_b[module_b] = module_a
            accepted[module_a] = (module_b, round(min(1.0, confidence), 3), evidence)
        self._second_choices(accepted, taken_b)
        self._silent_children(accepted, taken_b)
        return accepted

    def _silent_children(
        self, accepted: dict[str, tuple[str, float, tuple[str, ...]]], taken_b: dict[str, str]
    ) -> None:
        """Parameter-free layers whose computation found no counterpart on either side (no op
        at all, as an eval Dropout an export drops, or no op in an op pair) under a module
        pair: the i-th of one kind of A's pairs with the i-th of that kind of B's, when both
        have as many. MobileNetV2's ``classifier.0`` Dropouts (no op on either side) stayed
        unpaired; so did InceptionV3's ``dropout``, dropped from torch's export and run after
        a reshape in paddle's (its ``Mul`` by 0.8 pairs with nothing)."""
        tree_a, tree_b = self.tree_a, self.tree_b
        for module_a, (module_b, _, _) in list(accepted.items()):
            silent: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
            for side, tree, parent_path, taken, op_pairs in (
                (0, tree_a, module_a, accepted, self.state.op_a),
                (1, tree_b, module_b, taken_b, self.state.op_b),
            ):
                for child in tree.children.get(parent_path, ()):
                    kind = layer_kind(tree.classes.get(child, ""))
                    if (
                        kind
                        and child not in taken
                        and not any(op in op_pairs for op in tree.own_ops(child, set()))
                    ):
                        silent[kind][side].append(child)
            for children_a, children_b in silent.values():
                if len(children_a) != len(children_b):
                    continue
                for child_a, child_b in zip(children_a, children_b, strict=True):
                    taken_b[child_b] = child_a
                    accepted[child_a] = (child_b, 0.7, ("position",))

    def _second_choices(
        self, accepted: dict[str, tuple[str, float, tuple[str, ...]]], taken_b: dict[str, str]
    ) -> None:
        """A module whose voted partner went to another module takes its children's partners'
        common ancestor, when that is free or held by a container below it by ancestry alone
        (torchvision's ShuffleNet block, whose split votes for paddle's first conv, wraps
        its ``branch2``: the block pairs with paddle's block, not the branch)."""
        for module_a in [m for m in self.rejected if m in self.second and m not in accepted]:
            module_b, confidence, evidence, _ = self.second[module_a]
            holder = taken_b.get(module_b)
            if module_b not in self.tree_b.classes or (
                holder is not None
                and not (within(holder, module_a) and accepted[holder][2] == ("children",))
            ):
                continue
            if holder is not None:
                del accepted[holder]
            taken_b[module_b] = module_a
            accepted[module_a] = (module_b, confidence, evidence)
            del self.rejected[module_a]

    def _same_kind(self, module_a: str, module_b: str) -> bool:
        """Whether two modules may hold one computation: a dropout, a pool or an activation
        pairs with a layer of another kind only when a tensor pair between them is made by ops
        of one family (torch's ReLU module and paddle's conv block ending in ``F.relu``). A
        tensor vote across kinds otherwise comes from a layer one export dropped: torch's eval
        Dropout, read past by its reader, would pair the Fire block before it with paddle's
        Dropout."""
        kind_a = layer_kind(self.tree_a.classes.get(module_a, ""))
        kind_b = layer_kind(self.tree_b.classes.get(module_b, ""))
        if kind_a == kind_b or (module_a, module_b) in self.same_ops:
            return True
        self.other_kind.setdefault(module_a, module_b)
        return False

    def _ancestry(self, candidates: dict[str, tuple[str, float, tuple[str, ...], float]]) -> None:
        """Containers without votes: the lowest common ancestor of their children's partners.

        One bottom-up sweep: each module carries the common ancestor of the partners below it,
        their total strength and how many voted modules lie below it; a container is accepted
        when every voted module whose partner lies under that ancestor lies under it too.
        """
        tree_a = self.tree_a
        voted = dict(candidates)
        below_b: dict[str, int] = defaultdict(int)  # voted partners under each B module
        for voted_b, *_ in voted.values():
            for node in (voted_b, *ancestors(voted_b)):
                below_b[node] += 1
        lca: dict[str, str | None] = {}
        strength: dict[str, float] = {}
        count: dict[str, int] = {}
        for module_a in tree_a.post_order():
            partners: list[str] = []
            total, inside = 0.0, 0
            for child in tree_a.children.get(module_a, ()):
                if child in candidates:
                    partners.append(candidates[child][0])
                    total += candidates[child][3]
                elif (partner := lca.get(child)) is not None:
                    partners.append(partner)
                    total += strength[child]
                inside += count.get(child, 0)
            if module_a in voted:
                inside += 1
            count[module_a] = inside
            module_b = common_ancestor(partners) if partners else None
            if module_b is not None and len(partners) == 1:
                module_b = self._same_wrapper(module_a, module_b)
            if module_a in candidates:
                # voted by its own ops: its children's partners are a second choice, taken
                # when its voted partner goes to another module (a block whose split pairs
                # with the first layer of the other side's block)
                if module_b is not None and module_b != candidates[module_a][0]:
                    self.second[module_a] = (module_b, 0.9, ("children",), total)
                    if not self.outputs.disagree(module_a, module_b) and self._holds_own_ops(
                        module_a, module_b, voted, below_b, inside
                    ):
                        _, confidence, voted_by, votes = candidates[module_a]
                        candidates[module_a] = (module_b, confidence, voted_by, votes + total)
                continue
            lca[module_a] = module_b
            strength[module_a] = total
            if module_b is None or module_a not in tree_a.has_ops:
                continue
            if self._encloses(module_a, module_b, voted, below_b, inside):
                evidence: tuple[str, ...] = ("children",)
                if self.outputs.disagree(module_a, module_b, made_inside=False):
                    # the block its children pair in returns another tensor (DenseNet's
                    # first dense layer: paddle's DenseLayer returns the concatenation)
                    # ... unless an enclosing module's own ops make that tensor (ShuffleNet's
                    # ``branch2``: a wrapper paddle's block does not have)
                    holder = self.outputs.holder(module_a)
                    if holder is None or self.outputs.returned_above(module_a, module_b):
                        continue
                    module_b, evidence = holder, ("children", "outputs")
                candidates[module_a] = (module_b, 0.9, evidence, total)
            else:
                self.spread[module_a] = module_b

    def _holds_own_ops(
        self,
        module_a: str,
        module_b: str,
        voted: dict[str, tuple[str, float, tuple[str, ...], float]],
        below_b: dict[str, int],
        inside: int,
    ) -> bool:
        """Whether ``module_b``, the common ancestor of ``module_a``'s children's partners,
        holds ``module_a``'s own computation in one of its submodules: ``module_a``'s voted
        partner lies strictly inside ``module_b``, and the voted modules paired inside
        ``module_b`` are exactly those inside ``module_a``. torchvision InceptionV3's
        ``BasicConv2d`` (conv, norm, functional ReLU) against paddle's ConvNormActivation
        (``.0``, ``.1``, a ReLU module ``.2``): its ReLU votes for ``.2`` (the same output
        tensor), its conv and norm pair inside the block; the block is its pair."""
        partner = voted[module_a][0]
        return (
            partner != module_b
            and within(partner, module_b)
            and self._encloses(module_a, module_b, voted, below_b, inside)
        )

    def _encloses(
        self,
        module_a: str,
        module_b: str,
        voted: dict[str, tuple[str, float, tuple[str, ...], float]],
        below_b: dict[str, int],
        inside: int,
    ) -> bool:
        """Whether the voted modules whose partners lie under ``module_b`` (``below_b``) are
        the ``inside`` ones under ``module_a``, not counting ``module_a``'s voted ancestors."""
        if module_b not in self.tree_b.classes:
            return False
        outside = sum(
            1 for node in ancestors(module_a) if node in voted and within(voted[node][0], module_b)
        )
        return below_b.get(module_b, 0) - outside == inside

    def _same_wrapper(self, module_a: str, module_b: str) -> str:
        """``module_a`` wraps one child with ops and adds none; ``module_b`` is that child's
        partner. The layer of B wrapping ``module_b`` the same way (adding no op, its other
        children computing nothing), when there is one; else ``module_b``. MobileNetV2's
        ``features.1`` (a block) holds only ``conv`` (a Sequential) on both sides: the block
        pairs with the block and the Sequential with the Sequential, where both claimed the
        Sequential and the blocks stayed unpaired."""
        tree_a, tree_b = self.tree_a, self.tree_b
        with_ops = [c for c in tree_a.children.get(module_a, ()) if c in tree_a.has_ops]
        if len(with_ops) != 1 or module_a in self.own_ops_a:
            return module_b
        up = next((p for p in ancestors(module_b) if p in tree_b.classes), None)
        if not up or up in self.own_ops_b:
            return module_b
        others = [c for c in tree_b.children.get(up, ()) if c != module_b]
        return module_b if any(c in tree_b.has_ops for c in others) else up

    # -- results ---------------------------------------------------------------------------
    def module_pairs(
        self,
        accepted: dict[str, tuple[str, float, tuple[str, ...]]],
        black_box_a: Iterable[str] = (),
        black_box_b: Iterable[str] = (),
    ) -> list[ModulePair]:
        boxes_a, boxes_b = tuple(black_box_a), tuple(black_box_b)
        paired_a = set(accepted)
        paired_b = {b for b, _, _ in accepted.values()}
        pairs = []
        for module_a, (module_b, confidence, evidence) in accepted.items():
            box = (
                within_any(module_a, boxes_a)
                or within_any(module_b, boxes_b)
                or self._internals_differ(module_a, module_b, paired_a, paired_b)
            )
            inputs = self._boundary(
                list(self.tree_a.inputs.get(module_a, {})),
                list(self.tree_b.inputs.get(module_b, {})),
            )
            outputs = self._boundary(
                self.tree_a.ordered_outputs(module_a), self.tree_b.ordered_outputs(module_b)
            )
            pairs.append(
                ModulePair(
                    a=module_a,
                    b=module_b,
                    class_a=self.tree_a.classes.get(module_a, ""),
                    class_b=self.tree_b.classes.get(module_b, ""),
                    confidence=confidence,
                    evidence=evidence,
                    black_box=box,
                    inputs_a=tuple(a for a, _ in inputs),
                    inputs_b=tuple(b for _, b in inputs),
                    outputs_a=tuple(a for a, _ in outputs),
                    outputs_b=tuple(b for _, b in outputs),
                )
            )
        pairs.sort(key=lambda p: (self.tree_a.first_use.get(p.a, 1 << 30), depth(p.a)))
        return pairs

    def _boundary(self, tensors_a: list[str], tensors_b: list[str]) -> list[tuple[str, str]]:
        state = self.state
        by_root: dict[str, str] = {}
        for tensor in tensors_b:
            by_root.setdefault(paired_root(state.view_b, state.one_b, tensor), tensor)
        found, used = [], set()
        for tensor in tensors_a:
            partner = state.one_a.get(paired_root(state.view_a, state.one_a, tensor))
            match = by_root.get(partner) if partner is not None else None
            if match is not None and match not in used:
                used.add(match)
                found.append((tensor, match))
        return found

    def _internals_differ(
        self, module_a: str, module_b: str, paired_a: set[str], paired_b: set[str]
    ) -> bool:
        state = self.state
        for view, tree, module, other, ops_map, other_tree, paired, covered in (
            (
                state.view_a,
                self.tree_a,
                module_a,
                module_b,
                state.op_a,
                self.tree_b,
                paired_a,
                state.covered_a,
            ),
            (
                state.view_b,
                self.tree_b,
                module_b,
                module_a,
                state.op_b,
                self.tree_a,
                paired_b,
                state.covered_b,
            ),
        ):
            for name in tree.own_ops(module, paired):
                if view.facts[name].kind == "transparent" or (
                    name in covered and name not in ops_map
                ):
                    continue
                partner = ops_map.get(name)
                if partner is None or not within(other_tree.module_of[partner], other):
                    return True
        return False

    def unmatched(
        self,
        accepted: dict[str, tuple[str, float, tuple[str, ...]]],
        fused_b: dict[str, str],
        fused_a: dict[str, str],
    ) -> list[Unmatched]:
        paired_b = {b: a for a, (b, _, _) in accepted.items()}
        spread = self.spread
        other_classes = {
            "a": {module_family(c) for c in self.tree_b.classes.values()},
            "b": {module_family(c) for c in self.tree_a.classes.values()},
        }
        found = []
        for side, tree, paired, fused in (
            ("a", self.tree_a, accepted, fused_a),
            ("b", self.tree_b, paired_b, fused_b),
        ):
            for module in sorted(tree.classes, key=lambda m: tree.first_use.get(m, 1 << 30)):
                if module in paired or tree.is_ignored(module):
                    continue
                if module in fused:
                    reason = fused[module]
                elif module not in tree.has_ops:
                    reason = (
                        "no op of the graph comes from it (a layer that computes "
                        "nothing at inference, e.g. Dropout or Identity)"
                    )
                elif side == "a" and module in spread:
                    reason = (
                        "a container whose submodules pair with modules spread over "
                        f"{spread[module]!r}, which holds others too: the other side "
                        "has no module wrapping exactly these"
                    )
                elif side == "a" and module in self.rejected:
                    rival = self.rejected[module]
                    reason = (
                        "its ops pair with the same module as "
                        f"{'the root' if rival == '' else repr(rival)}, which pairs "
                        "better (both wrap the same computation)"
                    )
                elif side == "a" and module in self.fused_inside:
                    other = self.fused_inside[module]
                    reason = (
                        f"its output pairs with a tensor inside {other!r} "
                        f"({self.tree_b.classes.get(other, '')}), which outputs another: the "
                        "other side computes it fused with the next layer"
                    )
                elif side == "a" and module in self.other_kind:
                    other = self.other_kind[module]
                    reason = (
                        f"its output pairs only with {other!r} "
                        f"({self.tree_b.classes.get(other, '')}), a layer of another kind"
                    )
                elif any(within(p, module) for p in paired):
                    reason = (
                        "a container the other side does not have: its submodules are "
                        "paired one by one"
                    )
                elif (
                    tree.classes[module]
                    and not tree.children.get(module)
                    and module_family(tree.classes[module]) not in other_classes[side]
                ):
                    reason = (
                        f"{tree.classes[module]} present in model {side.upper()} only "
                        "(no layer of that class on the other side)"
                    )
                else:
                    reason = "none of its ops or parameters found a counterpart"
                found.append(
                    Unmatched(
                        side,
                        "module",
                        module,
                        reason,
                        module=module,
                        op_type=tree.classes.get(module, ""),
                    )
                )
        return found
