"""Terminal output with rich: colours only when asked (a terminal without NO_COLOR), plain and
deterministic text otherwise; the CLI's progress as rich rows on a terminal, lines elsewhere."""

from __future__ import annotations

import io
import os
import re
import select
import time

import pytest

from padiff_ir._console import ProgressDisplay
from padiff_ir._terminal import Column, render, table, wants_color
from padiff_ir.compare import MatchResult
from padiff_ir.compare.match_summary import render_summary
from tests.report._results import synthetic_result

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def terminal():
    """A real pseudo-terminal: ``(writer, read)``, ``read()`` what reached the screen so far."""
    master, slave = os.openpty()
    writer = open(slave, "w", encoding="utf-8", closefd=True)  # noqa: SIM115

    def read() -> str:
        chunks = []
        while select.select([master], [], [], 0.2)[0]:
            chunks.append(os.read(master, 65536))
        return b"".join(chunks).decode("utf-8", "replace")

    yield writer, read
    writer.close()
    os.close(master)


def test_colour_only_on_a_terminal_without_no_color(terminal, monkeypatch):
    writer, _ = terminal
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert wants_color(writer)
    assert not wants_color(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not wants_color(writer)
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("TERM", "dumb")
    assert not wants_color(writer)


def test_tables_are_exactly_as_wide_as_asked_and_cut_long_cells():
    columns = (Column("name", width=4, flexible=True), Column("value", width=5, justify="right"))
    rows = [("a" * 40, "1.0"), ("b", ("2.5", "bold red"))]
    text = render([table(columns, rows, 30)], 31)
    lines = text.splitlines()
    assert [len(line) for line in lines] == [30, 30, 30]
    assert lines[1].startswith("a" * 20) and "…" in lines[1] and lines[1].endswith("1.0")
    assert "\x1b[" not in text
    coloured = render([table(columns, rows, 30)], 31, color=True)
    assert "\x1b[" in coloured and ANSI.sub("", coloured) == text


def test_the_coloured_summary_is_the_plain_one_with_colours(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    result = _diverged_result()
    plain = render_summary(result, width=100)
    coloured = result.summary(width=100, color=True)
    assert str(result) == plain == result.summary()
    assert "\x1b[" not in plain and "\x1b[" in coloured
    assert ANSI.sub("", coloured) == plain
    assert "CULPRIT" in plain and plain.splitlines()[0].startswith("padiff-ir: DIVERGED")


def test_a_narrow_summary_wraps_the_stage_times_and_keeps_every_stage():
    from dataclasses import replace

    stages = {"eager": 0.01, "export": 2.17, "ir": 0.0, "match": 0.0, "run": 0.03}
    stages |= {"compare": 0.0, "localize": 0.0, "fidelity": 0.004}
    result = replace(_diverged_result(), timings=stages)
    text = render_summary(result, width=60)
    timing = text[text.index("time 2.2s:") :]
    assert all(len(each) <= 60 for each in timing.splitlines()) and timing.count("\n") >= 2
    assert all(
        f"{stage} {seconds:.2f}s" in " ".join(timing.split()) for stage, seconds in stages.items()
    )


def _diverged_result() -> MatchResult:
    """A small diverged result made from data (no model runs): one culprit, three blocks."""
    return MatchResult.from_dict(synthetic_result(blocks=3, ops_per_block=4))


def test_progress_off_a_terminal_is_plain_lines():
    stream = io.StringIO()
    with ProgressDisplay(stream) as progress:
        progress("exporting both models to ONNX ...")
        progress("batch 1/2")
        progress("running both graphs with every intermediate ...")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "padiff-ir: exporting both models to ONNX ..."
    assert lines[1] == "padiff-ir: batch 1/2"
    assert lines[2].startswith("padiff-ir:   done in ")
    assert lines[3] == "padiff-ir: running both graphs with every intermediate ..."
    assert lines[-1].startswith("padiff-ir:   done in ")
    quiet = io.StringIO()
    with ProgressDisplay(quiet, quiet=True) as progress:
        progress("exporting both models to ONNX ...")
    assert quiet.getvalue() == ""


def test_progress_on_a_terminal_is_rich_rows_with_a_bar_per_batch(terminal, monkeypatch):
    writer, read = terminal
    monkeypatch.setenv("TERM", "xterm")
    display = ProgressDisplay(writer)
    assert display.live
    display("exporting both models to ONNX ...")
    display("batch 1/3")
    display("batch 2/3")
    time.sleep(0.2)
    display("comparing matched tensors ...")
    display.close()
    writer.flush()
    screen = ANSI.sub("", read())
    assert "exporting both models to ONNX" in screen
    assert "comparing matched tensors" in screen
    assert "batch 2/3" in screen and "━" in screen  # the batch bar
    assert "padiff-ir:" not in screen  # rows, not the plain lines
    assert "done" in screen  # finished stages say so
