"""First ``match()`` call with torch's dynamo exporter vs the opt-in TorchScript one.

For each pair, ``bench_match.py``'s ``both`` process (a fresh process, export cache in memory
only: eager forward of both models, then padiff-ir's first call, PaDiff 0.2.0's first call,
padiff-ir's later call, PaDiff's later call) runs once per torch exporter
(``PADIFF_IR_TORCH_EXPORTER`` unset, then ``torchscript``), the two taking turns ``--rounds``
times so that both see the same load.

The torch side alone: ``padiff_ir.export(torch_model, inputs)`` in a fresh process (the first
export, imports of the exporter included; then a second export with the cache off), per
exporter; in ``match`` the paddle side's export runs meanwhile and may hide it.

Writes ``benchmarks/results/tsexport.json`` and prints two markdown tables.
Run: ``.venv/bin/python benchmarks/bench_tsexport.py [--pairs cnn:base,...] [--rounds 1]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import run_in_subprocess, write_results

PAIRS = [("cnn", "base"), ("vit", "base"), ("bert", "base")]
BACKENDS = ("dynamo", "torchscript")
_MATCH_SCRIPT = str(Path(__file__).resolve().parent / "bench_match.py")


def run(name: str, size: str, backend: str) -> dict[str, Any]:
    env = os.environ
    env["PADIFF_IR_CACHE_DIR"] = ""
    env["PADIFF_IR_TORCH_EXPORTER"] = backend
    row = run_in_subprocess(_MATCH_SCRIPT, f"both:{name}:{size}")
    row.update(pair=f"{name}-{size}", backend=backend)
    return row


def torch_side(name: str, size: str) -> dict[str, Any]:
    """In this (fresh) process: the torch model's first and second export."""
    from padiff_ir.zoo import get_pair

    pair = get_pair(name, size)
    import padiff_ir

    padiff_ir.export_cache.enabled = False
    start = time.perf_counter()
    exported = padiff_ir.export(pair.torch_model, pair.inputs, check=False)
    first = time.perf_counter() - start
    start = time.perf_counter()
    padiff_ir.export(pair.torch_model, pair.inputs, check=False)
    second = time.perf_counter() - start
    return {
        "first_s": first,
        "second_s": second,
        "nodes": len(exported.model.graph.node),
        "parameters": len(exported.parameters),
    }


def torch_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| pair | torch exporter | first export s | second export s | ONNX nodes | parameters |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        if "first_s" not in row:
            lines.append(f"| {row['pair']} | {row['backend']} | error |")
            continue
        lines.append(
            f"| {row['pair']} | {row['backend']} | {row['first_s']:.2f} | {row['second_s']:.2f} "
            f"| {row['nodes']} | {row['parameters']} |"
        )
    return "\n".join(lines)


def _cell(row: dict[str, Any], key: str) -> str:
    call = row.get(key, {})
    if "s" not in call:
        return "error"
    return f"{call['s']:.2f}" + ("" if call.get("ok", True) else " (diverged)")


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| pair | torch exporter | padiff-ir first s | export stage s | PaDiff first s "
        "| ratio first | padiff-ir later s | PaDiff later s | verdict |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['pair']} | {row['backend']} | error: {row['error'][:80]} |")
            continue
        first, padiff = row["ir_first"], row["padiff_first"]
        ratio = f"{first['s'] / padiff['s']:.2f}x" if "s" in padiff else "-"
        export_s = first.get("stages", {}).get("export", float("nan"))
        lines.append(
            f"| {row['pair']} | {row['backend']} | {_cell(row, 'ir_first')} | {export_s:.2f} "
            f"| {_cell(row, 'padiff_first')} | {ratio} | {_cell(row, 'ir_later')} "
            f"| {_cell(row, 'padiff_later')} | {'aligned' if first['ok'] else 'diverged'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--case", help="torch:name:size (one torch-side row, this process)")
    parser.add_argument("--pairs", help="comma-separated name:size (default: cnn, vit, bert base)")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    if args.case:
        _, name, size = args.case.split(":")
        print(json.dumps(torch_side(name, size)))
        return
    pairs = [tuple(p.split(":")) for p in args.pairs.split(",")] if args.pairs else PAIRS
    rows, torch_rows = [], []
    for name, size in pairs:
        for _ in range(args.rounds):
            for backend in BACKENDS:
                os.environ["PADIFF_IR_TORCH_EXPORTER"] = backend
                row = run_in_subprocess(__file__, f"torch:{name}:{size}")
                row.update(pair=f"{name}-{size}", backend=backend, kind="torch export")
                torch_rows.append(row)
                print(row, file=sys.stderr)
            for backend in BACKENDS:
                row = run(name, size, backend)
                rows.append(row)
                print(row, file=sys.stderr)
    path = write_results("tsexport", rows + torch_rows)
    print(f"results: {path}\n\n{table(rows)}\n\n{torch_table(torch_rows)}")


if __name__ == "__main__":
    main()
