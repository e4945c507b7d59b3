"""The bad-input matrix: every bad argument of the public API ends in a typed error whose
message names the problem (or in the right verdict), and leaves the models, the global RNG
states and the temporary folder as they were.

Cases that fail before any export run in milliseconds; the few that run a whole comparison
use the zoo's tiny MLP.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import padiff_ir
from padiff_ir import (
    FileFormatError,
    InputError,
    MatchError,
    ModelTypeError,
    OptionError,
    ReportError,
    UnknownModelError,
    WeightAssignError,
)
from padiff_ir.errors import AutoDiffError

NAN, INF = float("nan"), float("inf")

# -- match: options, checked before anything runs ------------------------------------------

OPTION_CASES = [
    ({"atol": NAN}, "atol", "finite"),
    ({"atol": INF}, "atol", "finite"),
    ({"atol": -1.0}, "atol", ">= 0"),
    ({"atol": -1e-9}, "atol", ">= 0"),
    ({"atol": "small"}, "atol", "must be a number"),
    ({"atol": "1e-5"}, "atol", "must be a number"),
    ({"atol": True}, "atol", "must be a number"),
    ({"atol": [1e-5]}, "atol", "must be a number"),
    ({"atol": 1 + 2j}, "atol", "must be a number"),
    ({"rtol": NAN}, "rtol", "finite"),
    ({"rtol": -INF}, "rtol", "finite"),
    ({"rtol": -0.5}, "rtol", ">= 0"),
    ({"rtol": "0"}, "rtol", "must be a number"),
    ({"compare_mode": "median"}, "compare_mode", "strict, mean, abs_mean"),
    ({"compare_mode": ""}, "compare_mode", "strict, mean, abs_mean"),
    ({"compare_mode": "STRICT"}, "compare_mode", "strict, mean, abs_mean"),
    ({"compare_mode": 3}, "compare_mode", "strict, mean, abs_mean"),
    ({"compare_mode": 1}, "compare_mode", "strict, mean, abs_mean"),
    ({"tolerances": [("linear", 1e-3)]}, "tolerances", "must be a dict"),
    ({"tolerances": {"linear": 1e-3}}, "tolerances", "must be a dict with keys"),
    ({"tolerances": {"linear": {"tol": 1}}}, "tolerances", "unknown keys ['tol']"),
    ({"tolerances": {"linear": {"atol": -1}}}, "tolerances", "tolerances['linear']['atol']"),
    ({"tolerances": {"linear": {"rtol": NAN}}}, "tolerances", "tolerances['linear']['rtol']"),
    ({"tolerances": {"linear": {"mode": "max"}}}, "tolerances", "'max' is not one of"),
    ({"tolerances": {3: {"atol": 1}}}, "tolerances", "keys must be tensor names"),
    ({"tolerances": {"": {"atol": 1}}}, "tolerances", "keys must be tensor names"),
    ({"opset": 3}, "opset", "from 7 to"),
    ({"opset": 0}, "opset", "from 7 to"),
    ({"opset": 999}, "opset", "from 7 to"),
    ({"opset": "17"}, "opset", "from 7 to"),
    ({"opset": True}, "opset", "from 7 to"),
    ({"opset": 17.0}, "opset", "from 7 to"),
    ({"memory_budget": 0}, "memory_budget", "bytes > 0"),
    ({"memory_budget": -1}, "memory_budget", "bytes > 0"),
    ({"memory_budget": "1GB"}, "memory_budget", "bytes > 0"),
    ({"memory_budget": True}, "memory_budget", "bytes > 0"),
    ({"providers": []}, "providers", "execution provider names"),
    ({"providers": [1]}, "providers", "execution provider names"),
    ({"providers": ""}, "providers", "execution provider names"),
    ({"localize": "yes"}, "localize", "True or False"),
    ({"assign_weights": None}, "assign_weights", "True or False"),
    ({"progress": 5}, "progress", "callable"),
    ({"layer_map": 3}, "layer_map", "LayerMap or a dict"),
    ({"layer_map": "fc1=fc1"}, "layer_map", "LayerMap or a dict"),
    ({"layer_map": [("fc1", "fc1")]}, "layer_map", "LayerMap or a dict"),
]


@pytest.mark.parametrize(
    ("kwargs", "option", "words"),
    OPTION_CASES,
    ids=[f"{next(iter(k))}={next(iter(k.values()))!r}" for k, _, _ in OPTION_CASES],
)
def test_match_rejects_bad_options_before_running(mlp, guard, kwargs, option, words):
    guard.watch(mlp.torch_model, mlp.paddle_model)
    with pytest.raises(OptionError) as info:
        padiff_ir.match(mlp.torch_model, mlp.paddle_model, mlp.inputs, **kwargs)
    assert info.value.option == option
    assert option in str(info.value)
    assert words in str(info.value)


# -- match: models and inputs ---------------------------------------------------------------


def _model(name):
    from tests.conftest import zoo_pair

    return {
        "none": None,
        "int": 3,
        "array": np.ones(3),
        "str": "model",
        "missing": "/nonexistent/model.onnx",
        "dict": {"w": 1},
        "cnn": zoo_pair("cnn").paddle_model,
    }[name]


MODEL_CASES = [
    ("none", ModelTypeError, "NoneType"),
    ("int", ModelTypeError, "builtins.int"),
    ("array", ModelTypeError, "numpy.ndarray"),
    ("str", ModelTypeError, "'model'"),
    ("missing", ModelTypeError, "does not exist"),
    ("dict", ModelTypeError, "builtins.dict"),
    ("cnn", InputError, r"model B \(paddle\) does not run on the inputs"),
]


@pytest.mark.parametrize(("name", "error", "words"), MODEL_CASES, ids=[c[0] for c in MODEL_CASES])
def test_match_rejects_what_is_no_model_b(mlp, guard, name, error, words):
    guard.watch(mlp.torch_model)
    with pytest.raises(error, match=words):
        padiff_ir.match(mlp.torch_model, _model(name), mlp.inputs)


@pytest.mark.parametrize(
    ("name", "error", "words"), MODEL_CASES[:6], ids=[c[0] for c in MODEL_CASES[:6]]
)
def test_match_rejects_what_is_no_model_a(mlp, guard, name, error, words):
    guard.watch(mlp.paddle_model)
    with pytest.raises(error, match=words):
        padiff_ir.match(_model(name), mlp.paddle_model, mlp.inputs)


INPUT_CASES = [
    ("none", None, InputError, "NoneType"),
    ("empty list", [], InputError, "no inputs given"),
    ("string", "x", InputError, "builtins.str"),
    ("object array", np.array([object()]), InputError, "dtype object"),
    ("wrong width", np.ones((4, 7), np.float32), InputError, "does not run on the inputs.*4x7"),
    ("rank 3", np.ones((2, 3, 7), np.float32), InputError, "does not run on the inputs"),
    ("nested dict", {"x": {"x": np.ones((4, 16), np.float32)}}, InputError, "builtins.dict"),
]


@pytest.mark.parametrize(
    ("label", "inputs", "error", "words"), INPUT_CASES, ids=[c[0] for c in INPUT_CASES]
)
def test_match_rejects_inputs_that_do_not_fit(mlp, guard, label, inputs, error, words):
    guard.watch(mlp.torch_model, mlp.paddle_model)
    with pytest.raises(error, match=words):
        padiff_ir.match(mlp.torch_model, mlp.paddle_model, inputs)


# -- auto_diff and assign_weight ------------------------------------------------------------

AUTO_DIFF_CASES = [
    ({"steps": 0}, AutoDiffError, "steps must be a positive integer"),
    ({"steps": -1}, AutoDiffError, "steps must be a positive integer"),
    ({"diff_phase": "sideways"}, AutoDiffError, "diff_phase must be one of"),
    ({"loss_fn": [1, 2]}, AutoDiffError, r"loss_fn\[0\] must be callable"),
    ({"optimizer": [1]}, AutoDiffError, "optimizer must be a pair"),
    ({"atol": NAN}, OptionError, "atol must be finite"),
    ({"rtol": -1.0}, OptionError, "rtol must be finite and must be >= 0"),
    ({"compare_mode": "max"}, OptionError, "compare mode 'max'"),
]


@pytest.mark.parametrize(
    ("kwargs", "error", "words"), AUTO_DIFF_CASES, ids=[str(k) for k, _, _ in AUTO_DIFF_CASES]
)
def test_auto_diff_rejects_bad_arguments(mlp, guard, kwargs, error, words):
    guard.watch(mlp.torch_model, mlp.paddle_model)
    with pytest.raises(error, match=words):
        padiff_ir.auto_diff(mlp.torch_model, mlp.paddle_model, mlp.inputs, **kwargs)


@pytest.mark.parametrize(
    ("name", "error", "words"), MODEL_CASES[:3], ids=[c[0] for c in MODEL_CASES[:3]]
)
def test_auto_diff_rejects_what_is_no_model(mlp, guard, name, error, words):
    guard.watch(mlp.torch_model)
    with pytest.raises(error, match=words):
        padiff_ir.auto_diff(mlp.torch_model, _model(name), mlp.inputs)


def test_auto_diff_names_a_model_that_fails_on_the_inputs(mlp, guard):
    guard.watch(mlp.torch_model, mlp.paddle_model)
    with pytest.raises(AutoDiffError, match=r"running model A \(torch Mlp\) failed"):
        padiff_ir.auto_diff(mlp.torch_model, mlp.paddle_model, np.ones((4, 7), np.float32))


@pytest.mark.parametrize(
    ("name", "error", "words"), MODEL_CASES[:3], ids=[c[0] for c in MODEL_CASES[:3]]
)
def test_assign_weight_rejects_what_is_no_model(mlp, guard, name, error, words):
    guard.watch(mlp.paddle_model, mlp.torch_model)
    with pytest.raises(error, match=words):
        padiff_ir.assign_weight(mlp.paddle_model, _model(name))
    with pytest.raises(error, match=words):
        padiff_ir.assign_weight(_model(name), mlp.torch_model)


def test_assign_weight_between_different_architectures_changes_nothing(mlp, guard):
    from tests.conftest import zoo_pair

    guard.watch(mlp.paddle_model, zoo_pair("cnn").torch_model)
    with pytest.raises(
        WeightAssignError, match="cannot copy the weights of torch Cnn into paddle Mlp"
    ) as info:
        padiff_ir.assign_weight(mlp.paddle_model, zoo_pair("cnn").torch_model)
    assert "has no source" in str(info.value)


def test_auto_layer_map_rejects_what_is_no_model(mlp, guard):
    with pytest.raises(MatchError, match="NoneType is not a torch.nn.Module"):
        padiff_ir.auto_layer_map(None, mlp.torch_model)


# -- LayerMap -------------------------------------------------------------------------------

LAYER_MAP_FILES = [
    ("not json", "{bad", "is not valid JSON"),
    ("empty file", "", "is not valid JSON"),
    ("bare NaN", '{"pairs": {}, "x": NaN}', "is not valid JSON"),
    ("a list", "[1, 2]", "holds a JSON list, not an object"),
    ("a number", "3", "holds a JSON int"),
    ("a string", '"map"', "holds a JSON str"),
    ("unknown keys", '{"a": 1}', "has none of the keys"),
    ("a match result", '{"kind": "match", "ok": true}', "result of kind 'match'"),
    ("pairs not a dict", '{"pairs": 5}', "'pairs' must map module paths"),
    ("pairs to numbers", '{"pairs": {"fc1": 1}}', "'pairs' must map module paths"),
    ("ignored not a list", '{"pairs": {}, "ignored_a": 5}', "'ignored_a' must be a list"),
    ("ignored numbers", '{"pairs": {}, "black_box_b": [1]}', "'black_box_b' must be a list"),
    ("future version", '{"version": 9, "pairs": {}}', "format version 9 is not supported"),
]


@pytest.mark.parametrize(
    ("label", "text", "words"), LAYER_MAP_FILES, ids=[c[0] for c in LAYER_MAP_FILES]
)
def test_layer_map_load_names_the_file_and_the_problem(tmp_path, guard, label, text, words):
    path = tmp_path / "map.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FileFormatError, match=words) as info:
        padiff_ir.LayerMap.load(path)
    assert str(path) in str(info.value)
    assert info.value.path == str(path)


def test_layer_map_load_of_a_missing_or_binary_file(tmp_path, guard):
    with pytest.raises(FileFormatError, match="no such file"):
        padiff_ir.LayerMap.load(tmp_path / "missing.json")
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(FileFormatError, match="cannot be read as text"):
        padiff_ir.LayerMap.load(binary)
    with pytest.raises(FileFormatError, match="cannot be read as text"):
        padiff_ir.LayerMap.load(tmp_path)  # a folder


def test_layer_map_save_into_a_missing_folder(tmp_path, guard):
    with pytest.raises(FileFormatError, match="cannot write the layer map"):
        padiff_ir.LayerMap({"fc1": "fc1"}).save(tmp_path / "missing" / "map.json")


def test_layer_map_round_trips_through_a_file(tmp_path, guard):
    layer_map = padiff_ir.LayerMap({"fc1": "fc1"}, ignored_b=["act1"])
    layer_map.save(tmp_path / "map.json")
    assert padiff_ir.LayerMap.load(tmp_path / "map.json") == layer_map


LAYER_MAP_EDITS = [
    (
        "pin path to object",
        lambda lm, m: lm.pin("fc1", m.paddle_model.fc1),
        "pin\\(\\) takes two paths or two module objects",
    ),
    ("ignore path without side", lambda lm, m: lm.ignore("fc1"), "needs side='a' or side='b'"),
    (
        "resolve foreign object",
        lambda lm, m: (
            lm.pin(_foreign_linear(), m.paddle_model.fc1),
            lm.resolve(m.torch_model, m.paddle_model),
        ),
        "is in neither model",
    ),
    (
        "resolve both in A",
        lambda lm, m: (
            lm.pin(m.torch_model.fc1, m.torch_model.fc2),
            lm.resolve(m.torch_model, m.paddle_model),
        ),
        "both are in model A",
    ),
    (
        "to_dict unresolved",
        lambda lm, m: (lm.pin(m.torch_model.fc1, m.paddle_model.fc1), lm.to_dict()),
        "call resolve",
    ),
    (
        "unknown path",
        lambda lm, m: (lm.pin("nope", "fc1"), lm.resolve(m.torch_model, m.paddle_model)),
        "'nope' is not a module of model A",
    ),
    (
        "near path",
        lambda lm, m: (lm.pin("fc", "fc1"), lm.resolve(m.torch_model, m.paddle_model)),
        "did you mean",
    ),
    (
        "B pinned twice",
        lambda lm, m: (
            lm.pin("fc1", "fc1"),
            lm.pin("fc2", "fc1"),
            lm.resolve(m.torch_model, m.paddle_model),
        ),
        "pinned to both",
    ),
    (
        "from_dict version",
        lambda lm, m: padiff_ir.LayerMap.from_dict({"version": 2}),
        "format version 2",
    ),
]


def _foreign_linear():
    import torch

    with torch.random.fork_rng():
        return torch.nn.Linear(1, 1)


@pytest.mark.parametrize(
    ("label", "edit", "words"), LAYER_MAP_EDITS, ids=[c[0] for c in LAYER_MAP_EDITS]
)
def test_layer_map_edits_that_cannot_work(mlp, guard, label, edit, words):
    guard.watch(mlp.torch_model, mlp.paddle_model)
    with pytest.raises(MatchError, match=words):
        edit(padiff_ir.LayerMap(), mlp)


@pytest.mark.parametrize(
    ("layer_map", "words"),
    [
        ({"nope": "fc1"}, "'nope' is not a module of model A"),
        ({"fc1": "nope"}, "'nope' is not a module of model B"),
        ({"fc1": 3}, "two paths or two module objects"),
    ],
    ids=["unknown A path", "unknown B path", "path to number"],
)
def test_match_checks_the_layer_map_before_the_export(mlp, guard, layer_map, words):
    guard.watch(mlp.torch_model, mlp.paddle_model)
    with pytest.raises(MatchError, match=words):
        padiff_ir.match(mlp.torch_model, mlp.paddle_model, mlp.inputs, layer_map=layer_map)


# -- results --------------------------------------------------------------------------------

RESULT_FILES = [
    ("not json", "{bad", "is not valid JSON"),
    ("bare NaN", '{"kind": "match", "ok": NaN}', "is not valid JSON"),
    ("a list", "[]", "holds a JSON list"),
    ("no kind", '{"ok": true}', "holds no result kind"),
    ("auto_diff kind", '{"kind": "auto_diff", "ok": true}', "result of kind 'auto_diff'"),
    ("layer map", '{"version": 1, "pairs": {}}', "holds no result kind"),
    ("missing ok", '{"kind": "match", "tolerance": {}}', "missing key 'ok'"),
    ("missing tolerance", '{"kind": "match", "ok": true}', "missing key 'tolerance'"),
    (
        "bad tolerance",
        '{"kind": "match", "ok": true, "tolerance": {"atol": "x"}}',
        "atol must be a number",
    ),
    (
        "pairs a number",
        '{"kind": "match", "ok": true, "tolerance": {}, "pairs": 5}',
        "not iterable",
    ),
    (
        "pair without metrics",
        '{"kind": "match", "ok": true, "tolerance": {}, "pairs": [{}]}',
        "missing key 'metrics'",
    ),
]


@pytest.mark.parametrize(("label", "text", "words"), RESULT_FILES, ids=[c[0] for c in RESULT_FILES])
def test_match_result_load_names_the_file_and_the_problem(tmp_path, guard, label, text, words):
    path = tmp_path / "result.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FileFormatError, match=words) as info:
        padiff_ir.MatchResult.load(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("label", "text", "words"),
    [
        ("not json", "{bad", "is not valid JSON"),
        (
            "match result",
            '{"kind": "match", "ok": true, "tolerance": {}}',
            "holds a result of kind 'match', not a DiffResult",
        ),
        ("a list", "[1]", "holds a JSON list"),
    ],
    ids=["not json", "match result", "a list"],
)
def test_diff_result_load_names_the_file_and_the_problem(tmp_path, guard, label, text, words):
    path = tmp_path / "result.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FileFormatError, match=words):
        padiff_ir.DiffResult.load(path)


def test_result_load_of_a_missing_file(tmp_path, guard):
    with pytest.raises(FileFormatError, match="no such file"):
        padiff_ir.MatchResult.load(tmp_path / "missing.json")


# -- the report -----------------------------------------------------------------------------

REPORT_CASES = [
    ("unknown kind", {"kind": "zzz", "ok": True}, "unknown result kind 'zzz'"),
    ("a list", [1], "cannot make a report of a list"),
    ("a number", 3, "cannot make a report of a int"),
    ("no ok", {"kind": "match"}, "has no 'ok' key"),
    (
        "pairs a number",
        {
            "kind": "match",
            "ok": True,
            "tolerance": {"atol": 1, "rtol": 1, "mode": "strict"},
            "pairs": 5,
        },
        "the result data cannot be read",
    ),
]


@pytest.mark.parametrize(("label", "data", "words"), REPORT_CASES, ids=[c[0] for c in REPORT_CASES])
def test_report_rejects_what_is_no_result(tmp_path, guard, label, data, words):
    from padiff_ir.report import render_html

    with pytest.raises(ReportError, match=words):
        render_html(data, tmp_path / "report.html")
    assert not (tmp_path / "report.html").exists()


def test_report_of_a_file_that_is_not_json(tmp_path, guard):
    from padiff_ir.report import render_html

    path = tmp_path / "result.json"
    path.write_text("{bad", encoding="utf-8")
    with pytest.raises(ReportError, match="is not JSON"):
        render_html(path, tmp_path / "report.html")


# -- export and the zoo ---------------------------------------------------------------------


@pytest.mark.parametrize("opset", [2, 1000, "18"])
def test_export_rejects_an_opset_out_of_range(mlp, guard, opset):
    guard.watch(mlp.torch_model)
    with pytest.raises(OptionError, match="opset must be an ONNX opset from 7 to"):
        padiff_ir.export(mlp.torch_model, mlp.inputs, opset=opset)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("nope",), "the zoo has no model 'nope'"),
        (("mlp", "huge"), "has no size 'huge'"),
    ],
    ids=["name", "size"],
)
def test_zoo_names_what_it_does_not_have(guard, args, words):
    from padiff_ir.zoo import get_pair

    with pytest.raises(UnknownModelError, match=words):
        get_pair(*args)


def test_json_of_a_result_with_non_finite_values_is_strict(mlp, guard):
    from padiff_ir.metrics import compare_arrays

    result = padiff_ir.MatchResult(
        ok=False, tolerance=padiff_ir.Tolerance(), timings={"run": INF}, environment={"x": [NAN]}
    )
    from padiff_ir.compare.match_result import PairResult

    result.outputs.append(
        PairResult(
            index=0,
            a=("y",),
            b=("y",),
            module_a="",
            module_b="",
            op_a="output",
            op_b="output",
            metrics=compare_arrays(np.zeros(2), np.zeros(3)),
        )
    )
    text = result.to_json()
    data = json.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name}"))
    assert data["outputs"][0]["metrics"]["max_abs"] == "inf"
    assert data["timings"] == {"run": "inf"}
    again = padiff_ir.MatchResult.from_dict(data)
    assert again.outputs[0].metrics.max_abs == INF
    assert again.outputs == result.outputs
