"""Matching benchmark: speed and memory on ViT stacks, quality on the zoo.

Speed. A torch ViT and a paddle ViT with ``n`` blocks (dim 16, 16x16 images, 8x8 patches, two
heads, MLP ratio 2; weights equal) are exported for real for every ``n`` of ``--sizes``. For
each size: nodes per side, ``canonicalize`` time per side, ``match_graphs`` time on the
canonical graphs (best of ``--repeat``; the graphs are canonical already, so this is matching
alone), peak Python memory of one ``match_graphs`` call (``tracemalloc``), and module-pair
precision/recall against the shared names as a sanity check. Graphs past what is worth
exporting are built *at the IR level*: the middle block of a real 3-block export is replicated
(every op between its first and last op, tensors and parameters renamed, the copies chained on
the residual stream) until the graph has ``--replicate`` blocks; sizes measured both ways tell
whether the replicas behave like real exports. The growth exponent is the least-squares slope
of log(time) over log(nodes) for the sizes of at least 10 blocks.

Quality. For every zoo pair (tiny), its renamed copy (every torch submodule and parameter
renamed ``m0``, ``p0``...) and the special cases of ``tests/matching/models.py`` (torch vs
paddle multi-head attention, encoder layer, LSTM, an extra container, a layer called twice,
residual order, layout chains, ResNet blocks with the shortcut first or last, fused vs split
``qkv``): module-pair precision and recall over modules owning parameters,
tensor-pair precision against the values both graphs compute in onnxruntime, and the largest
output difference after copying the torch weights into the (scrambled) paddle model through
``param_pairs``.

Writes ``benchmarks/results/matching.json`` and ``benchmarks/results/matching_quality.json``
and prints markdown tables; wall and CPU times are both recorded with the load average, as the
machine may be shared. Run: ``.venv/bin/python benchmarks/bench_matching.py`` (about 10
minutes on 2 cores, most of it exporting the 100- and 200-block models).
"""

from __future__ import annotations

import argparse
import copy
import gc
import logging
import math
import os
import sys
import time
import tracemalloc
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import write_results

logger = logging.getLogger(__name__)

SIZES = (1, 2, 5, 10, 25, 50, 100, 200)
REPLICATED = (10, 50, 200, 500, 1000)


# -- models ---------------------------------------------------------------------------------


def vit_pair(blocks: int) -> tuple[Any, Any, dict[str, Any]]:
    import numpy as np

    from padiff_ir.zoo import copy_torch_to_paddle, paddle_models, torch_models
    from padiff_ir.zoo.configs import VitConfig

    config = VitConfig(
        image_size=16,
        patch_size=8,
        dim=16,
        depth=blocks,
        heads=2,
        mlp_ratio=2,
        num_classes=4,
        batch=1,
    )
    torch_model = torch_models.build("vit", config).eval()
    paddle_model = paddle_models.build("vit", config)
    copy_torch_to_paddle(torch_model, paddle_model)
    paddle_model.eval()
    inputs = {"x": np.random.default_rng(0).standard_normal((1, 3, 16, 16), dtype=np.float32)}
    return torch_model, paddle_model, inputs


def exported_graphs(blocks: int) -> tuple[Any, Any, float]:
    """Raw IR graphs of both sides and the export time (both sides)."""
    from padiff_ir.exporters import export
    from padiff_ir.ir import build_graph

    torch_model, paddle_model, inputs = vit_pair(blocks)
    start = time.perf_counter()
    graphs = [build_graph(export(model, inputs)) for model in (torch_model, paddle_model)]
    return graphs[0], graphs[1], time.perf_counter() - start


def replicate_blocks(graph: Any, blocks: int) -> Any:
    """``graph`` (exported with 3 blocks) with its middle block repeated to ``blocks`` blocks."""
    from padiff_ir.ir.graph import Graph, OpNode, TensorInfo

    order = graph.topological_order()

    def in_block(op: OpNode, i: int) -> bool:
        return op.module_path == f"blocks.{i}" or op.module_path.startswith(f"blocks.{i}.")

    first = min(op.index for op in order if in_block(op, 1))
    last = max(op.index for op in order if in_block(op, 1))
    region = [op for op in order if first <= op.index <= last]
    before = [op for op in order if op.index < first]
    after = [op for op in order if op.index > last]
    produced = {t for op in region for t in op.outputs if t}
    made_before = {t: op for op in before for t in op.outputs if t}
    streams_in = {
        t
        for op in region
        for t in op.inputs
        if t in made_before
        and in_block(made_before[t], 0)
        and graph.tensors[t].dtype == "float32"
        and len(graph.tensors[t].shape or ()) == 3
    }
    streams_out = {t for op in after for t in op.inputs if t in produced}
    if len(streams_in) != 1 or len(streams_out) != 1:
        raise RuntimeError(f"block 1 is not a chain link: reads {streams_in}, gives {streams_out}")
    stream_in, stream_out = streams_in.pop(), streams_out.pop()
    tensors = {name: copy.copy(info) for name, info in graph.tensors.items()}
    modules = dict(graph.modules)
    copies: list[OpNode] = []
    previous = stream_out
    for k in range(1, blocks - 2):
        block = f"blocks.{2 + k}"

        def rename_module(path: str, block: str = block) -> str:
            if path == "blocks.1" or path.startswith("blocks.1."):
                return block + path[len("blocks.1") :]
            return path

        renames: dict[str, str] = {stream_in: previous}
        for op in region:
            for name in op.inputs:
                info = graph.tensors.get(name)
                if name and info is not None and info.param_name and name not in renames:
                    new = f"{name}__r{k}"
                    tensors[new] = TensorInfo(
                        new,
                        shape=info.shape,
                        dtype=info.dtype,
                        param_name=rename_module(info.param_name.rsplit(".", 1)[0])
                        + "."
                        + info.param_name.rsplit(".", 1)[1],
                        is_initializer=True,
                    )
                    renames[name] = new
        for name in produced:
            new = f"{name}__r{k}"
            info = graph.tensors[name]
            tensors[new] = TensorInfo(new, shape=info.shape, dtype=info.dtype)
            renames[name] = new
        for op in region:
            new_op = copy.copy(op)
            new_op.name = f"{op.name}__r{k}"
            new_op.inputs = tuple(renames.get(t, t) for t in op.inputs)
            new_op.outputs = tuple(renames.get(t, t) for t in op.outputs)
            new_op.module_path = rename_module(op.module_path)
            new_op.attributes = dict(op.attributes)
            new_op.meta = copy.deepcopy(op.meta)
            copies.append(new_op)
        for path, cls in graph.modules.items():
            if path == "blocks.1" or path.startswith("blocks.1."):
                modules[rename_module(path)] = cls
        previous = renames[stream_out]
    tail = []
    for op in after:
        new_op = copy.copy(op)
        new_op.inputs = tuple(previous if t == stream_out else t for t in op.inputs)
        tail.append(new_op)
    ops = [*before, *region, *copies, *tail]
    for index, op in enumerate(ops):
        op.index = index
    return Graph(
        ops,
        tensors,
        graph.inputs,
        graph.outputs,
        framework=graph.framework,
        modules=modules,
        meta=dict(graph.meta),
    )


# -- measurements ---------------------------------------------------------------------------


def measure(raw_a: Any, raw_b: Any, repeat: int) -> dict[str, Any]:
    from padiff_ir.ir import canonicalize
    from padiff_ir.matching import match_graphs

    row: dict[str, Any] = {"nodes_a": len(raw_a.ops), "nodes_b": len(raw_b.ops)}
    start = time.perf_counter()
    graph_a = canonicalize(raw_a)
    row["canonicalize_a_s"] = time.perf_counter() - start
    start = time.perf_counter()
    graph_b = canonicalize(raw_b)
    row["canonicalize_b_s"] = time.perf_counter() - start
    row["canonical_nodes_a"], row["canonical_nodes_b"] = len(graph_a.ops), len(graph_b.ops)
    best = best_cpu = math.inf
    matching = None
    for _ in range(repeat):
        gc.collect()
        start, start_cpu = time.perf_counter(), time.process_time()
        matching = match_graphs(graph_a, graph_b, canonicalize=False)
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - start_cpu)
    row["match_s"] = best
    row["match_cpu_s"] = best_cpu
    row["load_average_1min"] = os.getloadavg()[0]
    row["match_phases_s"] = matching.stats["timings"]
    gc.collect()
    tracemalloc.start()
    match_graphs(graph_a, graph_b, canonicalize=False)
    row["match_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    owners = {
        info.param_name.rsplit(".", 1)[0]
        for info in graph_a.tensors.values()
        if info.param_name and "." in info.param_name
    }
    found = {p.a: p.b for p in matching.module_pairs if p.a in owners}
    row["module_precision"] = sum(a == b for a, b in found.items()) / max(1, len(found))
    row["module_recall"] = sum(found.get(a) == a for a in owners) / max(1, len(owners))
    row["tensor_pairs"] = len(matching.tensor_pairs)
    row["param_pairs"] = len(matching.param_pairs)
    return row


def slope(rows: list[dict[str, Any]], key: str = "match_s") -> float | None:
    points = [
        (math.log(r["nodes_a"] + r["nodes_b"]), math.log(r[key]))
        for r in rows
        if r["blocks"] >= 10 and r[key] > 0
    ]
    if len(points) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    num = sum((x - mean_x) * (y - mean_y) for x, y in points)
    den = sum((x - mean_x) ** 2 for x, _ in points)
    return num / den if den else None


def speed(sizes: tuple[int, ...], replicated: tuple[int, ...], repeat: int) -> dict[str, Any]:
    rows = []
    for blocks in sizes:
        raw_a, raw_b, export_s = exported_graphs(blocks)
        row = {
            "blocks": blocks,
            "source": "export",
            "export_s": export_s,
            **measure(raw_a, raw_b, repeat if blocks < 100 else max(1, repeat - 1)),
        }
        rows.append(row)
        print(
            f"  exported {blocks:4d} blocks: {row['nodes_a']}+{row['nodes_b']} nodes, "
            f"match {row['match_s']:.3f} s",
            file=sys.stderr,
        )
    for blocks in sizes:  # the same models matched on native traces instead of exports
        from padiff_ir.pairing.model_graphs import model_graph

        torch_model, paddle_model, inputs = vit_pair(blocks)
        start = time.perf_counter()
        raw_a, raw_b = model_graph(torch_model, inputs), model_graph(paddle_model, inputs)
        trace_s = time.perf_counter() - start
        row = {
            "blocks": blocks,
            "source": "trace",
            "trace_s": trace_s,
            **measure(raw_a, raw_b, repeat),
        }
        rows.append(row)
        print(
            f"  traced {blocks:4d} blocks: {row['nodes_a']}+{row['nodes_b']} nodes, "
            f"trace {trace_s:.3f} s, match {row['match_s']:.3f} s",
            file=sys.stderr,
        )
    base_a, base_b, _ = exported_graphs(3)
    for blocks in replicated:
        raw_a, raw_b = replicate_blocks(base_a, blocks), replicate_blocks(base_b, blocks)
        row = {"blocks": blocks, "source": "replicated", **measure(raw_a, raw_b, repeat)}
        rows.append(row)
        print(
            f"  replicated {blocks:4d} blocks: {row['nodes_a']}+{row['nodes_b']} nodes, "
            f"match {row['match_s']:.3f} s",
            file=sys.stderr,
        )
    fits = {
        source: {
            key: slope([r for r in rows if r["source"] == source], key)
            for key in ("match_s", "match_cpu_s", "canonicalize_b_s")
        }
        for source in ("export", "trace", "replicated")
    }
    return {"rows": rows, "exponents": fits}


def _quality_cases() -> Any:
    """``(pair, variant, torch model, paddle model, inputs, truth)`` for every quality row."""
    from padiff_ir.zoo import ZOO, get_pair
    from tests.matching.models import CASES, renamed

    # the rows need both exports and a by-name truth: not the LLM port ("llama")
    for name in (n for n, entry in ZOO.items() if entry.same_names and entry.paddle_exports):
        pair = get_pair(name, "tiny")
        yield (
            name,
            "names",
            pair.torch_model,
            pair.paddle_model,
            pair.inputs,
            {n: n for n, _ in pair.torch_model.named_modules()},
        )
        torch_model, mapping = renamed(pair.torch_model)
        yield (
            name,
            "renamed",
            torch_model,
            pair.paddle_model,
            pair.inputs,
            {new: old for old, new in mapping.items()},
        )
    for name, build in CASES.items():
        case = build()
        truth = (
            {"": "", **case.truth}
            if case.truth
            else {n: n for n, _ in case.torch_model.named_modules()}
        )
        yield (name, "special case", case.torch_model, case.paddle_model, case.inputs, truth)


def quality() -> list[dict[str, Any]]:
    """Quality rows on the exported graphs, on native traces and on the module trees alone."""
    from padiff_ir.matching import match_graphs
    from padiff_ir.pairing.model_graphs import layer_sizes, model_graph, static_graph
    from tests.matching import oracle

    rows = []
    for name, variant, torch_model, paddle_model, inputs, truth in _quality_cases():
        case = oracle.export_case(torch_model, paddle_model, inputs)
        for graphs in ("onnx", "trace", "static"):
            start = time.perf_counter()
            if graphs == "onnx":
                graph_a, graph_b = case.graph_a, case.graph_b
            elif graphs == "trace":
                graph_a, graph_b = (
                    model_graph(torch_model, inputs),
                    model_graph(paddle_model, inputs),
                )
            else:
                graph_a = static_graph(torch_model, fused=layer_sizes(paddle_model))
                graph_b = static_graph(paddle_model, fused=layer_sizes(torch_model))
            graphs_s = time.perf_counter() - start if graphs != "onnx" else None
            start = time.perf_counter()
            matching = match_graphs(graph_a, graph_b)
            seconds = time.perf_counter() - start
            mod_p, mod_r, wrong, missed = oracle.module_scores(matching, graph_a, truth)
            tensor_p, checked = (
                oracle.tensor_precision(matching, case)[::2] if graphs == "onnx" else (None, 0)
            )
            diff, unwritten = oracle.outputs_after_copy(
                matching, copy.deepcopy(torch_model), copy.deepcopy(paddle_model), inputs
            )
            rows.append(
                {
                    "pair": name,
                    "variant": variant,
                    "graphs": graphs,
                    "match_s": seconds,
                    "graphs_s": graphs_s,
                    "module_precision": mod_p,
                    "module_recall": mod_r,
                    "wrong_modules": wrong,
                    "missed_modules": missed,
                    "tensor_precision": tensor_p,
                    "tensor_pairs": len(matching.tensor_pairs),
                    "tensor_pairs_checked": checked,
                    "group_pairs": sum(p.is_group for p in matching.tensor_pairs),
                    "param_pairs": len(matching.param_pairs),
                    "unwritten_params": unwritten,
                    "max_abs_after_copy": diff,
                    "unmatched": {
                        kind: sum(u.kind == kind for u in matching.unmatched)
                        for kind in ("op", "tensor", "module")
                    },
                }
            )
            print(
                f"  {name}/{variant}/{graphs}: P {mod_p:.3f} R {mod_r:.3f} "
                f"copy {diff:.1e} unwritten {len(unwritten)}",
                file=sys.stderr,
            )
    return rows


def _speed_table(result: dict[str, Any]) -> str:
    lines = [
        "| source | blocks | nodes A | nodes B | canon A (s) | canon B (s) | match wall (s) "
        "| match CPU (s) | peak (MiB) | module P/R | load |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['source']} | {r['blocks']} | {r['nodes_a']} | {r['nodes_b']} | "
            f"{r['canonicalize_a_s']:.3f} | {r['canonicalize_b_s']:.3f} | {r['match_s']:.3f} | "
            f"{r['match_cpu_s']:.3f} | {r['match_peak_mib']:.1f} | "
            f"{r['module_precision']:.2f}/{r['module_recall']:.2f} | "
            f"{r['load_average_1min']:.1f} |"
        )
    for source, fit in result["exponents"].items():
        lines.append(
            f"\nGrowth exponent ({source}, >= 10 blocks): match wall "
            f"{_fmt(fit['match_s'])}, match CPU {_fmt(fit['match_cpu_s'])}, "
            f"canonicalize (paddle) {_fmt(fit['canonicalize_b_s'])}"
        )
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _quality_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| pair | variant | graphs | module P | module R | tensor P (checked) | groups | "
        "params unwritten | max abs after copy | match (s) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        tensors = (
            "-"
            if r["tensor_precision"] is None
            else f"{r['tensor_precision']:.3f} ({r['tensor_pairs_checked']}/{r['tensor_pairs']})"
        )
        lines.append(
            f"| {r['pair']} | {r['variant']} | {r['graphs']} | {r['module_precision']:.3f} | "
            f"{r['module_recall']:.3f} | {tensors} | {r['group_pairs']} | "
            f"{len(r['unwritten_params'])} | {r['max_abs_after_copy']:.1e} | "
            f"{r['match_s']:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--replicate", default=",".join(map(str, REPLICATED)))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    sizes = tuple(int(s) for s in args.sizes.split(",") if s)
    replicated = tuple(int(s) for s in args.replicate.split(",") if s)
    if not args.skip_speed:
        result = speed(sizes, replicated, args.repeat)
        path = write_results("matching", [{"exponents": result["exponents"]}, *result["rows"]])
        print(f"## Matching speed (written to {path})\n\n{_speed_table(result)}\n")
    if not args.skip_quality:
        rows = quality()
        path = write_results("matching_quality", rows)
        print(f"## Matching quality (written to {path})\n\n{_quality_table(rows)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
