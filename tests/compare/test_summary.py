"""The terminal summary (``str(result)``): as wide as the terminal, each culprit explained."""

from __future__ import annotations

import dataclasses

import pytest

import padiff_ir
from padiff_ir.compare import MatchResult
from padiff_ir.compare.match_summary import render_summary, terminal_width
from padiff_ir.zoo import get_pair


@pytest.fixture(scope="module")
def bn_bug():
    """The tiny CNN with the paddle side's second BatchNorm epsilon at 0.5."""
    pair = get_pair("cnn")
    pair.paddle_model.bn2._epsilon = 0.5
    return padiff_ir.match(pair.torch_model, pair.paddle_model, pair.inputs)


def _table_lines(text: str) -> list[str]:
    """The lines of the module tree and of the worst-pairs table (from their headers on)."""
    lines = text.splitlines()
    tables: list[str] = []
    for header in ("module (A)", "worst pairs"):
        start = next(i for i, line in enumerate(lines) if line.startswith(header))
        end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
        tables.extend(lines[start:end])
    return tables


def test_each_culprit_line_is_followed_by_its_explanation(bn_bug, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    (culprit,) = bn_bug.culprits
    assert culprit.explanation.startswith("bn2 (BatchNorm2d) differs by itself")
    lines = str(bn_bug).splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("culprit: bn2 (BatchNorm2d)"))
    under = " ".join(line.strip() for line in lines[at + 1 : at + 4])
    # the own error in units of its measured noise (the default, tolerance="auto")
    assert under.startswith("bn2 (BatchNorm2d) differs by itself: own error ")
    assert "x its noise (RMSE 0.1" in under
    assert "attributes differ: BatchNormalization epsilon 1e-05 vs 0.5" in under
    assert all(line.startswith("    ") for line in lines[at + 1 : at + 3])


def test_differences_the_explanation_does_not_say_are_listed(bn_bug, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    culprit = dataclasses.replace(
        bn_bug.culprits[0],
        explanation="a note of the culprit",
        param_diffs=("weight differs: max abs 0.25",),
    )
    result = dataclasses.replace(bn_bug, culprits=[culprit])
    lines = str(result).splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("culprit: bn2"))
    assert lines[at + 1 : at + 5] == [
        "    a note of the culprit",
        "    setting: BatchNorm2d epsilon 1e-05 in model A (torch) vs 0.5 in model B (paddle)",
        "    attribute: BatchNormalization epsilon 1e-05 vs 0.5",
        "    parameter: weight differs: max abs 0.25",
    ]


@pytest.mark.parametrize("columns", [60, 80, 100, 150])
def test_the_summary_follows_the_terminal_width(bn_bug, monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", str(columns))
    assert terminal_width() == columns
    text = str(bn_bug)
    tables = _table_lines(text)
    assert len(tables) >= 12
    assert max(len(line) for line in tables) == columns - 1  # the name columns take the room
    for line in text.splitlines()[1:]:  # the verdict line stays whole for ``-q``
        assert len(line) <= columns or " " not in line.strip(), line
    assert "bn2 (BatchNorm2d) differs by itself" in " ".join(text.split())


def test_never_narrower_than_60_columns(bn_bug, monkeypatch):
    monkeypatch.setenv("COLUMNS", "30")
    assert terminal_width() == 60
    assert max(len(line) for line in _table_lines(str(bn_bug))) == 59
    assert str(bn_bug) == render_summary(bn_bug, width=60)


def test_the_summary_of_a_loaded_result_explains_the_culprit(bn_bug, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    bn_bug.to_json(tmp_path / "result.json")
    loaded = MatchResult.load(tmp_path / "result.json")
    assert str(loaded) == str(bn_bug)
    assert "BatchNormalization epsilon 1e-05 vs 0.5" in " ".join(str(loaded).split())
    assert "BatchNorm2d epsilon 1e-05 in model A (torch) vs 0.5" in " ".join(str(loaded).split())
