"""Export benchmark: export time, eager forward, all-intermediates run, peak RSS, node counts.

For each zoo pair (MLP, CNN, ViTPose-tiny, ViTPose-B, BERT-base) and each side, in a fresh
process: build the pair, time the eager forward (best of 3), the attributed export, and
``run_all`` (every intermediate tensor into the activation store); record peak RSS and node
counts. Writes ``benchmarks/results/export.json`` and prints a markdown table.

Run: ``.venv/bin/python benchmarks/bench_export.py`` (about 5 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import eager_forward, peak_rss_mib, run_in_subprocess, timed, write_results

CASES = [
    ("mlp", "tiny"),
    ("cnn", "tiny"),
    ("vitpose", "tiny"),
    ("vitpose", "base"),
    ("bert", "base"),
]


def run_case(case: str) -> dict:
    name, size, side = case.split(":")
    from padiff_ir.exporters import export
    from padiff_ir.ir import build_graph, canonicalize
    from padiff_ir.runtime import run_all
    from padiff_ir.zoo import get_pair

    pair = get_pair(name, size)
    model = pair.torch_model if side == "torch" else pair.paddle_model
    eager_forward(model, side, pair.inputs)
    _, eager_s = timed(eager_forward, model, side, pair.inputs, repeat=3)
    exported, export_s = timed(export, model, pair.inputs)
    graph, ir_s = timed(lambda: canonicalize(build_graph(exported)))

    def run():
        with run_all(exported, pair.inputs) as store:
            return len(store), store.nbytes_in_memory + store.nbytes_on_disk

    (tensors, nbytes), run_s = timed(run)
    return {
        "pair": f"{name}-{size}",
        "side": side,
        "eager_s": eager_s,
        "export_s": export_s,
        "ir_s": ir_s,
        "run_all_s": run_s,
        "onnx_nodes": len(exported.model.graph.node),
        "data_ops": len(graph.data_ops()),
        "tensors": tensors,
        "activation_mib": nbytes / 2**20,
        "peak_rss_mib": peak_rss_mib(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--case")
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case)))
        return
    rows = []
    for name, size in CASES:
        for side in ("torch", "paddle"):
            row = run_in_subprocess(__file__, f"{name}:{size}:{side}")
            rows.append(row)
            print(row, file=sys.stderr)
    path = write_results("export", rows)
    print(f"results: {path}\n")
    print(
        "| pair | side | eager s | export s | IR s | run_all s | ONNX nodes | data ops "
        "| activations MiB | peak RSS MiB |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        if "error" in r:
            print(f"| {r['case']} | error: {r['error'][:60]} |")
            continue
        print(
            f"| {r['pair']} | {r['side']} | {r['eager_s']:.3f} | {r['export_s']:.2f} | "
            f"{r['ir_s']:.2f} | {r['run_all_s']:.2f} | {r['onnx_nodes']} | {r['data_ops']} | "
            f"{r['activation_mib']:.0f} | {r['peak_rss_mib']:.0f} |"
        )


if __name__ == "__main__":
    main()
