"""Sharded runs: capture overhead, compare throughput and scaling, parallel bugs named.

Every sharded run is a real gloo process group on this machine (``tests/distributed``: a torch
decoder block stack with column/row-parallel Linears written with torch.distributed, and its
paddle port sharded with paddle's own collectives), started as torchrun and paddle's launcher
would start them.

* **overhead**: a tensor-parallel training step (world 2) with ``capture_ranks`` recording a
  digest of every module input and output, of the gradients of every module output and input
  and of every parameter's gradient (and of the forward tensors only), against the plain step;
  alternating rounds of ``--steps`` steps, the median step of each, in wall time and in CPU
  time of the thread that runs the step and the capture (what other processes on a shared
  machine do not inflate; goal: at most 1.5x).
* **throughput**: two runs captured with full tensors for every module at every step; their
  dump (GB of ``.npy`` files, both runs) over the seconds ``compare_runs`` takes, in this
  process, 2 local processes, and Ray with 1 and 2 workers (Ray started before the clock). The
  correct pair is decided by digests (nothing read in full); the pair with a bug in layer 0
  reads most tensors in full.
* **bugs**: each injected parallel bug (wrong split axis, missing all-reduce, gather on the
  wrong dim) at world 2, and a missing all-reduce at world 4 (tensor 2 x data 2), against the
  one-process original; the correct runs (torch at world 2 and 4, paddle at world 2) against
  the original and the paddle port: the culprits found, their ranks, false culprits.

Usage::

    python benchmarks/bench_sharded.py [--rounds 3] [--steps 5] [--skip-ray] [--only overhead]

writes ``benchmarks/results/sharded.json`` and prints markdown tables (``--only``: that part
measured again, the others kept from the committed results).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._common import environment  # noqa: E402
from tests.distributed.launch import launch  # noqa: E402
from tests.distributed.models import BUGS, Config, batch, config_from, master_weights  # noqa: E402

logger = logging.getLogger("bench_sharded")
RESULTS = ROOT / "benchmarks" / "results" / "sharded.json"
OVERHEAD_CONFIGS = {
    "h256 ffn1024 4 layers, batch 8x64": (
        "hidden=256,heads=8,ffn=1024,layers=4,batch=8,seq=64,vocab=256"
    ),
    "h512 ffn2048 4 layers, batch 8x128": (
        "hidden=512,heads=8,ffn=2048,layers=4,batch=8,seq=128,vocab=512"
    ),
}
THROUGHPUT_CONFIG = "hidden=512,heads=8,ffn=2048,layers=4,batch=8,seq=128,vocab=512"


def _overhead(work: Path, rounds: int, steps: int) -> list[dict[str, Any]]:
    rows = []
    for name, config in OVERHEAD_CONFIGS.items():
        out = work / f"overhead-{len(rows)}"
        launch(
            "torch",
            2,
            [str(out), "--rounds", str(rounds), "--steps", str(steps), "--config", config],
            timeout=1200,
        )
        data = json.loads((out / "overhead.json").read_text())
        row: dict[str, Any] = {"model": name, "world": 2, "steps_each": len(data["plain"])}
        for column, clock in (("wall", 0), ("cpu", 1)):
            plain = statistics.median(t[clock] for t in data["plain"])
            captured = statistics.median(t[clock] for t in data["captured"])
            forward = statistics.median(t[clock] for t in data["forward"])
            row[f"plain_{column}_s"] = round(plain, 4)
            row[f"captured_{column}_s"] = round(captured, 4)
            row[f"{column}_ratio"] = round(captured / plain, 2)
            row[f"forward_only_{column}_ratio"] = round(forward / plain, 2)
        rows.append(row)
        shutil.rmtree(out)
    return rows


def _reference(
    out: Path, cfg: Config, steps: int, window: tuple[str, ...], all_steps: bool
) -> None:
    import torch

    from padiff_ir.distributed import Window, capture_ranks
    from tests.distributed import torch_models

    model = torch_models.unsharded(cfg, master_weights(cfg))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    kept = tuple(range(steps)) if all_steps else (0,)
    with capture_ranks(model, out, window=Window(window, kept)) as cap:
        for step in range(steps):
            loss = model(torch.from_numpy(batch(cfg, step))).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            cap.next_step()


def _dump_bytes(*roots: Path) -> int:
    return sum(p.stat().st_size for root in roots for p in root.rglob("*.npy"))


def _throughput(work: Path, skip_ray: bool) -> list[dict[str, Any]]:
    from padiff_ir.distributed import compare_runs

    cfg = config_from(THROUGHPUT_CONFIG)
    ref = work / "tp-reference"
    _reference(ref, cfg, 2, ("",), all_steps=True)
    launch(
        "torch",
        2,
        [
            str(work / "tp"),
            *("--scenarios", "correct,wrong_axis", "--window", "layers,norm,head"),
            *("--all-steps", "--config", THROUGHPUT_CONFIG),
        ],
        timeout=1200,
    )
    engines = [("local", 1), ("local", 2), *([] if skip_ray else [("ray", 1), ("ray", 2)])]
    rows = []
    for scenario in ("correct", "wrong_axis"):
        run = work / "tp" / scenario
        dumped = _dump_bytes(ref, run)
        for engine, workers in engines:
            seconds, result = _timed_compare(ref, run, engine, workers, compare_runs)
            rows.append(
                {
                    "pair": f"original vs tp2 {scenario}",
                    "engine": engine,
                    "workers": workers,
                    "dump_gb": round(dumped / 1e9, 3),
                    "read_in_full_gb": round(result.bytes_read / 1e9, 3),
                    "seconds": round(seconds, 2),
                    "dump_gb_per_s": round(dumped / 1e9 / seconds, 3),
                    "read_gb_per_s": round(result.bytes_read / 1e9 / seconds, 3),
                    "tasks": result.tasks,
                    "culprits": [c.module_a for c in result.culprits],
                }
            )
            logger.info("%s", rows[-1])
    return rows


def _timed_compare(ref: Path, run: Path, engine: str, workers: int, compare_runs: Any) -> Any:
    started = False
    if engine == "ray":
        import ray

        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        started = True
    try:
        start = time.perf_counter()
        result = compare_runs(ref, run, engine=engine, workers=workers, window=4)
        return time.perf_counter() - start, result
    finally:
        if started:
            ray.shutdown()


def _bugs(work: Path) -> list[dict[str, Any]]:
    import paddle

    from padiff_ir.distributed import Window, capture_ranks, compare_runs
    from tests.distributed import paddle_models

    cfg = Config()
    _reference(work / "reference", cfg, 2, ("",), all_steps=False)
    launch(
        "torch",
        2,
        [
            str(work / "tp2"),
            "--scenarios",
            ",".join(("correct", *BUGS)),
            "--window",
            "layers.0,head",
        ],
    )
    launch("torch", 4, [str(work / "tp2dp2"), "--scenarios", "correct,no_allreduce"])
    launch("paddle", 2, [str(work / "paddle_tp2")])
    port = paddle_models.unsharded(cfg, master_weights(cfg))
    with paddle.no_grad(), capture_ranks(port, work / "port", window=Window(("",))) as cap:
        port(paddle.to_tensor(batch(cfg, 0)))
        cap.next_step()
    cases = [
        ("torch original", "reference", "torch tp2 correct", "tp2/correct", None),
        ("torch original", "reference", "torch tp2 x dp2 correct", "tp2dp2/correct", None),
        ("torch original", "reference", "paddle tp2 correct", "paddle_tp2/correct", None),
        ("paddle port", "port", "torch tp2 correct", "tp2/correct", None),
        *[("torch original", "reference", f"torch tp2 {b}", f"tp2/{b}", b) for b in BUGS],
        (
            "torch original",
            "reference",
            "torch tp2 x dp2 no_allreduce",
            "tp2dp2/no_allreduce",
            "no_allreduce",
        ),
        ("paddle port", "port", "torch tp2 gather_dim", "tp2/gather_dim", "gather_dim"),
    ]
    rows = []
    for name_a, dir_a, name_b, dir_b, bug in cases:
        tol = 1e-4 if "paddle" in name_a + name_b else 1e-5
        result = compare_runs(work / dir_a, work / dir_b, atol=tol, rtol=tol)
        found = [c.module_a for c in result.culprits]
        expected = [BUGS[bug]] if bug else []
        rows.append(
            {
                "a": name_a,
                "b": name_b,
                "bug": bug or "",
                "expected": expected,
                "culprits": [c.describe() for c in result.culprits],
                "ranks": [list(c.ranks) for c in result.culprits],
                "named": found == expected,
                "false_culprits": len([f for f in found if f not in expected]),
                "tensors": result.compared,
            }
        )
    return rows


def _tables(results: dict[str, Any]) -> str:
    lines = [
        "| model (world 2) | plain step, wall s | captured, wall s | wall ratio | plain step, "
        "CPU s | captured, CPU s | CPU ratio | forward only: wall, CPU ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['model']} | {r['plain_wall_s']} | {r['captured_wall_s']} | {r['wall_ratio']}x | "
        f"{r['plain_cpu_s']} | {r['captured_cpu_s']} | {r['cpu_ratio']}x | "
        f"{r.get('forward_only_wall_ratio', '-')}x, {r.get('forward_only_cpu_ratio', '-')}x |"
        for r in results["overhead"]
    ]
    lines += [
        "",
        "| pair | engine | workers | dump GB | read in full GB | s | dump GB/s | read GB/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['pair']} | {r['engine']} | {r['workers']} | {r['dump_gb']} | "
        f"{r['read_in_full_gb']} | {r['seconds']} | {r['dump_gb_per_s']} | {r['read_gb_per_s']} |"
        for r in results["throughput"]
    ]
    lines += [
        "",
        "| A | B | bug | culprits (step, module, style, placement, ranks) | named | false |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['a']} | {r['b']} | {r['bug'] or '-'} | {'; '.join(r['culprits']) or '-'} | "
        f"{'yes' if r['named'] else 'NO'} | {r['false_culprits']} |"
        for r in results["bugs"]
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--only", choices=("bugs", "overhead", "throughput"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    work = Path(tempfile.mkdtemp(prefix="bench_sharded-"))
    parts = {
        "bugs": lambda: _bugs(work),
        "overhead": lambda: _overhead(work, args.rounds, args.steps),
        "throughput": lambda: _throughput(work, args.skip_ray),
    }
    try:
        if args.only:
            results = json.loads(RESULTS.read_text())
            results[args.only] = parts[args.only]()
            results[f"environment_{args.only}"] = environment()
        else:
            results = {"environment": environment(), **{k: run() for k, run in parts.items()}}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(_tables(results))


if __name__ == "__main__":
    main()
