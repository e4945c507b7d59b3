"""A decoder-LLM port end to end: layout discovery, ``match`` and ``auto_diff`` on the zoo's llama.

The torch side is a Hugging Face style decoder with split projections; the paddle side a
PaddleNLP style port with a grouped ``qkv_proj``, an ``[up; gate]`` fused projection,
neighbour-pair RoPE and a wrapped ``forward`` that cannot be exported (so ``match`` compares
natively). Per size, in a fresh process each:

* ``pairing``: :func:`padiff_ir.pairing.pair_models` from scratch (eager traces, matching and
  layout discovery), with the discovery's own time (``stats["layout_seconds"]``) and how many
  runs of B it needed;
* ``match``: ``padiff_ir.match(torch, paddle_fresh, inputs, assign_weights=True)`` (a fresh
  paddle model, so the weights travel through the discovered layouts), its verdict;
* ``auto_diff``: ``padiff_ir.auto_diff`` forward + backward with a loss (one step);
* the eager forward of both models, for scale; peak RSS of each case (``VmHWM``, reset after
  the models are built).

Usage::

    python benchmarks/bench_llm.py [--sizes tiny base] [--cases match-auto auto_diff-auto]

writes ``benchmarks/results/llm.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._common import (  # noqa: E402
    eager_forward,
    peak_rss_mib,
    reset_peak_rss,
    run_in_subprocess,
    write_results,
)

CASES = ("pairing", "match", "auto_diff", "match-auto", "auto_diff-auto")
"""``-auto``: the same call with the default tolerance, measured noise (issue 22)."""


def _case(size: str, case: str) -> dict[str, Any]:
    import padiff_ir
    from padiff_ir.pairing import pair_models
    from padiff_ir.zoo import get_pair

    pair = get_pair("llama", size, seed=0)
    fresh = get_pair("llama", size, seed=1).paddle_model if case != "pairing" else None
    start = time.perf_counter()
    eager_forward(pair.torch_model, "torch", pair.inputs)
    eager_forward(pair.paddle_model, "paddle", pair.inputs)
    eager = time.perf_counter() - start
    reset_peak_rss()
    row: dict[str, Any] = {"size": size, "case": case, "eager_both_s": round(eager, 3)}
    start = time.perf_counter()
    if case == "pairing":
        matching = pair_models(pair.torch_model, pair.paddle_model, pair.inputs, reuse=False)
        row["layout_seconds"] = matching.stats.get("layout_seconds")
        row["layout_runs"] = matching.stats.get("layout_runs")
        row["layouts"] = [
            (c["kind"].split(" -> ")[-1], c["transform"] and c["transform"].get("layout"))
            for c in matching.stats.get("layouts", [])
        ]
        row["ok"] = True
    elif case.startswith("match"):
        tolerance = "auto" if case.endswith("-auto") else "fixed"
        result = padiff_ir.match(
            pair.torch_model, fresh, pair.inputs, assign_weights=True, tolerance=tolerance
        )
        row["ok"] = bool(result)
        row["noise"] = result.noise.sentence if result.noise else None
        row["fallback"] = result.fallback.side if result.fallback else None
        row["timings"] = {k: round(v, 3) for k, v in result.timings.items()}
    else:
        fixed = {"atol": 1e-5, "rtol": 1e-4, "compare_mode": "mean"}
        result = padiff_ir.auto_diff(
            pair.torch_model,
            fresh,
            pair.inputs,
            loss_fn=[
                lambda out: out.double().pow(2).mean(),
                lambda out: out.astype("float64").pow(2).mean(),
            ],
            **({} if case.endswith("-auto") else fixed),  # -auto: the default, measured noise
        )
        row["ok"] = bool(result)
        row["noise"] = result.noise.sentence if result.noise else None
    row["seconds"] = round(time.perf_counter() - start, 3)
    row["peak_rss_mib"] = round(peak_rss_mib(), 1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["tiny", "base"])
    parser.add_argument("--case")
    parser.add_argument(
        "--cases", nargs="+", choices=CASES, help="only these cases; other rows of llm.json kept"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.case:
        size, case = args.case.split(":")
        print(json.dumps(_case(size, case)))
        return
    chosen = [(size, case) for size in args.sizes for case in args.cases or CASES]
    rows = []
    if args.cases:  # the other rows kept, in their order
        previous = json.loads((ROOT / "benchmarks/results/llm.json").read_text())["rows"]
        rows = [r for r in previous if (r.get("size"), r.get("case")) not in chosen]
    for size, case in chosen:
        row = run_in_subprocess(__file__, f"{size}:{case}", timeout=3600)
        rows.append(row)
        print(json.dumps(row), flush=True)
    write_results("llm", rows)
    print("| size | case | ok | seconds | eager fwd (both) | layout discovery | peak RSS |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        if "error" in row:
            print(f"| {row['case']} | error | {row['error'][-120:]} |")
            continue
        discovery = (
            f"{row['layout_seconds']} s, {row['layout_runs']} runs"
            if row.get("layout_seconds") is not None
            else "-"
        )
        print(
            f"| {row['size']} | {row['case']} | {row['ok']} | {row['seconds']} | "
            f"{row['eager_both_s']} | {discovery} | {row['peak_rss_mib']} MiB |"
        )


if __name__ == "__main__":
    main()
