"""Runner, run_all and run_subgraph on a real torch export, run in real onnxruntime."""

from __future__ import annotations

import gc
import os
import weakref

import numpy as np
import onnx
import pytest
from onnx import helper

from padiff_ir.errors import ExecutionError, InputError
from padiff_ir.exporters import ExportedGraph
from padiff_ir.runtime import ActivationStore, Runner, run_all, run_subgraph
from padiff_ir.runtime import _session as session_module

from .conftest import TorchCase


def _serialized(model: onnx.ModelProto) -> bytes:
    return model.SerializeToString(deterministic=True)


def _output_of(model: onnx.ModelProto, op_type: str) -> str:
    (name,) = [n.output[0] for n in model.graph.node if n.op_type == op_type]
    return name


def _assert_same_stores(left: ActivationStore, right: ActivationStore) -> None:
    assert list(left) == list(right)
    for name in left:
        np.testing.assert_array_equal(left[name], right[name], err_msg=name)


# -- run_all -------------------------------------------------------------------------------


def test_run_all_records_every_node_output_and_matches_torch(torch_case: TorchCase) -> None:
    model = torch_case.onnx_model
    node_outputs = [o for n in model.graph.node for o in n.output if o]
    with run_all(model, torch_case.feeds) as store:
        assert list(store) == [*torch_case.feeds, *node_outputs]
        (output_name,) = [o.name for o in model.graph.output]
        np.testing.assert_allclose(store[output_name], torch_case.output, rtol=0, atol=1e-5)
        relu = store[_output_of(model, "Relu")]
        np.testing.assert_allclose(relu, torch_case.relu, rtol=0, atol=1e-5)
        np.testing.assert_array_equal(store["x"], torch_case.feeds["x"])
        summary = store.summary(output_name)
        assert summary.shape == torch_case.output.shape
        assert summary.maximum == pytest.approx(float(torch_case.output.max()), abs=1e-5)


def test_infer_matches_torch_and_run_all(torch_case: TorchCase) -> None:
    exported = ExportedGraph.from_model(torch_case.onnx_model)
    with Runner(exported) as runner, runner.run_all(torch_case.feeds) as store:
        outputs = runner.infer(torch_case.feeds)
        assert list(outputs) == list(exported.output_names)
        for name, value in outputs.items():
            np.testing.assert_allclose(value, torch_case.output, rtol=0, atol=1e-5)
            np.testing.assert_array_equal(value, store[name])


@pytest.mark.parametrize(
    "options",
    [{"chunk_size": 1}, {"chunk_size": 3}, {"memory_budget": 2048}, {"memory_budget": 0}],
    ids=["chunk1", "chunk3", "budget2k", "budget0"],
)
def test_chunked_runs_give_identical_results(torch_case: TorchCase, options: dict) -> None:
    model = torch_case.onnx_model
    with (
        run_all(model, torch_case.feeds) as whole,
        run_all(model, torch_case.feeds, **options) as part,
    ):
        _assert_same_stores(whole, part)


def test_chunked_run_uses_several_sessions(torch_case: TorchCase, caplog) -> None:
    with caplog.at_level("DEBUG", logger="padiff_ir.runtime._segments"):
        run_all(torch_case.onnx_model, torch_case.feeds, chunk_size=2).close()
        run_all(torch_case.onnx_model, torch_case.feeds).close()
    sessions = [r.getMessage() for r in caplog.records if "session(s)" in r.getMessage()]
    assert len(sessions) == 2
    assert not sessions[0].endswith(" 1 session(s)")
    assert sessions[1].endswith(" 1 session(s)")


def test_tiny_store_budget_spills_and_cleans_up(torch_case: TorchCase) -> None:
    model = torch_case.onnx_model
    with run_all(model, torch_case.feeds) as reference:
        store = run_all(model, torch_case.feeds, store=ActivationStore(memory_budget=256))
        assert store.nbytes_on_disk > 0
        assert store.nbytes_in_memory <= 256
        _assert_same_stores(reference, store)
    directory = store.directory
    assert os.path.isdir(directory)
    store.close()
    assert not os.path.exists(directory)

    store = run_all(model, torch_case.feeds, memory_budget=0)  # the store gets half: nothing
    assert store.nbytes_in_memory == 0
    directory = store.directory
    del store
    gc.collect()
    assert not os.path.exists(directory)


def test_callers_model_is_not_modified(torch_case: TorchCase) -> None:
    model = torch_case.onnx_model
    before = _serialized(model)
    with Runner(model) as runner:
        runner.infer(torch_case.feeds)
        runner.run_all(torch_case.feeds).close()
        runner.run_all(torch_case.feeds, chunk_size=2).close()
        runner.run_subgraph(torch_case.feeds, [model.graph.output[0].name])
    assert _serialized(model) == before


def test_run_all_selected_tensors(torch_case: TorchCase) -> None:
    model = torch_case.onnx_model
    relu, output = _output_of(model, "Relu"), model.graph.output[0].name
    weight = model.graph.initializer[0].name
    with run_all(model, torch_case.feeds) as whole:
        for chunk_size in (None, 1):
            with run_all(
                model, torch_case.feeds, tensors=[output, relu, weight], chunk_size=chunk_size
            ) as some:
                assert list(some) == ["x", weight, relu, output]
                for name in (relu, output):
                    np.testing.assert_array_equal(some[name], whole[name])
                expected = onnx.numpy_helper.to_array(model.graph.initializer[0])
                np.testing.assert_array_equal(some[weight], expected)
    with pytest.raises(InputError, match="'no_such_tensor'"):
        run_all(model, torch_case.feeds, tensors=["no_such_tensor"])


def test_large_models_go_through_external_data(
    torch_case: TorchCase, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = torch_case.onnx_model
    before = _serialized(model)
    with run_all(model, torch_case.feeds) as reference:
        monkeypatch.setattr(session_module, "_PROTOBUF_LIMIT", 0)
        with Runner(model) as runner:
            outputs = runner.infer(torch_case.feeds)
            with runner.run_all(torch_case.feeds, chunk_size=4) as store:
                _assert_same_stores(reference, store)
        for name, value in outputs.items():
            np.testing.assert_array_equal(value, reference[name])
    assert _serialized(model) == before


# -- run_subgraph --------------------------------------------------------------------------


def test_run_subgraph_reproduces_and_propagates(torch_case: TorchCase) -> None:
    model = torch_case.onnx_model
    exported = ExportedGraph.from_model(model)
    relu, output = _output_of(model, "Relu"), model.graph.output[0].name
    gemms = [n.output[0] for n in model.graph.node if n.op_type == "Gemm"]
    with run_all(model, torch_case.feeds) as store:
        fed = {relu: np.array(store[relu])}
        values = run_subgraph(exported, fed, [output, gemms[0]])
        assert list(values) == [output, gemms[0]]
        np.testing.assert_array_equal(values[output], store[output])
        np.testing.assert_array_equal(values[gemms[0]], store[gemms[0]])

        noise = np.random.default_rng(0).standard_normal(fed[relu].shape).astype(np.float32)
        perturbed = {relu: fed[relu] + noise}  # not a constant shift: LayerNorm removes those
        changed = run_subgraph(exported, perturbed, [output])[output]
        assert np.abs(changed - store[output]).max() > 1e-3

        # A module's own computation: feed its input, get its output.
        alone = run_subgraph(exported, {gemms[0]: np.array(store[gemms[0]])}, [output])
        np.testing.assert_array_equal(alone[output], store[output])

        # A fed tensor is returned as given; a fed initializer replaces the weight.
        assert run_subgraph(exported, fed, [relu])[relu] is fed[relu]
        head_weight = next(n.input[1] for n in model.graph.node if n.output[0] == gemms[-1])
        weight = onnx.numpy_helper.to_array(
            next(t for t in model.graph.initializer if t.name == head_weight)
        )
        zeroed = run_subgraph(exported, {**fed, head_weight: np.zeros_like(weight)}, [output])
        assert not np.array_equal(zeroed[output], store[output])


def test_run_subgraph_caches_sessions(torch_case: TorchCase) -> None:
    model = torch_case.onnx_model
    relu, output = _output_of(model, "Relu"), model.graph.output[0].name
    with Runner(model, subgraph_cache_size=2) as runner, runner.run_all(torch_case.feeds) as store:
        fed = {relu: np.array(store[relu])}
        runner.run_subgraph(fed, [output])
        (session,) = runner._subgraph_sessions.values()
        runner.run_subgraph({relu: fed[relu] * 2}, [output])
        assert list(runner._subgraph_sessions.values()) == [session]
        runner.run_subgraph(torch_case.feeds, [relu])
        runner.run_subgraph(torch_case.feeds, [output])
        assert len(runner._subgraph_sessions) == 2
        assert session not in runner._subgraph_sessions.values()

    exported = ExportedGraph.from_model(model)
    run_subgraph(exported, torch_case.feeds, [relu])
    cached = exported.subgraph_runner
    assert cached is not None
    run_subgraph(exported, torch_case.feeds, [relu])
    assert exported.subgraph_runner is cached
    assert len(cached._subgraph_sessions) == 1
    runner = weakref.ref(cached)
    del exported, cached
    gc.collect()
    assert runner() is None, "the sessions go with their graph"


def test_run_subgraph_errors_name_the_tensor(torch_case: TorchCase) -> None:
    model = torch_case.onnx_model
    relu, output = _output_of(model, "Relu"), model.graph.output[0].name
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    with Runner(model) as runner:
        with pytest.raises(InputError, match="'nope'"):
            runner.run_subgraph({"nope": np.zeros(1)}, [output])
        with pytest.raises(InputError, match="'nope'"):
            runner.run_subgraph(torch_case.feeds, ["nope"])
        with pytest.raises(InputError, match="feed those too") as info:
            runner.run_subgraph({gemm.output[0]: np.zeros((2, 6), np.float32)}, [relu])
        assert "'x'" in str(info.value)
        with pytest.raises(InputError, match=f"'{relu}'.*dtype"):
            runner.run_subgraph({relu: np.zeros((2, 8, 8, 8), np.float64)}, [output])
        with pytest.raises(InputError, match=f"'{relu}'.*rank"):
            runner.run_subgraph({relu: np.zeros((2, 8, 8), np.float32)}, [output])


# -- feeds and failures --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("feeds", "pattern"),
    [
        ({}, "missing input 'x'"),
        ({"x": np.zeros((2, 3, 8, 8), np.float32), "y": np.zeros(1)}, "unexpected input 'y'"),
        ({"x": np.zeros((2, 3, 8, 8), np.float64)}, r"input 'x'.*float32\[2, 3, 8, 8\].*dtype"),
        ({"x": np.zeros((2, 3, 8), np.float32)}, r"input 'x'.*rank"),
        ({"x": np.zeros((2, 3, 8, 9), np.float32)}, r"input 'x'.*got float32\[2, 3, 8, 9\]"),
    ],
    ids=["missing", "extra", "dtype", "rank", "shape"],
)
def test_bad_feeds_raise_input_error(torch_case: TorchCase, feeds: dict, pattern: str) -> None:
    model = torch_case.onnx_model
    with pytest.raises(InputError, match=pattern):
        run_all(model, feeds)
    with Runner(model) as runner, pytest.raises(InputError, match=pattern):
        runner.infer(feeds)


def test_feeding_an_intermediate_as_input_hints_at_run_subgraph(torch_case: TorchCase) -> None:
    relu = _output_of(torch_case.onnx_model, "Relu")
    with pytest.raises(InputError, match="run_subgraph"):
        run_all(torch_case.onnx_model, {**torch_case.feeds, relu: np.zeros(1)})


def _reshape_model() -> onnx.ModelProto:
    graph = helper.make_graph(
        [
            helper.make_node("Relu", ["x"], ["r"], name="first_relu"),
            helper.make_node("Reshape", ["r", "shape"], ["y"], name="bad_reshape"),
        ],
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["n"])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
        initializer=[onnx.numpy_helper.from_array(np.array([4], np.int64), "shape")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_runtime_failures_name_the_node() -> None:
    model = _reshape_model()
    exported = ExportedGraph.from_model(model)
    exported.node_modules["bad_reshape"] = "backbone.flatten"
    with pytest.raises(ExecutionError, match="'bad_reshape'.*'backbone.flatten'") as info:
        run_all(exported, {"x": np.zeros(6, np.float32)})
    assert info.value.__cause__ is not None
    with run_all(model, {"x": np.arange(-2, 2, dtype=np.float32)}) as store:
        assert store["y"].tolist() == [0.0, 0.0, 0.0, 1.0]


def test_invalid_models_raise_execution_error() -> None:
    graph = helper.make_graph(
        [helper.make_node("NoSuchOp", ["x"], ["y"], name="mystery", domain="example")],
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("example", 1)]
    )
    with pytest.raises(ExecutionError, match="build a session"):
        Runner(model).infer({"x": np.zeros(1, np.float32)})


# -- control flow --------------------------------------------------------------------------


def _if_model() -> onnx.ModelProto:
    """``y = exp(x)``; ``out = If(cond, then: y + bias, else: y * bias)`` reading outer ``y``."""
    float_ = onnx.TensorProto.FLOAT
    then_branch = helper.make_graph(
        [helper.make_node("Add", ["y", "bias"], ["then_out"])],
        "then",
        [],
        [helper.make_tensor_value_info("then_out", float_, None)],
    )
    else_branch = helper.make_graph(
        [helper.make_node("Mul", ["y", "bias"], ["else_out"])],
        "else",
        [],
        [helper.make_tensor_value_info("else_out", float_, None)],
    )
    graph = helper.make_graph(
        [
            helper.make_node("Exp", ["x"], ["y"], name="exp"),
            helper.make_node("Neg", ["x"], ["unused"], name="neg"),
            helper.make_node(
                "If",
                ["cond"],
                ["out"],
                name="branch",
                then_branch=then_branch,
                else_branch=else_branch,
            ),
            helper.make_node("Abs", ["out"], ["final"], name="abs"),
        ],
        "g",
        [
            helper.make_tensor_value_info("x", float_, [3]),
            helper.make_tensor_value_info("cond", onnx.TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("final", float_, [3])],
        initializer=[onnx.numpy_helper.from_array(np.full(3, 2.0, np.float32), "bias")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_outer_scope_reads_of_subgraphs_are_followed() -> None:
    model = _if_model()
    x = np.array([0.0, 1.0, -1.0], np.float32)
    for cond in (True, False):
        feeds = {"x": x, "cond": np.array(cond)}
        expected = np.exp(x) + 2 if cond else np.exp(x) * 2
        with run_all(model, feeds) as whole, run_all(model, feeds, chunk_size=1) as part:
            _assert_same_stores(whole, part)
            np.testing.assert_allclose(whole["final"], expected, rtol=1e-6)
        with run_all(model, feeds, tensors=["final"], chunk_size=1) as some:
            assert list(some) == ["x", "cond", "final"]
            np.testing.assert_allclose(some["final"], expected, rtol=1e-6)
        values = run_subgraph(
            model, {"y": np.ones(3, np.float32), "cond": feeds["cond"]}, ["final"]
        )
        np.testing.assert_allclose(values["final"], 3.0 if cond else 2.0)


def test_sequences_are_passed_between_sessions_but_not_recorded() -> None:
    float_ = onnx.TensorProto.FLOAT
    graph = helper.make_graph(
        [
            helper.make_node("Relu", ["x"], ["r"]),
            helper.make_node("SplitToSequence", ["r"], ["seq"], axis=0, keepdims=0),
            helper.make_node("SequenceAt", ["seq", "i"], ["item"]),
            helper.make_node("Neg", ["item"], ["out"]),
        ],
        "g",
        [helper.make_tensor_value_info("x", float_, [3, 2])],
        [helper.make_tensor_value_info("out", float_, None)],
        initializer=[onnx.numpy_helper.from_array(np.array(1, np.int64), "i")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = np.arange(-3, 3, dtype=np.float32).reshape(3, 2)
    for chunk_size in (None, 1):
        with run_all(model, {"x": x}, chunk_size=chunk_size) as store:
            assert list(store) == ["x", "r", "item", "out"]
            np.testing.assert_array_equal(store["out"], [-0.0, -0.0])


def test_initializers_listed_as_inputs_are_not_inputs() -> None:
    """IR version 3 lists every initializer among the graph inputs."""
    float_ = onnx.TensorProto.FLOAT
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"]), helper.make_node("Relu", ["y"], ["z"])],
        "g",
        [
            helper.make_tensor_value_info("x", float_, [2]),
            helper.make_tensor_value_info("w", float_, [2]),
        ],
        [helper.make_tensor_value_info("z", float_, [2])],
        initializer=[onnx.numpy_helper.from_array(np.array([1.0, -5.0], np.float32), "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 8)], ir_version=3)
    x = np.array([1.0, 2.0], np.float32)
    with Runner(model) as runner:
        assert runner.input_names == ("x",)
        assert runner.infer({"x": x})["z"].tolist() == [2.0, 0.0]
        for chunk_size in (None, 1):
            with runner.run_all({"x": x}, chunk_size=chunk_size) as store:
                assert list(store) == ["x", "y", "z"]
                assert store["y"].tolist() == [2.0, -3.0]
        fed = runner.run_subgraph({"y": np.array([-1.0, 4.0], np.float32)}, ["z"])
        assert fed["z"].tolist() == [0.0, 4.0]
