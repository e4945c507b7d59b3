"""What a match result says, derived once: the facts the terminal summary and the report word.

:func:`facts` reads a :class:`~padiff_ir.compare.match_result.MatchResult` and returns
:class:`MatchFacts`: the verdict, the counts, the outputs, the export checks, the layouts in
words, why there is no culprit. ``str(result)`` (:mod:`padiff_ir.compare.match_summary`) and
the HTML report (:mod:`padiff_ir.report.view`) both render from it, each in its own words.

Example:
    >>> from padiff_ir.compare.match_result import MatchResult
    >>> from padiff_ir.metrics import Tolerance
    >>> found = facts(MatchResult(ok=True, tolerance=Tolerance()))
    >>> str(found.verdict), found.no_culprit, found.failing_pairs
    ('aligned', <NoCulprit.AGREE: 'agree'>, 0)
"""

from __future__ import annotations

from dataclasses import dataclass

from padiff_ir._result import TextEnum, Verdict
from padiff_ir.compare.match_result import (
    Culprit,
    ExporterFault,
    ExportFidelity,
    Fallback,
    MatchResult,
    ModelInfo,
    PairResult,
)
from padiff_ir.compare.noise_result import NoiseVerdict
from padiff_ir.matching.transform_types import ArrayTransform, Transform
from padiff_ir.metrics import Tolerance

__all__ = ["MatchFacts", "NoCulprit", "facts", "layout_text"]


class NoCulprit(TextEnum):
    """Why a result names no culprit."""

    AGREE = "agree"
    """the models agree"""
    ACCUMULATED = "accumulated"
    """no module differs by itself beyond tolerance: rounding accumulated"""
    UNMEASURED = "unmeasured"
    """the outputs differ, and no module's own error was measured or fails"""


@dataclass(frozen=True)
class MatchFacts:
    """The facts of one match result (see :func:`facts`).

    Attributes:
        ok / verdict: the verdict.
        model_a / model_b: the two models.
        tolerance / overrides: the tolerance used, and per tensor of A.
        tensor_pairs / failing_pairs / not_comparable: pairs compared, failing, kept out of
            the verdict because their sides are laid out differently.
        module_pairs: pairs of the layer map.
        unmatched / unmatched_ops: what stayed unmatched, and how many of those are ops or
            tensors (not modules).
        outputs / eager_outputs: the final outputs compared, on the graphs and on the eager
            runs.
        exports: per side (``"a"``, ``"b"``, sorted) its export check, where checked.
        stale_exports / exporter_faults: as in the result.
        layouts: each discovered parameter layout, ``(kind of group, in words)``.
        fallback: which model could not be exported (``None``: none).
        first_divergence / culprits: as in the result.
        no_culprit: why there is no culprit (``None`` when there are culprits).
        notes: the result's remarks.
    """

    ok: bool
    verdict: Verdict
    model_a: ModelInfo
    model_b: ModelInfo
    tolerance: Tolerance
    overrides: tuple[tuple[str, Tolerance], ...]
    tensor_pairs: int
    failing_pairs: int
    not_comparable: int
    module_pairs: int
    unmatched: int
    unmatched_ops: int
    outputs: tuple[PairResult, ...]
    eager_outputs: tuple[PairResult, ...]
    exports: tuple[tuple[str, ExportFidelity], ...]
    stale_exports: tuple[str, ...]
    exporter_faults: tuple[ExporterFault, ...]
    layouts: tuple[tuple[str, str], ...]
    fallback: Fallback | None
    first_divergence: PairResult | None
    culprits: tuple[Culprit, ...]
    no_culprit: NoCulprit | None
    notes: tuple[str, ...]
    noise: NoiseVerdict | None = None

    def models(self) -> str:
        """``torch Net (A) vs paddle Net (B)``."""
        return f"{self.model_a.label('A')} vs {self.model_b.label('B')}"


def layout_text(transform: Transform) -> str:
    """A discovered layout (a layer map's entry) in words: ``fused_order(order=[1, 0])``,
    ``offset -1.0``, or a registered transform's name."""
    if not isinstance(transform, ArrayTransform):
        return transform.describe()
    if transform.layout is not None:
        return transform.layout.describe()
    return f"offset {transform.offset}"


def _no_culprit(result: MatchResult) -> NoCulprit | None:
    if result.culprits:
        return None
    if result.accumulated:
        return NoCulprit.ACCUMULATED
    return NoCulprit.AGREE if result.ok else NoCulprit.UNMEASURED


def facts(result: MatchResult) -> MatchFacts:
    """The facts of ``result``, derived once for every rendering of it."""
    return MatchFacts(
        ok=result.ok,
        verdict=Verdict.of(result.ok),
        model_a=result.model_a,
        model_b=result.model_b,
        tolerance=result.tolerance,
        overrides=tuple(result.overrides.items()),
        tensor_pairs=len(result.pairs),
        failing_pairs=sum(1 for p in result.pairs if not p.metrics.ok),
        not_comparable=sum(1 for p in result.pairs if p.not_comparable),
        module_pairs=len(result.layer_map),
        unmatched=len(result.unmatched),
        unmatched_ops=sum(1 for u in result.unmatched if u.kind != "module"),
        outputs=tuple(result.outputs),
        eager_outputs=tuple(result.eager_outputs),
        exports=tuple(
            (side, report)
            for side, report in sorted(result.export_fidelity.items())
            if report.checked
        ),
        stale_exports=tuple(result.stale_exports),
        exporter_faults=tuple(result.exporter_faults),
        layouts=tuple((kind, layout_text(t)) for kind, t in result.layouts.items()),
        fallback=result.fallback,
        first_divergence=result.first_divergence,
        culprits=tuple(result.culprits),
        no_culprit=_no_culprit(result),
        notes=tuple(result.notes),
        noise=result.noise,
    )
