"""Statuses, verdicts and stages are str enums: equal to the old strings, plain strings in JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from padiff_ir._result import Verdict
from padiff_ir.compare import MatchOptions, MatchResult, ModuleResult, Tolerance, compare_arrays
from padiff_ir.compare.match_result import ModuleStatus
from padiff_ir.pairing.stages import Stage, StageTimer


def _module(status: ModuleStatus | str) -> ModuleResult:
    metrics = compare_arrays(np.ones(3), np.zeros(3))
    return ModuleResult(
        a="block",
        b="block",
        class_a="Block",
        class_b="Block",
        output=metrics,
        own=metrics,
        status=status,
        depth=1,
    )


def test_module_status_is_its_string():
    assert ModuleStatus.CONTAINS_CULPRIT == "contains-culprit"
    assert f"{ModuleStatus.CULPRIT}" == "culprit" and str(ModuleStatus.OK) == "ok"
    assert _module("culprit").status is ModuleStatus.CULPRIT  # an old string still works


def test_match_result_round_trips_with_enum_statuses(tmp_path):
    result = MatchResult(
        ok=False,
        tolerance=Tolerance(),
        modules=[_module(ModuleStatus.CULPRIT)],
        timings={Stage.EXPORT.value: 1.5},
    )
    path = tmp_path / "result.json"
    result.to_json(path)
    data = json.loads(path.read_text())
    assert data["modules"][0]["status"] == "culprit"
    assert type(data["modules"][0]["status"]) is str
    loaded = MatchResult.load(path)
    assert loaded == result
    assert loaded.modules[0].status is ModuleStatus.CULPRIT
    assert loaded.timings == {"export": 1.5}
    assert "CULPRIT" in str(loaded)
    assert repr(loaded).startswith("MatchResult(diverged,")


def test_verdict_of():
    assert Verdict.of(True) == "aligned" and Verdict.of(False) is Verdict.DIVERGED


def test_stage_timer_keys_are_plain_strings_and_progress_hears_each_stage():
    heard: list[str] = []
    timer = StageTimer(heard.append)
    with timer.stage(Stage.RUN):
        pass
    with timer.stage(Stage.RUN):
        pass
    assert list(timer.timings) == ["run"]
    assert type(next(iter(timer.timings))) is str
    assert heard == [Stage.RUN.message + " ..."] * 2


def test_match_options_validate_and_build_tolerances():
    options = MatchOptions(atol=1e-3, compare_mode="mean", tolerances={"y": {"rtol": 0.5}})
    assert options.tolerance == Tolerance(atol=1e-3, rtol=1e-5, mode="mean")
    assert options.overrides == {"y": Tolerance(atol=1e-3, rtol=0.5, mode="mean")}
    assert options.providers == ("CPUExecutionProvider",)
    with pytest.raises(ValueError, match="compare mode"):
        MatchOptions(compare_mode="max")
