"""The command line's contract: exit code 0 aligned, 1 diverged, 2 any error (one line on
stderr, ``--traceback`` for the details), whatever goes wrong and wherever."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from padiff_ir.cli import EXIT_DIVERGED, EXIT_ERROR, EXIT_OK, main

TORCH_LOG = "tests.reliability.models:TorchLog"
PADDLE_LOG = "tests.reliability.models:PaddleLog"
SHAPE = ["--input-shape", "x=2,4"]


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("padiff-ir: error: ")]
    assert len(lines) == 1, err
    return lines[0]


ERROR_CASES = [
    ("no command", [], "required: command"),
    ("unknown command", ["frobnicate"], "invalid choice"),
    ("compare one model", ["compare", "zoo:mlp:torch"], "required: model_b"),
    (
        "atol not a number",
        ["compare", "zoo:mlp:torch", "zoo:mlp:paddle", "--atol", "abc"],
        "invalid float value",
    ),
    (
        "unknown mode",
        ["compare", "zoo:mlp:torch", "zoo:mlp:paddle", "--mode", "median"],
        "invalid choice",
    ),
    ("export without output", ["export", "zoo:mlp:torch"], "required: -o/--output"),
]


@pytest.mark.parametrize(("label", "argv", "words"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_bad_command_lines_exit_2(capsys, guard, label, argv, words):
    assert main(argv) == EXIT_ERROR
    assert words in capsys.readouterr().err


FAILING_RUNS = [
    ("atol nan", ["--atol", "nan"], "atol must be finite"),
    ("atol negative", ["--atol", "-1"], "atol must be finite and must be >= 0"),
    ("rtol inf", ["--rtol", "inf"], "rtol must be finite"),
    (
        "json in missing folder",
        ["--json", "{tmp}/missing/result.json"],
        "the folder {tmp}/missing does not exist",
    ),
    ("html is a folder", ["--html", "{tmp}"], "is a folder"),
    ("layer map missing", ["--layer-map", "{tmp}/missing.json"], "no such file"),
    ("layer map corrupt", ["--layer-map", "{tmp}/corrupt.json"], "is not valid JSON"),
    (
        "layer map bad path",
        ["--layer-map", "{tmp}/wrong.json"],
        "'nope' is not a module of model A",
    ),
    ("inputs missing", ["--inputs", "{tmp}/missing.npz"], "not an .npz file"),
    ("inputs not npz", ["--inputs", "{tmp}/corrupt.json"], "not an .npz file"),
    ("inputs one array", ["--inputs", "{tmp}/one.npy"], "not an .npz file"),
]


@pytest.fixture
def files(tmp_path):
    (tmp_path / "corrupt.json").write_text("{bad", encoding="utf-8")
    (tmp_path / "wrong.json").write_text('{"pairs": {"nope": "fc"}}', encoding="utf-8")
    np.save(tmp_path / "one.npy", np.zeros((2, 4), np.float32))
    return tmp_path


@pytest.mark.parametrize(
    ("label", "extra", "words"), FAILING_RUNS, ids=[c[0] for c in FAILING_RUNS]
)
def test_errors_before_the_run_exit_2_with_one_line(capsys, guard, files, label, extra, words):
    tmp = str(files)
    argv = ["compare", TORCH_LOG, PADDLE_LOG, *SHAPE, *[a.format(tmp=tmp) for a in extra]]
    assert main(argv) == EXIT_ERROR
    err = capsys.readouterr().err
    assert _error_line(err)
    assert words.format(tmp=tmp) in err
    assert "exporting" not in err  # failed before the slow part


MODEL_SPECS = [
    ("missing module", "no_such_module_xyz:factory", "cannot import 'no_such_module_xyz'"),
    ("missing attribute", "tests.reliability.models:Nope", "has no attribute 'Nope'"),
    (
        "factory raises",
        "tests.reliability.models:broken_factory",
        "calling tests.reliability.models:broken_factory to build the model failed: "
        "RuntimeError: the factory is broken",
    ),
    ("not a model", "tests.reliability.models:NOT_A_MODEL", "gives a int, not a torch"),
    ("no factory", "tests.reliability.models:", "both parts"),
    ("no colon", "model", "cannot read the model specification 'model'"),
    ("missing onnx", "/nonexistent/model.onnx", "does not exist"),
    ("zoo name", "zoo:nope", "the zoo has no model 'nope'"),
    ("zoo side", "zoo:mlp:jax", "zoo side must be 'torch' or 'paddle'"),
]


@pytest.mark.parametrize(("label", "spec", "words"), MODEL_SPECS, ids=[c[0] for c in MODEL_SPECS])
def test_bad_model_specs_exit_2_with_one_line(capsys, guard, label, spec, words):
    assert main(["compare", TORCH_LOG, spec, *SHAPE]) == EXIT_ERROR
    assert words in _error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("shape", "words"),
    [
        ("x=a,b", "no integer"),
        ("x=2,-4", "negative dimension"),
        ("x=2,4:floaty", "no dtype"),
        ("2,4", "must look like NAME=D0,D1"),
    ],
    ids=["letters", "negative", "dtype", "no name"],
)
def test_bad_input_shapes_exit_2(capsys, guard, shape, words):
    assert main(["compare", TORCH_LOG, PADDLE_LOG, "--input-shape", shape]) == EXIT_ERROR
    assert words in _error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["report", "{tmp}/missing.json"], "cannot read result file"),
        (["report", "{tmp}/corrupt.json"], "is not JSON"),
        (
            ["export", "zoo:mlp:torch", "-o", "{tmp}/m.onnx", "--opset", "3"],
            "opset must be an ONNX opset from 7 to",
        ),
    ],
    ids=["report missing", "report corrupt", "export opset"],
)
def test_other_commands_exit_2_with_one_line(capsys, guard, files, argv, words):
    assert main([a.format(tmp=files) for a in argv]) == EXIT_ERROR
    assert words in _error_line(capsys.readouterr().err)


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        from padiff_ir.cli import _build_parser

        _build_parser().parse_args(["--version"])
    assert info.value.code == 0
    assert main(["--version"]) == EXIT_OK
    assert capsys.readouterr().out.startswith("padiff-ir 0.")


def test_aligned_exits_0_and_quiet_prints_only_the_verdict(capsys, guard):
    assert main(["compare", TORCH_LOG, PADDLE_LOG, *SHAPE, "-q"]) == EXIT_OK
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        "padiff-ir: ALIGNED: torch TorchLog (A) vs paddle PaddleLog (B)"
    ]
    assert captured.err == ""


def test_diverged_exits_1(capsys, guard):
    spec_b = "tests.reliability.models:paddle_log_bugged"
    assert main(["compare", TORCH_LOG, spec_b, *SHAPE]) == EXIT_DIVERGED
    out = capsys.readouterr().out
    assert "DIVERGED" in out and "culprit: fc" in out


def test_json_to_stdout_is_strict_json(capsys, guard):
    assert main(["compare", TORCH_LOG, PADDLE_LOG, *SHAPE, "--json", "-"]) == EXIT_OK
    captured = capsys.readouterr()
    data = json.loads(captured.out, parse_constant=lambda c: pytest.fail(f"bare {c}"))
    assert data["kind"] == "match" and data["ok"] is True
    assert "ALIGNED" in captured.err  # the summary goes to stderr


def test_a_file_that_cannot_be_written_exits_2_with_one_line(capsys, guard):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    argv = ["compare", TORCH_LOG, PADDLE_LOG, *SHAPE, "-q", "--html", "/dev/full"]
    assert main(argv) == EXIT_ERROR
    captured = capsys.readouterr()
    assert "ALIGNED" not in captured.out  # no verdict printed before the error
    assert _error_line(captured.err) == (
        "padiff-ir: error: OSError: [Errno 28] No space left on "
        "device (rerun with --traceback for details)"
    )
    assert main([*argv, "--traceback"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert _error_line(err) == "padiff-ir: error: OSError: [Errno 28] No space left on device"


def test_python_dash_m_padiff_ir_is_the_command(guard):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    version = subprocess.run(
        [sys.executable, "-m", "padiff_ir", "--version"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert version.returncode == EXIT_OK
    assert version.stdout.startswith("padiff-ir 0.")
    error = subprocess.run(
        [sys.executable, "-m", "padiff_ir", "compare", "zoo:nope", "zoo:mlp:paddle"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert error.returncode == EXIT_ERROR
    assert _error_line(error.stderr).startswith("padiff-ir: error: the zoo has no model 'nope'")


def test_the_installed_script_runs_a_comparison(guard, tmp_path):
    script = Path(sys.executable).parent / "padiff-ir"
    if not script.exists():
        pytest.skip("padiff-ir is not installed in this environment (pip install -e .)")
    version = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, check=False
    )
    assert version.returncode == EXIT_OK and version.stdout.startswith("padiff-ir 0.")
    out = tmp_path / "result.json"
    run = subprocess.run(
        [str(script), "compare", "zoo:mlp:torch", "zoo:mlp:paddle", "-q", "--json", str(out)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert run.returncode == EXIT_OK, run.stderr
    assert json.loads(out.read_text(encoding="utf-8"))["ok"] is True
