"""First ``match()`` call with torch's dynamo exporter vs the opt-in TorchScript one.

For each pair, ``bench_match.py``'s ``both`` process (a fresh process, export cache in memory
only: eager forward of both models, then padiff-ir's first call, PaDiff 0.2.0's first call,
padiff-ir's later call, PaDiff's later call) runs once per torch exporter
(``PADIFF_IR_TORCH_EXPORTER`` unset, then ``torchscript``), the two taking turns ``--rounds``
times so that both see the same load.

Writes ``benchmarks/results/tsexport.json`` and prints a markdown table.
Run: ``.venv/bin/python benchmarks/bench_tsexport.py [--pairs cnn:base,...] [--rounds 1]``.
"""

from __future__ import annotations

import argparse
import os
import sys
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
    parser.add_argument("--pairs", help="comma-separated name:size (default: cnn, vit, bert base)")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    pairs = [tuple(p.split(":")) for p in args.pairs.split(",")] if args.pairs else PAIRS
    rows = []
    for name, size in pairs:
        for _ in range(args.rounds):
            for backend in BACKENDS:
                row = run(name, size, backend)
                rows.append(row)
                print(row, file=sys.stderr)
    path = write_results("tsexport", rows)
    print(f"results: {path}\n\n{table(rows)}")


if __name__ == "__main__":
    main()
