"""match() end to end vs the eager forward and vs PaDiff 0.2.0, per zoo pair.

For MLP, CNN, ViTPose-tiny, ViTPose-B and BERT-base, each in a fresh process: time per stage of
``padiff_ir.match`` (eager runs, export, IR, matching, run, compare, localisation), the total,
peak RSS, and the ratio to one eager forward of both models; and, in another fresh process,
PaDiff 0.2.0's ``auto_diff(paddle_model, torch_model, inputs, options={'diff_phase':
'forward'})`` on the same pair (``pip install padiff==0.2.0 --no-deps``; skipped with the
reason when it is not installed or fails). Writes ``benchmarks/results/match.json`` and
prints a markdown table.

Run: ``.venv/bin/python benchmarks/bench_match.py`` (about 10 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
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


def _eager_both(pair) -> None:
    eager_forward(pair.torch_model, "torch", pair.inputs)
    eager_forward(pair.paddle_model, "paddle", pair.inputs)


def run_match(name: str, size: str) -> dict:
    import padiff_ir
    from padiff_ir.zoo import get_pair

    pair = get_pair(name, size)
    _eager_both(pair)
    _, eager_s = timed(_eager_both, pair, repeat=3)
    start = time.perf_counter()
    result = padiff_ir.match(pair.torch_model, pair.paddle_model, pair.inputs, atol=1e-4, rtol=1e-4)
    total = time.perf_counter() - start
    return {
        "pair": f"{name}-{size}",
        "tool": "padiff-ir",
        "ok": bool(result),
        "total_s": total,
        "stages": result.timings,
        "eager_both_s": eager_s,
        "ratio_to_eager": total / eager_s,
        "tensor_pairs": len(result.pairs),
        "module_pairs": len(result.layer_map),
        "peak_rss_mib": peak_rss_mib(),
    }


def run_padiff(name: str, size: str) -> dict:
    import paddle
    import torch

    from padiff_ir.zoo import get_pair

    row = {"pair": f"{name}-{size}", "tool": "padiff 0.2.0"}
    try:
        from padiff import auto_diff
    except Exception as err:  # not installed, or does not import with these versions
        return {**row, "error": f"{type(err).__name__}: {err}"[:300]}
    pair = get_pair(name, size)
    inputs = (
        {k: paddle.to_tensor(v) for k, v in pair.inputs.items()},
        {k: torch.from_numpy(v) for k, v in pair.inputs.items()},
    )
    start = time.perf_counter()
    try:
        ok = auto_diff(
            pair.paddle_model,
            pair.torch_model,
            inputs,
            options={"diff_phase": "forward", "atol": 1e-4, "rtol": 1e-4},
        )
    except Exception as err:
        return {
            **row,
            "error": f"{type(err).__name__}: {err}"[:300],
            "seconds_until_error": time.perf_counter() - start,
        }
    return {
        **row,
        "ok": bool(ok),
        "total_s": time.perf_counter() - start,
        "peak_rss_mib": peak_rss_mib(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--case")
    args = parser.parse_args()
    if args.case:
        tool, name, size = args.case.split(":")
        row = run_match(name, size) if tool == "ir" else run_padiff(name, size)
        print(json.dumps(row))
        return
    rows = []
    for name, size in CASES:
        for tool in ("ir", "padiff"):
            row = run_in_subprocess(__file__, f"{tool}:{name}:{size}")
            rows.append(row)
            print(row, file=sys.stderr)
    path = write_results("match", rows)
    print(f"results: {path}\n")
    print(
        "| pair | padiff-ir total s | eager (both) s | ratio | export s | run s | match s "
        "| compare+localise s | peak RSS MiB | PaDiff 0.2.0 s | PaDiff RSS MiB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    by_pair: dict[str, dict] = {}
    for row in rows:
        by_pair.setdefault(row.get("pair", row.get("case", "?")), {})[row.get("tool", "?")] = row
    for pair, tools in by_pair.items():
        ir, pd = tools.get("padiff-ir", {}), tools.get("padiff 0.2.0", {})
        if "stages" not in ir:
            print(f"| {pair} | error: {ir.get('error', '?')[:80]} |")
            continue
        st = ir["stages"]
        padiff = (
            f"{pd['total_s']:.2f}" if "total_s" in pd else f"failed: {pd.get('error', '?')[:60]}"
        )
        print(
            f"| {pair} | {ir['total_s']:.2f} | {ir['eager_both_s']:.3f} | "
            f"{ir['ratio_to_eager']:.0f}x | {st.get('export', 0):.2f} | {st.get('run', 0):.2f} "
            f"| {st.get('match', 0):.2f} | {st.get('compare', 0) + st.get('localize', 0):.2f} "
            f"| {ir['peak_rss_mib']:.0f} | {padiff} | {pd.get('peak_rss_mib', 0):.0f} |"
        )


if __name__ == "__main__":
    main()
