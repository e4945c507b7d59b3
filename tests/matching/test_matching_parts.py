"""The matcher's parts on small hand-built graphs: alignment, folding, layouts, anchors, modules."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from padiff_ir.ir.graph import Graph, OpNode, TensorInfo
from padiff_ir.matching import match_graphs
from padiff_ir.matching._align import align
from padiff_ir.matching._consteval import ConstantFolder
from padiff_ir.matching._match import needs_canonical_form
from padiff_ir.matching._state import layout_between
from padiff_ir.matching._view import SideView


class _Builder:
    """A tiny canonical graph in the making: ``linear``, ``relu``... append ops in order."""

    def __init__(self, framework: str, shape: tuple[int, ...] = (2, 8)) -> None:
        self.framework = framework
        self.ops: list[OpNode] = []
        self.tensors = {"x": TensorInfo("x", shape=shape, dtype="float32")}
        self.modules: dict[str, str] = {}
        self.last = "x"

    def _tensor(self, name: str, shape: tuple[int, ...] | None) -> str:
        self.tensors[name] = TensorInfo(name, shape=shape, dtype="float32")
        return name

    def op(
        self,
        op_type: str,
        inputs: tuple[str, ...],
        shape: tuple[int, ...] | None,
        module: str = "",
        **meta,
    ) -> str:
        out = self._tensor(f"t{len(self.ops)}", shape)
        self.ops.append(
            OpNode(
                f"n{len(self.ops)}",
                op_type,
                inputs=inputs,
                outputs=(out,),
                index=len(self.ops),
                module_path=module,
                meta=meta,
            )
        )
        self.last = out
        return out

    def param(self, name: str, shape: tuple[int, ...]) -> str:
        self.tensors[name] = TensorInfo(
            name, shape=shape, dtype="float32", param_name=name, is_initializer=True
        )
        return name

    def linear(self, module: str, x: str, n_in: int, n_out: int, rows: int = 2) -> str:
        self.modules[module] = "Linear"
        torch_layout = self.framework == "torch"
        weight = self.param(f"{module}.weight", (n_out, n_in) if torch_layout else (n_in, n_out))
        bias = self.param(f"{module}.bias", (n_out,))
        raw = self.op("MatMul", (x, weight), (rows, n_out), module, weight_transposed=torch_layout)
        return self.op("Add", (raw, bias), (rows, n_out), module)

    def graph(self) -> Graph:
        return Graph(
            self.ops,
            self.tensors,
            ["x"],
            [self.last],
            framework=self.framework,
            modules=self.modules,
        )


def _mlp(framework: str, names: tuple[str, str] = ("fc1", "fc2"), blocks: int = 1) -> Graph:
    builder = _Builder(framework)
    x = "x"
    for block in range(blocks):
        prefix = f"blocks.{block}." if blocks > 1 else ""
        h = builder.linear(prefix + names[0], x, 8, 16)
        h = builder.op("Relu", (h,), (2, 16), prefix + "act")
        h = builder.linear(prefix + names[1], h, 16, 8)
        x = builder.op("Add", (x, h) if framework == "torch" else (h, x), (2, 8), prefix[:-1])
    return builder.graph()


# -- alignment --------------------------------------------------------------------------------


def test_align_skips_one_sided_tokens():
    assert align(list("abcd"), list("abxcd")) == [(0, 0), (1, 1), (2, 3), (3, 4)]
    assert align(list("abc"), []) == []


def test_align_prefers_matching_contexts():
    keys_a, keys_b = ["bn", "bn"], ["bn"]
    assert align(keys_a, keys_b, ["conv1x1", "conv3x3"], ["conv3x3"]) == [(1, 0)]


def test_align_pairs_long_equal_sequences_in_order():
    # (its time, linear in the length, is measured by benchmarks/bench_matching.py)
    keys = [f"k{i % 7}" for i in range(200_000)]
    pairs = align(keys, list(keys))
    assert pairs == [(i, i) for i in range(len(keys))]


def test_align_band_follows_length_differences():
    keys_a = ["ln", "fc", "fc", "ln"] * 300
    keys_b = ["ln", "fc", "extra", "fc", "ln"] * 300
    pairs = align(keys_a, keys_b)
    assert len(pairs) == len(keys_a)
    assert all(keys_a[i] == keys_b[j] for i, j in pairs)


# -- constants and layouts ----------------------------------------------------------------------


def test_constant_folder_computes_torch_attention_scale():
    ops = [
        OpNode("c", "Constant", outputs=("one",), attributes={"value_float": 1.0}, index=0),
        OpNode("s", "Shape", inputs=("q",), outputs=("shape",), index=1),
        OpNode("i", "Constant", outputs=("minus",), attributes={"value_ints": [-1]}, index=2),
        OpNode("g", "Gather", inputs=("shape", "minus"), outputs=("d",), index=3),
        OpNode("cast", "CastLike", inputs=("d", "q"), outputs=("df",), index=4),
        OpNode("sqrt", "Sqrt", inputs=("df",), outputs=("r",), index=5),
        OpNode("div", "Div", inputs=("one", "r"), outputs=("scale",), index=6),
    ]
    tensors = {"q": TensorInfo("q", shape=(2, 2, 5, 16), dtype="float32")}
    graph = Graph(ops, tensors, ["q"], ["scale"])
    value = ConstantFolder(graph).value("scale")
    assert value is not None and np.allclose(value, 0.25)


def test_layout_between():
    assert layout_between((2, 5), (2, 5)) is None
    assert layout_between((5, 2, 16), (2, 5, 16)) == {"transpose": [1, 0, 2]}
    assert layout_between((4, 4), (2, 8)) == {"reshape": [4, 4], "ambiguous": True}
    assert layout_between((2, 1, 8), (2, 8)) == {"reshape": [2, 1, 8]}
    assert layout_between((2, "n", 16), (2, 7, 16)) is None


# -- views, anchors, the whole matcher ----------------------------------------------------------


def test_view_marks_scales_and_no_ops():
    builder = _Builder("paddle")
    builder.tensors["half"] = TensorInfo("half", shape=(1,), dtype="float32")
    builder.ops.append(
        OpNode(
            "k",
            "Constant",
            outputs=("half",),
            index=0,
            attributes={"value": np.array([0.5], np.float32)},
        )
    )
    builder.ops.append(
        OpNode(
            "k0",
            "Constant",
            outputs=("zero",),
            index=1,
            attributes={"value": np.array(0.0, np.float32)},
        )
    )
    builder.tensors["zero"] = TensorInfo("zero", shape=(), dtype="float32")
    scaled = builder.op("Mul", ("x", "half"), (2, 8))
    builder.ops[-1].index = 2
    builder.op("Add", (scaled, "zero"), (2, 8))
    builder.ops[-1].index = 3
    view = SideView(builder.graph())
    families = [
        (view.facts[n].family, view.facts[n].kind, view.facts[n].scalar) for n in view.order
    ]
    assert families == [("scale", "scalar", 0.5), ("identity", "transparent", 0.0)]


def test_matching_is_name_free():
    torch_graph = _mlp("torch", blocks=3)
    paddle_graph = _mlp("paddle", names=("dense_in", "dense_out"), blocks=3)
    matching = match_graphs(torch_graph, paddle_graph, canonicalize=False)
    assert matching.module_map()["blocks.1.fc1"] == "blocks.1.dense_in"
    assert matching.module_map()["blocks.2.fc2"] == "blocks.2.dense_out"
    transforms = {p.a[0]: p.transform.to_dict() for p in matching.param_pairs}
    assert transforms["blocks.0.fc1.weight"] == {"transpose": [1, 0]}
    assert transforms["blocks.0.fc1.bias"] == {}
    residuals = [
        p
        for p in matching.tensor_pairs
        if p.module_a.count(".") == 1
        and p.op_a == "Add"
        and not p.module_a.endswith(("fc1", "fc2"))
    ]
    assert len(residuals) == 3  # x + h on one side, h + x on the other


def test_fused_projection_pairs_as_a_group():
    torch_side = _Builder("torch")
    torch_side.modules["attn"] = "Attention"
    fused = torch_side.linear("attn.qkv", "x", 8, 24)
    torch_side.op("Relu", (fused,), (2, 24), "attn")
    paddle_side = _Builder("paddle")
    parts = [paddle_side.linear(f"attn.{p}", "x", 8, 8) for p in "qkv"]
    paddle_side.modules["attn"] = "Attention"
    paddle_side.op("Concat", tuple(parts), (2, 24), "attn")
    paddle_side.op("Relu", (paddle_side.last,), (2, 24), "attn")
    matching = match_graphs(torch_side.graph(), paddle_side.graph(), canonicalize=False)
    weight = next(p for p in matching.param_pairs if p.a == ("attn.qkv.weight",))
    assert weight.b == ("attn.q.weight", "attn.k.weight", "attn.v.weight")
    assert weight.transform.to_dict() == {"transpose": [1, 0], "split": 1, "sections": [8, 8, 8]}
    group = next(p for p in matching.tensor_pairs if p.is_group)
    assert group.layout == {"concat_axis": -1}
    assert matching.module_map()["attn"] == "attn"


def _gated_mlp(framework: str) -> Graph:
    """A fused gate/up projection cut in two chunks, ``act(gate) * up``: torch's ``chunk``
    exports ``SplitToSequence`` and one ``SequenceAt`` per chunk, paddle's one ``Split``."""
    side = _Builder(framework)
    side.modules.update({"mlp": "MLP", "mlp.act": "SiLU"})
    fused = side.linear("mlp.gate_up", "x", 8, 16)
    if framework == "torch":
        sequence = side.op("SplitToSequence", (fused,), None, "mlp")
        chunks = []
        for index in range(2):
            const = side._tensor(f"index{index}", ())
            side.ops.append(
                OpNode(
                    f"c{index}",
                    "Constant",
                    outputs=(const,),
                    attributes={"value_int": index},
                    index=len(side.ops),
                )
            )
            chunks.append(side.op("SequenceAt", (sequence, const), (2, 8), "mlp"))
    else:
        chunks = [side._tensor(f"chunk{i}", (2, 8)) for i in range(2)]
        side.ops.append(
            OpNode(
                "split",
                "Split",
                inputs=(fused,),
                outputs=tuple(chunks),
                module_path="mlp.act",
                index=len(side.ops),
            )
        )
    gate = side.op("Sigmoid", (chunks[0],), (2, 8), "mlp.act")
    gate = side.op("Mul", (chunks[0], gate), (2, 8), "mlp.act")
    side.op("Mul", (gate, chunks[1]), (2, 8), "mlp")
    return side.graph()


def test_chunks_of_paired_tensors_pair_in_order_whatever_op_cuts_them():
    matching = match_graphs(_gated_mlp("torch"), _gated_mlp("paddle"), canonicalize=False)
    assert matching.module_map()["mlp.act"] == "mlp.act"  # found between the chunks
    sigmoid = next(p for p in matching.tensor_pairs if p.op_a == "Sigmoid")
    assert (sigmoid.op_b, sigmoid.module_b) == ("Sigmoid", "mlp.act")


def _router_and_experts(fused: bool) -> Graph:
    """A router beside a gate/up projection (fused on one side) and a shared-expert gate, all
    reading one input: one token of several members on each side."""
    side = _Builder("paddle" if fused else "torch")
    side.linear("router", "x", 8, 4)
    if fused:
        side.linear("shared.gate_up", "x", 8, 12)
    else:
        side.linear("shared.gate", "x", 8, 6)
        side.linear("shared.up", "x", 8, 6)
    side.linear("shared_gate", "x", 8, 1)
    return side.graph()


def test_a_token_of_other_members_pairs_the_unique_ones_and_groups_the_rest():
    matching = match_graphs(_router_and_experts(False), _router_and_experts(True))
    weights = {p.a: p.b for p in matching.param_pairs}
    assert weights[("router.weight",)] == ("router.weight",)
    assert weights[("shared_gate.weight",)] == ("shared_gate.weight",)
    assert weights[("shared.gate.weight", "shared.up.weight")] == ("shared.gate_up.weight",)


def _layer_map(**fields) -> SimpleNamespace:
    """A duck-typed layer map (the matcher reads attributes only)."""
    empty = dict(
        pairs={},
        ignored_a=set(),
        ignored_b=set(),
        ignored_self_a=set(),
        ignored_self_b=set(),
        black_box_a=set(),
        black_box_b=set(),
    )
    return SimpleNamespace(**{**empty, **fields})


def test_layer_map_pin_restricts_anchors():
    pins = _layer_map(pairs={"blocks.0": "blocks.2", "blocks.2": "blocks.0"})
    matching = match_graphs(
        _mlp("torch", blocks=3), _mlp("paddle", blocks=3), layer_map=pins, canonicalize=False
    )
    assert matching.module_map()["blocks.0"] == "blocks.2"
    assert matching.module_map()["blocks.0.fc1"] == "blocks.2.fc1"


def test_needs_canonical_form():
    builder = _Builder("torch")
    builder.op("Identity", ("x",), (2, 8))
    assert needs_canonical_form(builder.graph())
    assert not needs_canonical_form(_mlp("torch"))


@pytest.mark.parametrize("blocks", [50, 400])
def test_large_graphs_match_completely(blocks):
    # (the time, linear in the size, is measured by benchmarks/bench_matching.py)
    torch_graph, paddle_graph = _mlp("torch", blocks=blocks), _mlp("paddle", blocks=blocks)
    matching = match_graphs(torch_graph, paddle_graph, canonicalize=False)
    assert len(matching.module_pairs) == 2 + 4 * blocks  # root, blocks, 4 per block
    assert all(p.a == p.b for p in matching.module_pairs)


def test_layer_map_ignored_self_keeps_submodules():
    matching = match_graphs(
        _mlp("torch", blocks=2),
        _mlp("paddle", blocks=2),
        layer_map=_layer_map(ignored_self_a={"blocks.0"}),
        canonicalize=False,
    )
    assert "blocks.0" not in matching.module_map()
    assert matching.module_map()["blocks.0.fc1"] == "blocks.0.fc1"
    assert not [u for u in matching.unmatched if u.side == "a" and u.name == "blocks.0"]
