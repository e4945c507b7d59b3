"""Real match results with their graphs, for the report tests and the benchmark.

Each side is exported once; the ONNX files are then given to :func:`padiff_ir.match` (which
reads the attribution back from them and does not export again) and the graphs built from the
same exports go in ``result["graphs"]``, as ``match()`` stores them once it records graphs.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["vitpose_result"]


def vitpose_result(
    size: str = "tiny", *, culprit: str | None = "backbone.blocks.1.norm2", epsilon: float = 1e-3
) -> dict[str, Any]:
    """``match()`` of the zoo's ViTPose pair as a dict with graphs; B's ``culprit`` LayerNorm
    gets ``epsilon`` (a real culprit with a differing attribute) unless ``culprit`` is None."""
    from padiff_ir import match
    from padiff_ir.exporters import export
    from padiff_ir.ir import build_graph, canonicalize
    from padiff_ir.report import graph_view
    from padiff_ir.zoo import get_pair

    pair = get_pair("vitpose", size)
    if culprit is not None:
        layer = pair.paddle_model
        for part in culprit.split("."):
            layer = layer[int(part)] if part.isdigit() else getattr(layer, part)
        layer._epsilon = epsilon
    start = time.perf_counter()
    exported_a = export(pair.torch_model, pair.inputs)
    exported_b = export(pair.paddle_model, pair.inputs)
    with tempfile.TemporaryDirectory() as tmp:
        path_a, path_b = Path(tmp, "a.onnx"), Path(tmp, "b.onnx")
        exported_a.save(path_a)
        exported_b.save(path_b)
        result = match(str(path_a), str(path_b), pair.inputs)
    data = result.to_dict()
    if not data.get("graphs"):
        graph_a = canonicalize(build_graph(exported_a))
        graph_b = canonicalize(build_graph(exported_b))
        data["graphs"] = {
            "a": graph_view(graph_a, exported_a),
            "b": graph_view(graph_b, exported_b),
        }
    data.setdefault("timings", {})["total_with_export"] = time.perf_counter() - start
    return data


def synthetic_result(
    blocks: int = 100, ops_per_block: int = 40, *, module_name: str = "blocks"
) -> dict[str, Any]:
    """A MatchResult dict with graphs of ``blocks * ops_per_block`` data ops per side.

    Built from the real result classes (so the schema is theirs), with every metric and a
    histogram, one culprit in the middle block, a few unmatched ops and one 1:2 group.
    ``module_name`` names the ModuleList (put markup in it to test escaping).
    """
    import numpy as np

    from padiff_ir.compare import (
        Culprit,
        MatchResult,
        ModuleResult,
        PairResult,
        Tolerance,
        compare_arrays,
    )
    from padiff_ir.matching.types import ModulePair, Unmatched

    rng = np.random.default_rng(0)
    base = rng.standard_normal(256).astype(np.float32)
    culprit_block = blocks // 2
    subs = ("norm", "attn", "mlp", "")
    nodes: dict[str, list[dict[str, Any]]] = {"a": [], "b": []}
    edges: list[list[int]] = []
    modules = {"": "Net", module_name: "ModuleList"}
    pairs, layer_map, module_results = [], [], []
    tolerance = Tolerance()
    ops = ("LayerNormalization", "MatMul", "Add", "Softmax", "Gelu", "Mul", "Transpose")
    for k in range(blocks):
        block = f"{module_name}.{k}"
        modules[block] = "Block"
        for sub in subs[:-1]:
            modules[f"{block}.{sub}"] = sub.capitalize()
        for j in range(ops_per_block):
            i = k * ops_per_block + j
            sub = subs[j % len(subs)]
            module = f"{block}.{sub}" if sub else block
            op = ops[j % len(ops)]
            for side in ("a", "b"):
                nodes[side].append(
                    {
                        "id": f"{side}_node_{i}",
                        "op": op,
                        "module": module,
                        "class": modules[module],
                        "out": [f"{side}_t{i}"],
                        "shape": [1, 197, 768],
                        "dtype": "float32",
                        "attrs": {"axis": "-1", "epsilon": "1e-06"},
                    }
                )
            if i:
                edges.append([i - 1, i])
            if i >= 5 and j % 5 == 0:
                edges.append([i - 5, i])
            scale = 1e-3 if k >= culprit_block else 1e-8
            metrics = compare_arrays(base, base + scale * rng.standard_normal(256), tolerance)
            pairs.append(
                PairResult(
                    index=i,
                    a=(f"a_t{i}",),
                    b=(f"b_t{i}",),
                    module_a=module,
                    module_b=module,
                    op_a=op,
                    op_b=op,
                    metrics=metrics,
                    evidence=("structure", "op-family"),
                )
            )
    for path, cls in modules.items():
        layer_map.append(ModulePair(a=path, b=path, class_a=cls, class_b=cls, evidence=("ops",)))
        failing = path.startswith(f"{module_name}.{culprit_block}")
        status = (
            "culprit"
            if path == f"{module_name}.{culprit_block}.norm"
            else ("inherited" if failing else "ok")
        )
        metrics = pairs[0].metrics if not failing else pairs[-1].metrics
        module_results.append(
            ModuleResult(
                a=path,
                b=path,
                class_a=cls,
                class_b=cls,
                output=metrics,
                own=metrics,
                inputs=pairs[0].metrics,
                status=status,
                depth=path.count(".") + bool(path),
            )
        )
    culprit = f"{module_name}.{culprit_block}.norm"
    result = MatchResult(
        ok=False,
        tolerance=tolerance,
        outputs=[pairs[-1]],
        pairs=pairs,
        modules=module_results,
        first_divergence=pairs[culprit_block * ops_per_block],
        culprits=[
            Culprit(
                module_a=culprit,
                module_b=culprit,
                class_a="Norm",
                class_b="Norm",
                own_error=1e-3,
                inherited_error=1e-8,
                output_error=1e-3,
                attribute_diffs=("LayerNormalization epsilon 1e-06 vs 0.001",),
                explanation=f"{culprit} differs by itself",
            )
        ],
        layer_map=layer_map,
        unmatched=[
            Unmatched(
                side="b",
                kind="op",
                name="b_node_3",
                reason="layout-only op",
                module=nodes["b"][3]["module"],
                op_type="Transpose",
            )
        ],
        model_a={"framework": "torch", "class": "Net", "nodes": len(nodes["a"])},
        model_b={"framework": "paddle", "class": "Net", "nodes": len(nodes["b"])},
    )
    data = result.to_dict()
    data["pairs"][1]["b"] = ["b_t1", "b_t2"]  # one 1:2 group
    data["graphs"] = {
        side: {
            "framework": fw,
            "model_class": "Net",
            "name": "main_graph",
            "opset": {"ai.onnx": 18},
            "inputs": [["x", [1, 197, 768], "float32"]],
            "outputs": [f"{side}_t{len(nodes[side]) - 1}"],
            "nodes": nodes[side],
            "edges": edges,
            "modules": modules,
        }
        for side, fw in (("a", "torch"), ("b", "paddle"))
    }
    return data
