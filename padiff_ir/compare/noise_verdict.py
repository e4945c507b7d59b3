"""A ``match`` result judged in units of measured noise (``tolerance="auto"``).

The comparison runs as with a fixed tolerance; then :func:`judged_by_noise` measures each
module's noise (:mod:`padiff_ir.compare.noise`) and judges the result again:

* the verdict: the model's outputs within their noise and no module's own error out of its
  own noise (a failure that is no number, a shape or a NaN where the other side has a value,
  stays a failure);
* the culprits: the innermost modules whose own error leaves their own noise
  (``diverged: `blocks.1.norm1` own error 2400x its noise``), explained by the settings that
  differ and by what the fixed-tolerance comparison found in their ops;
* accumulated drift: outputs out of their noise while no module's own error leaves its own.

The fixed-tolerance metrics stay in the result as measured; :attr:`MatchResult.noise` holds
the floors.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import replace

from padiff_ir._interrupts import reraise_interruption
from padiff_ir._paths import strictly_within
from padiff_ir.compare.eager import EagerRun
from padiff_ir.compare.match_result import (
    Culprit,
    ExporterFault,
    MatchResult,
    ModuleStatus,
    PairResult,
)
from padiff_ir.compare.noise import NoiseMeasurement, Side, epsilon_of, measure_noise
from padiff_ir.compare.noise_result import ModuleNoise, NoiseFloor, NoiseVerdict
from padiff_ir.compare.pairs import eager_output_index
from padiff_ir.errors import PadiffError
from padiff_ir.frameworks import get_framework
from padiff_ir.frameworks.inputs import ModelInputs
from padiff_ir.hints import Model
from padiff_ir.matching.types import ModulePair
from padiff_ir.pairing.noise_floor import times_noise

__all__ = ["judge", "judged_by_noise", "sentence"]

logger = logging.getLogger(__name__)

SettingsOf = Callable[[ModulePair], Iterable[str]]
"""The settings that differ between the two modules of a pair, in words."""


def judged_by_noise(
    result: MatchResult,
    side_a: tuple[Model, str, ModelInputs],
    side_b: tuple[Model, str, ModelInputs],
    memory_budget: int | None = None,
    recorded: tuple[EagerRun | None, EagerRun | None] = (None, None),
) -> MatchResult:
    """``result`` judged against the noise measured on the two models (each side ``(model,
    framework name, inputs)``, the inputs as the comparison fed them); ``result`` with a note
    saying why where the noise cannot be measured (an ONNX file).
    ``recorded``: the comparison's eager runs of A and B on those inputs, reused by the
    measurement where they recorded every module (:func:`measure_noise`)."""
    start = time.perf_counter()
    a, b = Side(*side_a), Side(*side_b)
    try:
        measurement = measure_noise(
            a,
            b,
            result.layer_map,
            memory_budget=memory_budget,
            recorded=recorded,
            output_order=_order(result),
        )
    except PadiffError as err:
        reraise_interruption(err)
        note = (
            f"tolerance='auto' could not measure the noise ({err}): judged with the fixed tolerance"
        )
        logger.info("%s", note)  # the default: a file's model is judged as before, noted
        return replace(result, notes=[*result.notes, note])
    judged = judge(result, measurement, lambda pair: _settings(pair, a, b))
    judged.timings = {**judged.timings, "noise": time.perf_counter() - start}
    return judged


def _order(result: MatchResult) -> tuple[int, ...]:
    """B's eager output paired with each of A's, as the comparison paired them (by key for
    outputs returned as a dict)."""
    order = [eager_output_index(pair.b[0]) if pair.b else None for pair in result.eager_outputs]
    return () if None in order else tuple(i for i in order if i is not None)


def _hard_failure(result: MatchResult) -> bool:
    """A failure no noise explains: shapes, NaN/Inf where the other side has a value."""
    return any(
        not pair.ok and pair.metrics.reason.startswith(("shape", "non-finite"))
        for pair in result.outputs
    )


def _graph_agrees(result: MatchResult, measurement: NoiseMeasurement) -> frozenset[str]:
    """The module pairs whose paired graph tensors agree within the modules' elementwise
    rounding: there the eager module calls (whose outputs the hooks see) are not what the
    matching paired (a BatchNorm whose ReLU the other side fuses), and the graph is believed."""
    epsilon = epsilon_of(measurement.dtype)
    floors = {m.module_a: m.output for m in measurement.modules if m.output is not None}
    return frozenset(
        m.a
        for m in result.modules
        if m.output is not None
        and m.a in floors
        and not m.output.reason.startswith(("shape", "non-finite"))
        and floors[m.a].within_peak(m.output.max_abs, measurement.multiplier, epsilon)
    )


def _statuses(
    modules: tuple[ModuleNoise, ...],
    fixed_culprits: frozenset[str] = frozenset(),
    agreeing: frozenset[str] = frozenset(),
) -> tuple[dict[str, ModuleStatus], tuple[str, ...]]:
    """Each module's status in units of noise, and the culprits (innermost). A module whose
    own noise could not be measured (B's module does not take the shadow's inputs alone) is
    a culprit where the fixed-tolerance comparison named it and its outputs leave their
    noise; a module whose graph tensors agree within rounding (``agreeing``) is ok."""
    leaving = {m.module_a for m in modules if m.own is not None and not m.own.ok}
    leaving |= {
        m.module_a
        for m in modules
        if m.own is None and m.module_a in fixed_culprits and (m.output is None or not m.output.ok)
    }
    culprits = tuple(
        m.module_a
        for m in modules
        if m.module_a in leaving and not any(strictly_within(o, m.module_a) for o in leaving)
    )
    statuses = {}
    for module in modules:
        site = module.module_a
        if site in agreeing:
            statuses[site] = ModuleStatus.OK
        elif module.output is None:
            statuses[site] = ModuleStatus.UNMEASURED
        elif module.output.ok:
            statuses[site] = ModuleStatus.OK
        elif site in culprits:
            statuses[site] = ModuleStatus.CULPRIT
        elif any(strictly_within(c, site) for c in culprits):
            statuses[site] = ModuleStatus.CONTAINS_CULPRIT
        elif module.own is None:
            statuses[site] = ModuleStatus.UNMEASURED
        else:
            statuses[site] = ModuleStatus.INHERITED
    return statuses, culprits


def sentence(verdict_ok: bool, measurement: NoiseMeasurement, culprits: tuple[str, ...]) -> str:
    """The verdict in units of noise, in words."""
    worst_output = max((f.ratio for f in measurement.outputs), default=0.0)
    worst_site, worst_ratio = "", 0.0
    for module in measurement.modules:
        if module.module_a and module.output is not None and module.output.ratio > worst_ratio:
            worst_site, worst_ratio = module.module_a, module.output.ratio
    if verdict_ok:
        if worst_output >= worst_ratio or not worst_site:
            return (
                f"aligned within numerical noise (worst {worst_output:.1f}x noise at the outputs)"
            )
        return f"aligned within numerical noise (worst {worst_ratio:.1f}x noise at `{worst_site}`)"
    if culprits:
        own = {m.module_a: m.own for m in measurement.modules}
        parts = [_culprit_words(c, own[c]) for c in culprits[:3]]
        more = f" and {len(culprits) - 3} more" if len(culprits) > 3 else ""
        return "diverged: " + "; ".join(parts) + more
    return (
        f"diverged by accumulated drift: every module within its own noise, the outputs at "
        f"{_times(worst_output, 'their noise')}"
    )


def _culprit_words(site: str, own: NoiseFloor | None) -> str:
    if own is None:
        return f"`{site}` differs by itself (its own noise not measured)"
    return f"`{site}` own error {_times(own.ratio)}"


_times = times_noise


def judge(result: MatchResult, measurement: NoiseMeasurement, settings: SettingsOf) -> MatchResult:
    """``result`` judged by ``measurement``; ``settings(ModulePair) -> list[str]`` names the
    settings that differ in a culprit."""
    fixed_culprits = _fixed_evidence(result, measurement.dtype)
    # a native fallback's module outputs are the eager calls themselves: no graph to believe
    agreeing = _graph_agrees(result, measurement) if result.fallback is None else frozenset()
    departing = {  # eager calls out of noise whose graph tensors agree: not what was paired
        m.module_a
        for m in measurement.modules
        if m.module_a in agreeing and m.output is not None and not m.output.ok
    }
    # pairs the comparison could not measure (no graph tensors, eager calls it did not pair)
    # are not judged eagerly either: a pairing of calls that differ in meaning is no culprit
    unmeasured = {m.a for m in result.modules if m.output is None}
    measurement = replace(
        measurement,
        modules=tuple(
            ModuleNoise(m.module_a, m.module_b) if m.module_a in departing | unmeasured else m
            for m in measurement.modules
        ),
    )
    statuses, culprit_sites = _statuses(measurement.modules, fixed_culprits, frozenset(departing))
    hard = _hard_failure(result)
    ok = all(f.ok for f in measurement.outputs) and not culprit_sites and not hard
    verdict = NoiseVerdict(
        method=measurement.method,
        dtype=measurement.dtype,
        multiplier=measurement.multiplier,
        outputs=measurement.outputs,
        modules=measurement.modules,
        culprits=culprit_sites,
        sentence=sentence(ok, measurement, culprit_sites) if not hard else "",
        seconds=measurement.seconds,
    )
    modules = [
        replace(m, status=statuses[m.a]) if m.a in statuses and not ok else m
        for m in result.modules
    ]
    if ok:
        modules = [replace(m, status=ModuleStatus.OK) if m.a in statuses else m for m in modules]
    culprits = [_culprit(site, result, verdict, settings) for site in culprit_sites]
    first = None if ok else _first_out_of_noise(result, measurement)
    faults, rounding = _exporter_faults(result, verdict)
    notes = list(result.notes)
    if departing:
        notes.append(
            f"tolerance='auto': the eager calls of {len(departing)} module pair(s) are not what "
            f"the graphs paired (their graph tensors agree within rounding): judged on the "
            f"graphs ({', '.join(sorted(departing)[:6])})"
        )
    if rounding:
        notes.append(
            f"tolerance='auto': {len(rounding)} exporter departure(s) within numerical noise "
            f"are no exporter fault ({', '.join(f.module or '<root>' for f in rounding[:6])})"
        )
    return replace(
        result,
        exporter_faults=faults,
        notes=notes,
        ok=ok,
        modules=modules,
        culprits=culprits if not hard else result.culprits,
        accumulated=not ok and not hard and not culprits,
        first_divergence=first,
        noise=verdict,
    )


def _first_out_of_noise(result: MatchResult, measurement: NoiseMeasurement) -> PairResult | None:
    """The first divergence under noise: the fixed tolerance's, where its bounds lie above the
    working dtype's rounding; else the first pair whose module's outputs leave their noise
    (atol 1e-5 on a bfloat16 model fails at the first op)."""
    if _fixed_meaningful(result, measurement.dtype):
        return result.first_divergence
    leaving = {m.module_a for m in measurement.modules if m.output is not None and not m.output.ok}
    for pair in result.pairs:
        if not pair.ok and pair.module_a in leaving:
            return pair
    return result.first_divergence


def _fixed_evidence(result: MatchResult, dtype: str) -> frozenset[str]:
    """The fixed-tolerance culprits that are evidence where a module's own noise could not be
    measured: none where the fixed bounds lie below the working dtype's rounding (atol 1e-5
    on a bfloat16 model names every module that computes anything)."""
    if not _fixed_meaningful(result, dtype):
        return frozenset()
    return frozenset(c.module_a for c in result.culprits)


def _fixed_meaningful(result: MatchResult, dtype: str) -> bool:
    """Whether the fixed bounds lie above the working dtype's rounding (atol 1e-5 on float32:
    yes; on bfloat16: no)."""
    return max(result.tolerance.atol, result.tolerance.rtol) >= epsilon_of(dtype)


def _exporter_faults(
    result: MatchResult, verdict: NoiseVerdict
) -> tuple[list[ExporterFault], list[ExporterFault]]:
    """The exporter faults that stay, and those that are rounding: a graph departing from its
    eager run by no more than its module's float rounding (an attribute the exporter wrote
    wrong always stays)."""
    kept: list[ExporterFault] = []
    rounding: list[ExporterFault] = []
    epsilon = epsilon_of(verdict.dtype)
    for fault in result.exporter_faults:
        pair = next(
            (
                p
                for p in result.layer_map
                if (p.site_a if fault.side == "A" else p.site_b) == fault.module
            ),
            None,
        )
        module = verdict.module(pair.site_a) if pair is not None else None
        floor = module.output if module is not None else None
        within = floor is not None and floor.within_peak(fault.max_abs, verdict.multiplier, epsilon)
        (rounding if within and not fault.attribute else kept).append(fault)
    return kept, rounding


def _culprit(
    site: str, result: MatchResult, verdict: NoiseVerdict, settings: SettingsOf
) -> Culprit:
    """The culprit at ``site``: the fixed-tolerance comparison's, where it named it, with its
    error in units of noise first."""
    module = verdict.module(site)
    assert module is not None  # culprits are measured modules
    own = module.own
    pair = next(p for p in result.layer_map if p.site_a == site)
    measured = next((m for m in result.modules if m.a == site), None)
    known = next((c for c in result.culprits if c.module_a == site), None)
    if own is None and known is not None:  # its own noise not measured: as the fixed one says
        return known
    assert own is not None
    noise_words = (
        f"{site or '<root>'} ({pair.class_a}) differs by itself: own error {_times(own.ratio)} "
        f"(RMSE {own.error:.3g} where A's own rounding is {own.noise:.3g})"
    )
    if known is not None:
        rest = known.explanation.split(". ", 1)
        explanation = noise_words + (". " + rest[1] if len(rest) > 1 else "")
        return replace(known, explanation=explanation)
    differ = list(settings(pair))
    explanation = noise_words + ("; settings differ: " + "; ".join(differ) if differ else "")
    return Culprit(
        module_a=site,
        module_b=pair.site_b,
        class_a=pair.class_a,
        class_b=pair.class_b,
        own_error=own.error,
        inherited_error=measured.inputs.max_abs if measured and measured.inputs else 0.0,
        output_error=module.output.error if module.output is not None else 0.0,
        attribute_diffs=measured.attribute_diffs if measured else (),
        param_diffs=measured.param_diffs if measured else (),
        setting_diffs=tuple(differ),
        explanation=explanation,
    )


def _settings(pair: ModulePair, side_a: Side, side_b: Side) -> list[str]:
    from padiff_ir.pairing.settings import layer_differences

    module_a = dict(get_framework(side_a.framework).named_modules(side_a.model)).get(pair.a)
    module_b = dict(get_framework(side_b.framework).named_modules(side_b.model)).get(pair.b)
    if module_a is None or module_b is None:
        return []
    label = pair.site_a if pair.site_a == pair.site_b else f"{pair.site_a} / {pair.site_b}"
    return layer_differences(label, module_a, module_b, side_a.framework, side_b.framework)
