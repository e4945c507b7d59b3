"""A graph served by fingerprint is verified against its model, never trusted.

The export cache finds a model's graph by a fingerprint of what ``forward`` reads
(:mod:`padiff_ir.exporters._cache`), and a later ``match`` on the same models reuses the
prepared pair of the previous one (:mod:`padiff_ir.pairing.kept`). A fingerprint cannot see
every change: a function held in a closure (``torch.tanh`` made ``torch.relu``), a
``functools.partial``'s arguments, a class attribute changed at run time, a helper fixed in
another file. Each check already compares every graph with its model's eager run
(:mod:`.culprits.fidelity`); here a side whose graph was *served* (not exported from the model
now) and does not reproduce its eager run has its cache entry dropped (memory and disk) and its
model exported afresh, and the check runs again before anything is reported. When the fresh
graph reproduces the model where the served one did not, the served one was stale: the result
says so (``MatchResult.stale_exports`` and a note). A fresh graph that still departs is the
exporter's doing (:mod:`.culprits.exporter_faults`).

Where a graph exported now departs (an exporter fault) is remembered on its cache entry
(:meth:`~padiff_ir.exporters.ExportCache.note_faults`): a served graph departing at exactly
those modules and nowhere else reproduces what a fresh export would give, and is not exported
again; one departing anywhere else too still is. The same mechanism verifies the graphs the
layer map is made on (:mod:`padiff_ir.pairing.served`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from padiff_ir.compare.match_result import ExportFidelity, MatchResult
from padiff_ir.exporters import ExportedGraph, export_cache
from padiff_ir.pairing import kept
from padiff_ir.pairing.pair import ModelPair
from padiff_ir.pairing.served import Sides, drop_served

__all__ = ["Sides", "stale_sides", "suspect_sides", "unfaithful", "verified"]

logger = logging.getLogger(__name__)

_LABELS = ("A", "B")


def unfaithful(report: ExportFidelity | None) -> bool:
    """Whether an export check's report says the graph departs from its eager run."""
    return report is not None and report.departs


def _suspect(exported: ExportedGraph, cached: bool, report: ExportFidelity | None) -> bool:
    if not cached or not unfaithful(report):
        return False
    assert report is not None
    known = export_cache.known_faults(exported.fingerprint) if exported.fingerprint else None
    return not known or _sites(report) != known  # an exporter fault alone: as fresh as it gets


def suspect_sides(prepared: ModelPair, result: MatchResult) -> Sides:
    """Per side: its graph was served by fingerprint and does not reproduce its model's eager
    run (it may be stale), other than exactly where a fresh export is known to depart."""
    fidelity = result.export_fidelity
    return (
        _suspect(prepared.exported_a, prepared.cached[0], fidelity.get("a")),
        _suspect(prepared.exported_b, prepared.cached[1], fidelity.get("b")),
    )


def remember_faults(prepared: ModelPair, result: MatchResult) -> None:
    """Note on the cache entry of each graph exported now where it departs from its model
    (nothing where it does not), for later checks of served graphs (:func:`suspect_sides`)."""
    exports = (prepared.exported_a, prepared.exported_b)
    for exported, cached, side in zip(exports, prepared.cached, "ab"):
        report = result.export_fidelity.get(side)
        if cached or not exported.fingerprint or report is None or not report.checked:
            continue
        export_cache.note_faults(exported.fingerprint, _sites(report))


def _sites(report: ExportFidelity) -> frozenset[str]:
    return frozenset(d.module for d in report.departures)


def stale_sides(served: MatchResult, fresh: MatchResult, suspects: Sides) -> tuple[str, ...]:
    """The suspect sides whose fresh export reproduces its model where the served graph did
    not, or departs elsewhere: the served graph was stale."""
    stale = []
    for index, side in enumerate("ab"):
        if not suspects[index]:
            continue
        no_check = ExportFidelity()
        before = served.export_fidelity.get(side, no_check)
        after = fresh.export_fidelity.get(side, no_check)
        if not unfaithful(after) or _sites(after) != _sites(before):
            stale.append(_LABELS[index])
    return tuple(stale)


def _drop_served(prepared: ModelPair, suspects: Sides) -> None:
    """Forget what served the suspect sides: their cache entries and the kept pair."""
    drop_served((prepared.exported_a, prepared.exported_b), suspects)
    if kept.is_kept(prepared):
        kept.forget()


def _mark_stale(result: MatchResult, stale: tuple[str, ...]) -> MatchResult:
    if not stale:
        return result
    result.stale_exports = stale
    sides = " and ".join(f"model {side}" for side in stale)
    result.notes.append(
        f"the cached export of {sides} was stale (it did not reproduce the model's eager "
        "run; the model changed in a way its fingerprint cannot see): the cache entry was "
        "dropped and the model exported again for this result"
    )
    return result


def verified(
    prepared: ModelPair,
    check: Callable[[ModelPair], MatchResult],
    prepare_fresh: Callable[[Sides], ModelPair],
    release: Callable[[ModelPair], None],
    explained: Callable[[ModelPair], bool] = lambda prepared: False,
) -> tuple[ModelPair, MatchResult]:
    """``check(prepared)``, and when a served graph does not reproduce its model, the check
    of a pair prepared with those sides exported afresh.

    Args:
        prepared: the pair to check first.
        check: one check of a prepared pair (same inputs, same eager runs each time).
        prepare_fresh: the pair prepared again, the sides flagged exported from the models.
        release: what to do with ``prepared`` when it is replaced (close its sessions).
        explained: whether something else explains why ``prepared``'s graphs depart from
            the models (their weights changed since): then nothing is exported again.

    Returns:
        the pair the result came from, and the result.
    """
    result = check(prepared)
    departs = any(unfaithful(report) for report in result.export_fidelity.values())
    if departs and explained(prepared):
        return prepared, result
    remember_faults(prepared, result)
    suspects = suspect_sides(prepared, result)
    if not any(suspects):
        return prepared, result
    logger.info(
        "match: the cached graph of %s does not reproduce its model: exporting it again",
        " and ".join(label for label, s in zip(_LABELS, suspects) if s),
    )
    _drop_served(prepared, suspects)
    release(prepared)
    fresh = prepare_fresh(suspects)
    fresh_result = check(fresh)
    remember_faults(fresh, fresh_result)
    return fresh, _mark_stale(fresh_result, stale_sides(result, fresh_result, suspects))
