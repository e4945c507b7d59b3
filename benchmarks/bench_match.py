"""match() end to end vs the eager forward and vs PaDiff 0.2.0: first call, later call, batches.

Per zoo pair (and a VGG-11 pair, ``benchmarks/_vgg.py``), three fresh processes:

* ``both``: one eager forward of both models (best of 3), then in the same process, taking
  turns: ``padiff_ir.match`` first call, PaDiff 0.2.0 first call, then three rounds of
  ``padiff_ir.match`` later call (the same models, new input values) and PaDiff later call,
  each tool's median reported. The ratios come from this process (the same load for both
  tools). PaDiff is ``auto_diff(paddle_model, torch_model, inputs,
  options={'diff_phase': 'forward'})`` (``pip install padiff==0.2.0 --no-deps``);
* ``ir`` and ``padiff``: the same two calls of one tool alone, for its peak RSS;
* ``warm``: padiff-ir's first call in a new process whose export cache directory the ``ir``
  process filled (a model checked before, in an earlier session);
* ``auto``: ``match(..., tolerance="auto")`` alone, first call (export cache in memory only)
  and later call, for its peak RSS (the float64 shadow of A). Its later calls are also
  measured in the ``both`` process: each round takes turns between ``match`` at the fixed
  tolerance, ``match(tolerance="auto")`` and PaDiff.

The ``both`` process keeps the export cache in memory only (``PADIFF_IR_CACHE_DIR=""``): its
first call exports.

Batches: ``padiff_ir.match(a, b, Batches([...N batches]))`` in a fresh process per N: the
preparation (export, match, sessions) once, and per batch the eager forward of both models
(outputs), both graphs and the comparison, against a plain eager forward of both models.

Writes ``benchmarks/results/match.json`` and prints three markdown tables (the second:
``tolerance="auto"``).
Run: ``.venv/bin/python benchmarks/bench_match.py [--pairs cnn:tiny,...] [--tools both,auto]
[--skip-batches]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import eager_forward, peak_rss_mib, run_in_subprocess, timed, write_results

CASES = [
    ("mlp", "tiny"),
    ("cnn", "tiny"),
    ("vitpose", "tiny"),
    ("cnn", "base"),
    ("vit", "base"),
    ("vitpose", "base"),
    ("bert", "base"),
    ("vgg", "11"),
]
BATCH_CASES = [
    ("cnn", "base", (1, 8, 64)),
    ("vitpose", "tiny", (1, 8, 64)),
    ("vit", "base", (1, 8)),
]
TOLERANCE = {"atol": 1e-4, "rtol": 1e-4}
LATER_ROUNDS = 3  # later calls per tool in the "both" process (the median is reported)
TOOLS = ("both", "ir", "warm", "padiff", "auto")  # one fresh process each, per pair


def _new_values(inputs: dict[str, Any], seed: int) -> dict[str, Any]:
    """Inputs of the same signature with other values (integer ids shifted in range)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = {}
    for name, value in inputs.items():
        if value.dtype.kind == "f":
            out[name] = rng.standard_normal(value.shape).astype(value.dtype)
        else:
            out[name] = np.roll(value, 1, axis=-1)
    return out


def _get_pair(name: str, size: str) -> Any:
    """A zoo pair, or the VGG-11 pair of ``benchmarks/_vgg.py`` for ``vgg:11``."""
    if name == "vgg":
        from benchmarks._vgg import vgg11_pair

        return vgg11_pair()
    from padiff_ir.zoo import get_pair

    return get_pair(name, size)


def _eager_both(pair, inputs) -> None:
    eager_forward(pair.torch_model, "torch", inputs)
    eager_forward(pair.paddle_model, "paddle", inputs)


def _ir_call(pair, inputs) -> dict[str, Any]:
    import padiff_ir

    start = time.perf_counter()
    result = padiff_ir.match(pair.torch_model, pair.paddle_model, inputs, **TOLERANCE)
    return {"s": time.perf_counter() - start, "ok": bool(result), "stages": result.timings}


def _auto_call(pair, inputs) -> dict[str, Any]:
    """``match(..., tolerance="auto")``: the tolerance measured (a float64 shadow of A)."""
    import padiff_ir

    start = time.perf_counter()
    result = padiff_ir.match(pair.torch_model, pair.paddle_model, inputs, tolerance="auto")
    seconds = time.perf_counter() - start
    noise = dict(result.noise.seconds) if result.noise is not None else {}
    return {"s": seconds, "ok": bool(result), "stages": result.timings, "noise": noise}


def _padiff_call(pair, inputs) -> dict[str, Any]:
    import paddle
    import torch
    from padiff import auto_diff

    both = (
        {k: paddle.to_tensor(v) for k, v in inputs.items()},
        {k: torch.from_numpy(v) for k, v in inputs.items()},
    )
    start = time.perf_counter()
    ok = auto_diff(
        pair.paddle_model, pair.torch_model, both, options={"diff_phase": "forward", **TOLERANCE}
    )
    return {"s": time.perf_counter() - start, "ok": bool(ok)}


def _median_call(calls: list[dict[str, Any]]) -> dict[str, Any]:
    """The call of median time (an error if any call failed)."""
    failed = [c for c in calls if "s" not in c]
    if failed:
        return failed[0]
    return sorted(calls, key=lambda c: c["s"])[len(calls) // 2]


def _guarded(fn, *args) -> dict[str, Any]:
    try:
        return fn(*args)
    except Exception as err:  # PaDiff missing or failing on this pair: reported, not fatal
        return {"error": f"{type(err).__name__}: {err}"[:300]}


def run_case(tool: str, name: str, size: str) -> dict[str, Any]:
    pair = _get_pair(name, size)
    later = _new_values(pair.inputs, 1)
    row: dict[str, Any] = {"pair": f"{name}-{size}", "tool": tool}
    if tool == "warm":
        row["first"] = _ir_call(pair, later)
        row["peak_rss_mib"] = peak_rss_mib()
        return row
    if tool == "both":
        # PaDiff sets attributes on the models it checks (``padiff_path``...), which the export
        # cache rightly takes for a change: it gets models of its own (the same weights)
        twin = _get_pair(name, size)
        _eager_both(pair, pair.inputs)
        _, row["eager_both_s"] = timed(_eager_both, pair, pair.inputs, repeat=3)
        row["ir_first"] = _ir_call(pair, pair.inputs)
        row["padiff_first"] = _guarded(_padiff_call, twin, pair.inputs)
        # later calls: LATER_ROUNDS turns, each on new input values; the median of each tool
        rounds = []
        for seed in range(1, LATER_ROUNDS + 1):
            values = _new_values(pair.inputs, seed)
            rounds.append(
                (
                    _ir_call(pair, values),
                    _guarded(_padiff_call, twin, values),
                    _guarded(_auto_call, pair, values),
                )
            )
        row["ir_later"] = _median_call([ir for ir, _, _ in rounds])
        row["padiff_later"] = _median_call([pd for _, pd, _ in rounds])
        row["auto_later"] = _median_call([auto for _, _, auto in rounds])
        row["later_rounds"] = [[ir.get("s"), pd.get("s")] for ir, pd, _ in rounds]
        row["auto_rounds"] = [[auto.get("s"), pd.get("s")] for _, pd, auto in rounds]
    else:
        call = {"ir": _ir_call, "auto": _auto_call, "padiff": _padiff_call}[tool]
        row["first"] = _guarded(call, pair, pair.inputs)
        row["later"] = _guarded(call, pair, later)
    row["peak_rss_mib"] = peak_rss_mib()
    if tool == "ir":
        row["worker_peak_rss_mib"] = _worker_peak_mib()
    return row


def _worker_peak_mib() -> float:
    """Peak RSS of the paddle2onnx worker (a child process: not in this process's VmHWM)."""
    import resource

    from padiff_ir.exporters._conversion import stop_workers

    stop_workers()  # a child's peak is known once it has been waited for
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def run_batches(name: str, size: str, count: int) -> dict[str, Any]:
    import padiff_ir

    pair = _get_pair(name, size)
    batches = [pair.inputs] + [_new_values(pair.inputs, seed) for seed in range(1, count)]
    _eager_both(pair, pair.inputs)
    _, eager_s = timed(_eager_both, pair, pair.inputs, repeat=3)
    start = time.perf_counter()
    results = padiff_ir.match(
        pair.torch_model, pair.paddle_model, padiff_ir.Batches(batches), **TOLERANCE
    )
    total = time.perf_counter() - start
    stages: dict[str, float] = {}
    for result in results:
        for stage, seconds in result.timings.items():
            stages[stage] = stages.get(stage, 0.0) + seconds / len(results)
    per_batch = sum(results.check_s) / len(results)
    return {
        "pair": f"{name}-{size}",
        "batches": count,
        "ok": bool(results),
        "total_s": total,
        "prepare_s": results.prepare_s,
        "per_batch_s": per_batch,
        "per_batch_stages": stages,
        "eager_both_s": eager_s,
        "peak_rss_mib": peak_rss_mib(),
    }


def _fmt(call: dict[str, Any]) -> str:
    return f"{call['s']:.2f}" if "s" in call else "failed"


def _ratio(ir: dict[str, Any], pd: dict[str, Any]) -> str:
    return f"{ir['s'] / pd['s']:.2f}x" if "s" in ir and "s" in pd else "-"


def _print_auto_table(by_pair: dict[str, dict[str, Any]]) -> None:
    """``tolerance="auto"`` next to the fixed tolerance: later calls from the ``both`` process
    (taking turns with PaDiff), the first call and peak RSS from the ``auto`` process."""
    print(
        "| pair | auto first s | ratio first (vs PaDiff first) | auto later s | PaDiff later s "
        "| ratio later | fixed later s | auto / fixed later | later: noise s (shadow / judge) "
        "| peak RSS MiB (auto) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for pair, tools in by_pair.items():
        both, alone = tools.get("both", {}), tools.get("auto", {})
        if "auto_later" not in both:
            continue
        first = alone.get("first", {})
        later = both["auto_later"]
        noise = later.get("noise", {})
        print(
            f"| {pair} | {_fmt(first)} | {_ratio(first, both['padiff_first'])} "
            f"| {_fmt(later)} | {_fmt(both['padiff_later'])} "
            f"| {_ratio(later, both['padiff_later'])} | {_fmt(both['ir_later'])} "
            f"| {_ratio(later, both['ir_later'])} "
            f"| {later.get('stages', {}).get('noise', 0):.3f} ({noise.get('shadow', 0):.3f} "
            f"/ {noise.get('judge', 0):.3f}) | {alone.get('peak_rss_mib', 0):.0f} |"
        )


def print_tables(rows: list[dict[str, Any]]) -> None:
    print(
        "| pair | eager (both) s | padiff-ir first s | PaDiff first s | ratio first "
        "| padiff-ir later s | PaDiff later s | ratio later | later: export / run / compare+loc s "
        "| first, disk cache warm s | peak RSS MiB (ir / PaDiff) | paddle2onnx worker MiB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    by_pair: dict[str, dict[str, Any]] = {}
    for row in rows:
        if "batches" not in row:
            by_pair.setdefault(row.get("pair", row.get("case", "?")), {})[row.get("tool", "?")] = (
                row
            )
    for pair, tools in by_pair.items():
        both = tools.get("both", {})
        if "ir_first" not in both:
            print(f"| {pair} | error: {str(both.get('error', '?'))[-120:]} |")
            continue
        warm = tools.get("warm", {}).get("first", {})
        ir_rss = tools.get("ir", {}).get("peak_rss_mib", 0)
        worker_rss = tools.get("ir", {}).get("worker_peak_rss_mib", 0)
        pd_rss = tools.get("padiff", {}).get("peak_rss_mib", 0)
        st = both["ir_later"].get("stages", {})
        compare = st.get("compare", 0) + st.get("localize", 0)
        print(
            f"| {pair} | {both['eager_both_s']:.3f} | {_fmt(both['ir_first'])} "
            f"| {_fmt(both['padiff_first'])} | {_ratio(both['ir_first'], both['padiff_first'])} "
            f"| {_fmt(both['ir_later'])} | {_fmt(both['padiff_later'])} "
            f"| {_ratio(both['ir_later'], both['padiff_later'])} "
            f"| {st.get('export', 0):.2f} / {st.get('run', 0):.2f} / {compare:.2f} "
            f"| {_fmt(warm)} ({_ratio(warm, both['padiff_first'])}) "
            f"| {ir_rss:.0f} / {pd_rss:.0f} | {worker_rss:.0f} |"
        )
    print()
    _print_auto_table(by_pair)
    print()
    print(
        "| pair | N | prepare s | per batch s | eager (both) s | per batch / eager "
        "| (eager + run) / eager | compare+loc per batch s | total s | peak RSS MiB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        if "batches" not in row:
            continue
        if "per_batch_s" not in row:
            print(f"| {row.get('pair', row.get('case'))} | error |")
            continue
        st = row["per_batch_stages"]
        eager = row["eager_both_s"]
        print(
            f"| {row['pair']} | {row['batches']} | {row['prepare_s']:.2f} "
            f"| {row['per_batch_s']:.3f} | {eager:.3f} | {row['per_batch_s'] / eager:.2f}x "
            f"| {(st.get('eager', 0) + st.get('run', 0)) / eager:.2f}x "
            f"| {st.get('compare', 0) + st.get('localize', 0):.3f} | {row['total_s']:.1f} "
            f"| {row['peak_rss_mib']:.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--case")
    parser.add_argument("--pairs", help="comma-separated name:size (default: all)")
    parser.add_argument("--skip-batches", action="store_true")
    parser.add_argument("--only-batches", action="store_true")
    parser.add_argument("--tools", help=f"comma-separated processes per pair (default: {TOOLS})")
    args = parser.parse_args()
    if args.case:
        kind, name, size = args.case.split(":")[:3]
        if kind == "batches":
            row = run_batches(name, size, int(args.case.split(":")[3]))
        else:
            row = run_case(kind, name, size)
        print(json.dumps(row))
        return
    # the processes import padiff-ir from compiled bytecode, as an installed package is (PaDiff
    # is: pip compiles it); a machine that sets PYTHONDONTWRITEBYTECODE would otherwise have
    # every process compile padiff-ir's sources (about 0.1 s of each first call)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    import compileall

    import padiff_ir

    compileall.compile_dir(str(Path(padiff_ir.__file__).parent), quiet=1)
    cases = CASES
    if args.pairs:
        cases = [tuple(p.split(":")) for p in args.pairs.split(",")]
    rows = []
    if not args.only_batches:
        for name, size in cases:
            with tempfile.TemporaryDirectory(prefix="bench_match_cache_") as cache:
                for tool in args.tools.split(",") if args.tools else TOOLS:
                    # memory only (cold) but for the ir process filling the warm one's cache
                    os.environ["PADIFF_IR_CACHE_DIR"] = cache if tool in ("ir", "warm") else ""
                    row = run_in_subprocess(__file__, f"{tool}:{name}:{size}")
                    row.setdefault("pair", f"{name}-{size}")
                    row.setdefault("tool", tool)
                    rows.append(row)
                    print(row, file=sys.stderr)
    os.environ["PADIFF_IR_CACHE_DIR"] = ""
    if not args.skip_batches:
        for name, size, counts in BATCH_CASES:
            for count in counts:
                row = run_in_subprocess(__file__, f"batches:{name}:{size}:{count}")
                row.setdefault("pair", f"{name}-{size}")
                row.setdefault("batches", count)
                rows.append(row)
                print(row, file=sys.stderr)
    path = write_results("match", rows)
    print(f"results: {path}\n")
    print_tables(rows)


if __name__ == "__main__":
    main()
