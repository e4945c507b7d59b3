"""``padiff-ir compare a.onnx b.onnx``: the inputs are read from the files (names, fixed shapes,
dtypes), ``--seed`` and ``--input-range`` shape the generated values, and every input that
cannot be made is a one-line error (exit 2) naming the input."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

import padiff_ir
from padiff_ir._models import (
    InputSpec,
    onnx_input_specs,
    parse_input_specs,
    random_inputs,
    resolve_onnx_inputs,
)
from padiff_ir.cli import EXIT_DIVERGED, EXIT_ERROR, EXIT_OK, main
from padiff_ir.errors import InputError, OptionError
from padiff_ir.zoo import get_pair


@pytest.fixture(scope="module")
def cnn_files(tmp_path_factory):
    """The zoo's tiny CNN exported from both sides, a paddle one with a BatchNorm epsilon bug,
    and the torch file with a dynamic batch dimension."""
    folder = tmp_path_factory.mktemp("onnx_inputs")
    pair = get_pair("cnn")
    paths = {
        name: str(folder / f"cnn_{name}.onnx")
        for name in ("torch", "paddle", "paddle_bug", "torch_dynamic")
    }
    padiff_ir.export(pair.torch_model, pair.inputs).save(paths["torch"])
    padiff_ir.export(pair.paddle_model, pair.inputs).save(paths["paddle"])
    bugged = get_pair("cnn").paddle_model
    bugged.bn2._epsilon = 0.5
    padiff_ir.export(bugged, pair.inputs).save(paths["paddle_bug"])
    model = onnx.load(paths["torch"])
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    onnx.save(model, paths["torch_dynamic"])
    return paths


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("padiff-ir: error: ")]
    assert len(lines) == 1, err
    return lines[0]


def test_the_file_declares_names_shapes_and_dtypes(cnn_files):
    (spec,) = onnx_input_specs(cnn_files["torch"])
    assert (spec.name, spec.shape, spec.dtype) == ("x", (2, 3, 32, 32), "float32")
    (dynamic,) = onnx_input_specs(cnn_files["torch_dynamic"])
    assert dynamic.shape == ("batch", 3, 32, 32)


def test_two_onnx_files_compare_without_input_shape(cnn_files, capsys, guard):
    code = main(["compare", cnn_files["torch"], cnn_files["paddle"]])
    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    assert captured.out.startswith("padiff-ir: ALIGNED: torch Cnn (A) vs paddle Cnn (B)")


def test_a_dynamic_dim_without_input_shape_names_the_input_and_the_dim(cnn_files, capsys, guard):
    code = main(["compare", cnn_files["torch_dynamic"], cnn_files["paddle"]])
    line = _error_line(capsys.readouterr().err)
    assert code == EXIT_ERROR
    assert "input 'x' of" in line and "dynamic dimension 0 ('batch'" in line
    assert "--input-shape x=D0,D1,..." in line


def test_input_shape_fixes_the_dynamic_dim(cnn_files, capsys, guard):
    code = main(
        ["compare", cnn_files["torch_dynamic"], cnn_files["paddle"], "--input-shape", "x=2,3,32,32"]
    )
    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    assert "ALIGNED" in captured.out


def test_input_shape_of_an_input_the_model_lacks_lists_its_inputs(cnn_files, capsys, guard):
    code = main(
        ["compare", cnn_files["torch"], cnn_files["paddle"], "--input-shape", "image=2,3,32,32"]
    )
    err = capsys.readouterr().err
    assert code == EXIT_ERROR
    assert "has no input 'image'; its inputs are: x [2, 3, 32, 32]" in _error_line(err)
    assert "exporting" not in err


def _diverged_output(cnn_files, capsys, tmp_path, *extra: str) -> float:
    out = tmp_path / f"result{len(list(tmp_path.iterdir()))}.json"
    code = main(
        ["compare", cnn_files["torch"], cnn_files["paddle_bug"], "-q", "--json", str(out), *extra]
    )
    captured = capsys.readouterr()
    assert code == EXIT_DIVERGED, captured.err
    assert captured.out.startswith("padiff-ir: DIVERGED")
    return json.loads(out.read_text())["outputs"][0]["metrics"]["max_abs"]


def test_seed_and_range_choose_the_generated_inputs(cnn_files, capsys, tmp_path, guard):
    default = _diverged_output(cnn_files, capsys, tmp_path)
    assert _diverged_output(cnn_files, capsys, tmp_path, "--seed", "0") == default
    seeded = _diverged_output(cnn_files, capsys, tmp_path, "--seed", "7")
    assert seeded != default
    assert _diverged_output(cnn_files, capsys, tmp_path, "--seed", "7") == seeded
    ranged = _diverged_output(cnn_files, capsys, tmp_path, "--input-range=-3,3")
    assert ranged not in (default, seeded)


BAD_RANGES = ["1,1", "2,1", "a,b", "nan,1", "0,inf", "5"]


@pytest.mark.parametrize("text", BAD_RANGES)
def test_a_bad_input_range_is_an_error_before_the_run(cnn_files, capsys, guard, text):
    code = main(["compare", cnn_files["torch"], cnn_files["paddle"], f"--input-range={text}"])
    err = capsys.readouterr().err
    assert code == EXIT_ERROR
    assert f"--input-range {text!r}: give two finite numbers LOW,HIGH with LOW < HIGH" in (
        _error_line(err)
    )
    assert "exporting" not in err


def test_a_missing_onnx_file_is_named(tmp_path, capsys, guard):
    missing = str(tmp_path / "missing.onnx")
    assert main(["compare", missing, missing]) == EXIT_ERROR
    assert f"ONNX file {missing!r} does not exist" in _error_line(capsys.readouterr().err)


def test_generated_values_stay_in_the_range(cnn_files):
    specs = [*resolve_onnx_inputs(cnn_files["torch"], []), InputSpec("ids", (4, 50), "int64")]
    arrays = random_inputs(specs, seed=3, value_range=(-2.0, 5.0))
    assert arrays["x"].dtype == np.float32 and arrays["x"].shape == (2, 3, 32, 32)
    assert arrays["x"].min() >= -2.0 and arrays["x"].max() < 5.0
    assert arrays["ids"].dtype == np.int64
    assert set(np.unique(arrays["ids"])) == set(range(-2, 5))  # ints in [low, high)
    again = random_inputs(specs, seed=3, value_range=(-2.0, 5.0))
    assert all(np.array_equal(arrays[k], again[k]) for k in arrays)
    default = random_inputs(specs, seed=3)
    assert set(np.unique(default["ids"])) == {0, 1}  # the former behaviour without a range


def test_an_int_input_with_a_range_holding_no_integer_is_an_option_error():
    with pytest.raises(OptionError, match="holds no integer for the int64 input 'ids'"):
        random_inputs([InputSpec("ids", (2,), "int64")], value_range=(0.2, 0.7))


def test_the_files_dtype_is_kept_when_input_shape_gives_none(cnn_files):
    (spec,) = resolve_onnx_inputs(cnn_files["torch_dynamic"], _specs("x=5,3,32,32"))
    assert (spec.shape, spec.dtype) == ((5, 3, 32, 32), "float32")
    with pytest.raises(InputError, match="its inputs are: x \\[batch, 3, 32, 32\\]"):
        resolve_onnx_inputs(cnn_files["torch_dynamic"], _specs("y=1"))


def _specs(*texts: str) -> list[InputSpec]:
    return parse_input_specs(list(texts))
