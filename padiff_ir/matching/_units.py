"""Unit pairs: align tokens pin by pin, expand them into unit pairs, drop inconsistent ones.

:func:`align_tokens` aligns the tokens of each pinned module (and the unpinned ones) on their
own; :func:`expand_tokens` turns two matched tokens into unit pairs, member by member when both
hold the same layers, or into one N:M group (one fused projection against several);
:func:`consistent_pairs` drops 1:1 pairs whose inputs are made by units paired otherwise
(two BatchNorms of 16 channels look alike to the alignment; the convolutions feeding them do
not). Activation values, when given, reorder members whose signatures are equal.
"""

from __future__ import annotations

import logging
from collections import Counter
from itertools import permutations
from typing import TYPE_CHECKING, Any

from padiff_ir.matching._align import align

if TYPE_CHECKING:
    from padiff_ir.matching._anchors import Token, Unit
    from padiff_ir.matching._propagate import ValueCheck

__all__ = ["UnitPair", "align_tokens", "consistent_pairs", "expand_tokens"]

logger = logging.getLogger(__name__)

#: Units of A and of B matched together: one each, or an N:M group.
UnitPair = tuple[tuple["Unit", ...], tuple["Unit", ...]]


def align_tokens(tokens_a: list[Token], tokens_b: list[Token]) -> list[tuple[int, int]]:
    """Align the tokens of each pinned module (and the unpinned ones) separately.

    Tokens of different pins never match (the pin is part of the signature), and pinned
    modules may come in another order on the other side, which one monotone alignment of the
    whole sequences could not follow.
    """
    groups: dict[Any, tuple[list[int], list[int]]] = {}
    for side, tokens in ((0, tokens_a), (1, tokens_b)):
        for index, token in enumerate(tokens):
            groups.setdefault(token.key[0], ([], []))[side].append(index)
    pairs: list[tuple[int, int]] = []
    for indices_a, indices_b in groups.values():
        found = align(
            [tokens_a[i].key for i in indices_a],
            [tokens_b[j].key for j in indices_b],
            [tokens_a[i].context for i in indices_a],
            [tokens_b[j].context for j in indices_b],
        )
        pairs.extend((indices_a[i], indices_b[j]) for i, j in found)
    pairs.sort()
    return pairs


def _unit_signature(unit: Unit) -> tuple[Any, ...]:
    return unit.key


def expand_tokens(token_a: Token, token_b: Token, same: ValueCheck | None) -> list[UnitPair]:
    """Unit pairs of two matched tokens: member by member, or one N:M group."""
    units_a, units_b = token_a.units, token_b.units
    if len(units_a) == len(units_b):
        remaining = list(units_b)
        pairs = []
        for unit in units_a:
            match = next(
                (u for u in remaining if _unit_signature(u) == _unit_signature(unit)), None
            )
            if match is None:
                break
            remaining.remove(match)
            pairs.append((unit, match))
        else:
            pairs = _reorder_by_values(pairs, same)
            return [((a,), (b,)) for a, b in pairs]
    if len(units_a) == 1 or len(units_b) == 1:
        return [(units_a, units_b)]
    partial = _unique_members_and_one_group(units_a, units_b)
    if partial:
        return partial
    logger.debug(
        "tokens %s and %s: %d vs %d members, left unpaired",
        token_a.key,
        token_b.key,
        len(units_a),
        len(units_b),
    )
    return []


def _unique_members_and_one_group(
    units_a: tuple[Unit, ...], units_b: tuple[Unit, ...]
) -> list[UnitPair]:
    """Two tokens of several members each, not alike member by member (a router, a fused
    gate/up and a shared-expert gate read one input on one side; a router, gate, up and
    shared-expert gate on the other): members whose signature is unique in both tokens pair
    1:1, and the rest make one N:1 group when one side has a single member left. Nothing
    (``[]``) when that does not account for every member."""
    count_a = Counter(_unit_signature(u) for u in units_a)
    count_b = Counter(_unit_signature(u) for u in units_b)
    by_key_b = {_unit_signature(u): u for u in units_b}
    pairs: list[UnitPair] = []
    for unit in units_a:
        key = _unit_signature(unit)
        if count_a[key] == 1 and count_b.get(key) == 1:
            pairs.append(((unit,), (by_key_b[key],)))
    paired_a = {u.index for group, _ in pairs for u in group}
    paired_b = {u.index for _, group in pairs for u in group}
    rest_a = tuple(u for u in units_a if u.index not in paired_a)
    rest_b = tuple(u for u in units_b if u.index not in paired_b)
    if not pairs or not rest_a or not rest_b or min(len(rest_a), len(rest_b)) != 1:
        return []
    return [*pairs, (rest_a, rest_b)]


def consistent_pairs(
    unit_pairs: list[UnitPair], units_a: list[Unit], units_b: list[Unit]
) -> tuple[list[UnitPair], int]:
    """Unit pairs whose inputs come from paired units (or from no unit), and the rejects.

    The alignment sees signatures in order; a BatchNorm of the shortcut and one of the main
    branch look alike. A pair of units whose inputs are made by units paired with others is
    dropped here (propagation may pair them correctly later).
    """
    made_a = {u.output: u.index for u in units_a}
    made_b = {u.output: u.index for u in units_b}
    partner: dict[int, int] = {}
    kept = []
    for group_a, group_b in unit_pairs:
        if len(group_a) == 1 and len(group_b) == 1:
            source_a = made_a.get(group_a[0].root or "")
            source_b = made_b.get(group_b[0].root or "")
            if (
                source_a is not None
                and source_b is not None
                and partner.get(source_a, source_b) != source_b
            ):
                continue
            partner[group_a[0].index] = group_b[0].index
        kept.append((group_a, group_b))
    return kept, len(unit_pairs) - len(kept)


def unique_leftovers(
    unit_pairs: list[UnitPair], units_a: list[Unit], units_b: list[Unit]
) -> list[UnitPair]:
    """Pairs of units the alignment left out whose signature is unique among the leftovers of
    both sides: a layer used in another order on the other side (crossing the alignment)."""
    used_a = {u.index for group, _ in unit_pairs for u in group}
    used_b = {u.index for _, group in unit_pairs for u in group}
    left_a = [u for u in units_a if u.index not in used_a]
    left_b = [u for u in units_b if u.index not in used_b]
    count_a = Counter(u.key for u in left_a)
    count_b = Counter(u.key for u in left_b)
    by_key_b = {u.key: u for u in left_b}
    return [
        ((u,), (by_key_b[u.key],))
        for u in left_a
        if count_a[u.key] == 1 and count_b.get(u.key) == 1
    ]


def _reorder_by_values(
    pairs: list[tuple[Unit, Unit]], same: ValueCheck | None
) -> list[tuple[Unit, Unit]]:
    if same is None or len(pairs) < 2 or len(pairs) > 6:
        return pairs
    if all(same(a.output, b.output) is not False for a, b in pairs):
        return pairs
    units_b = [b for _, b in pairs]
    for order in permutations(units_b):
        if all(
            a.key == b.key and same(a.output, b.output) is True for (a, _), b in zip(pairs, order)
        ):
            return [(a, b) for (a, _), b in zip(pairs, order)]
    return pairs
