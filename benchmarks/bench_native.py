"""Cost of one training step under ``auto_diff``, against a plain step and against PaDiff 0.2.0.

For the zoo's ViTPose pair (``tiny`` and ``base``, the ViTPose-B shape) and each optimizer (SGD,
Adam) one training step is: forward of the torch and the paddle model on one keypoint sample,
the JointsMSE loss, backward, optimizer step. Three runners, each in a fresh process:

* ``plain``: the step of both models, nothing else (the reference);
* ``padiff_ir``: ``padiff_ir.native.auto_diff(torch_model, paddle_model, inp, loss_fn=...,
  optimizer=..., auto_init=False)``, one step per call as in the seed's dataloader loop
  (per-layer outputs, output and input gradients, parameter gradients, weights and optimizer
  state all compared);
* ``padiff_020``: PaDiff 0.2.0's ``auto_diff(paddle_model, torch_model, inp, auto_weights=False,
  options=..., loss_fn=..., optimizer=...)`` on the same pair and optimizers.

Each process builds the pair, warms up with one plain step and one call of its runner (the first
call, with the matching and the weight copy, is timed separately), then alternates ``--repeat``
plain steps with steps of its runner, so the ratio compares steps measured side by side under
the same machine load; CPU time (``time.process_time``, all threads of the process) is recorded
too, as it depends less on other processes' load. The peak is ``VmHWM`` from
``/proc/self/status``, reset by writing ``5`` to ``/proc/self/clear_refs`` after the warm-up
(``ru_maxrss`` would carry over the parent's).
Both comparison tools use compare mode ``mean`` with ``atol=1e-6, rtol=1e-4``.

Usage::

    python benchmarks/bench_native.py [--sizes tiny base] [--optimizers sgd adam]
                                      [--runners plain padiff_ir padiff_020] [--repeat 5]

writes ``benchmarks/results/native.json`` and prints a markdown table. PaDiff 0.2.0 is imported
only in its own child process (it changes torch's and paddle's print options at import).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._common import reset_peak_rss, status_bytes, write_results  # noqa: E402

logger = logging.getLogger("bench_native")

RUNNERS = ("plain", "padiff_ir", "padiff_020")
TOLERANCE = {"atol": 1e-6, "rtol": 1e-4, "compare_mode": "mean"}
LEARNING_RATES = {"sgd": 0.01, "adam": 1e-4}


# ---------------------------------------------------------------------------------------------
# The child process: one (size, optimizer, runner).
# ---------------------------------------------------------------------------------------------


def _setup(size: str, optimizer: str) -> dict[str, Any]:
    import paddle
    import torch

    from padiff_ir.zoo import get_pair
    from padiff_ir.zoo.data import PaddleJointsMSELoss, TorchJointsMSELoss, keypoint_sample

    pair = get_pair("vitpose", size)
    torch_model, paddle_model = pair.torch_model, pair.paddle_model
    sample = keypoint_sample(0)
    x = sample.image[None]
    torch_target = torch.from_numpy(sample.target[None])
    torch_weight = torch.from_numpy(sample.target_weight[None])
    paddle_target = paddle.to_tensor(sample.target[None])
    paddle_weight = paddle.to_tensor(sample.target_weight[None])
    torch_criterion, paddle_criterion = TorchJointsMSELoss(), PaddleJointsMSELoss()
    lr = LEARNING_RATES[optimizer]
    if optimizer == "sgd":
        torch_opt = torch.optim.SGD(torch_model.parameters(), lr=lr)
        paddle_opt = paddle.optimizer.SGD(learning_rate=lr, parameters=paddle_model.parameters())
    else:
        torch_opt = torch.optim.Adam(torch_model.parameters(), lr=lr)
        paddle_opt = paddle.optimizer.Adam(learning_rate=lr, parameters=paddle_model.parameters())
    x_torch, x_paddle = torch.from_numpy(x), paddle.to_tensor(x)

    def torch_loss(output: Any) -> Any:
        return torch_criterion(output, torch_target, torch_weight)

    def paddle_loss(output: Any) -> Any:
        return paddle_criterion(output, paddle_target, paddle_weight)

    def plain_step() -> None:
        loss = torch_loss(torch_model(x_torch))
        loss.backward()
        torch_opt.step()
        torch_opt.zero_grad()
        loss = paddle_loss(paddle_model(x_paddle))
        loss.backward()
        paddle_opt.step()
        paddle_opt.clear_grad()

    parameters = sum(p.numel() for p in torch_model.parameters())
    return {
        "torch_model": torch_model,
        "paddle_model": paddle_model,
        "x_torch": x_torch,
        "x_paddle": x_paddle,
        "torch_loss": torch_loss,
        "paddle_loss": paddle_loss,
        "torch_opt": torch_opt,
        "paddle_opt": paddle_opt,
        "plain_step": plain_step,
        "parameters": int(parameters),
    }


def _padiff_ir_step(ctx: dict[str, Any], first: bool) -> dict[str, Any]:
    from padiff_ir.native import auto_diff

    result = auto_diff(
        ctx["torch_model"],
        ctx["paddle_model"],
        ({"x": ctx["x_paddle"]}, {"x": ctx["x_torch"]}),
        auto_init=first,
        loss_fn=[ctx["paddle_loss"], ctx["torch_loss"]],
        optimizer=[ctx["paddle_opt"], ctx["torch_opt"]],
        **TOLERANCE,
    )
    step = result.steps[0]
    counts = {name: total for name, (_, total) in step.counts().items()}
    return {
        "ok": bool(result),
        "timings": {k: round(v, 4) for k, v in result.timings.items()},
        "compared": counts,
        "first_difference": (
            result.first_difference.message[:300] if result.first_difference else None
        ),
    }


def _padiff_020_step(ctx: dict[str, Any], first: bool) -> dict[str, Any]:
    from padiff import auto_diff  # PaDiff 0.2.0; sets print options in this process only

    options = {
        "atol": TOLERANCE["atol"],
        "rtol": TOLERANCE["rtol"],
        "compare_mode": TOLERANCE["compare_mode"],
        "diff_phase": "both",
    }
    ok = auto_diff(
        ctx["paddle_model"],
        ctx["torch_model"],
        ({"x": ctx["x_paddle"]}, {"x": ctx["x_torch"]}),
        auto_weights=first,
        options=options,
        loss_fn=[ctx["paddle_loss"], ctx["torch_loss"]],
        optimizer=[ctx["paddle_opt"], ctx["torch_opt"]],
        steps=1,
    )
    return {"ok": bool(ok)}


def child(size: str, optimizer: str, runner: str, repeat: int) -> dict[str, Any]:
    """Measure one configuration in this (fresh) process."""
    row: dict[str, Any] = {
        "size": size,
        "optimizer": optimizer,
        "runner": runner,
        "repeat": repeat,
        "load_before": os.getloadavg()[0],
    }
    start = time.perf_counter()
    ctx = _setup(size, optimizer)
    row["parameters"] = ctx["parameters"]
    row["setup_s"] = time.perf_counter() - start
    plain_step = ctx["plain_step"]
    tool = {"padiff_ir": _padiff_ir_step, "padiff_020": _padiff_020_step}.get(runner)
    plain_step()  # warm-up
    if tool is not None:
        start = time.perf_counter()
        row["first_call"] = tool(ctx, True)
        row["first_call_s"] = time.perf_counter() - start
    row["peak_reset"] = reset_peak_rss()
    plain_times, tool_times, plain_cpu, tool_cpu = [], [], [], []
    details: dict[str, Any] = {}
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        plain_step()
        plain_times.append(time.perf_counter() - start)
        plain_cpu.append(time.process_time() - cpu)
        if tool is not None:
            start, cpu = time.perf_counter(), time.process_time()
            details = tool(ctx, False)
            tool_times.append(time.perf_counter() - start)
            tool_cpu.append(time.process_time() - cpu)
    row["plain_s"] = statistics.median(plain_times)
    row["plain_cpu_s"] = statistics.median(plain_cpu)
    row["plain_times"] = plain_times
    if tool is not None:
        row["step_s"] = statistics.median(tool_times)
        row["step_cpu_s"] = statistics.median(tool_cpu)
        row["step_times"] = tool_times
        row["ratio"] = row["step_s"] / row["plain_s"]
        row["cpu_ratio"] = row["step_cpu_s"] / row["plain_cpu_s"]
        row.update(details)
    row["peak_rss_mib"] = status_bytes("VmHWM") / 2**20
    row["load_after"] = os.getloadavg()[0]
    row["versions"] = {
        name: str(getattr(sys.modules[name], "__version__", "?"))
        for name in ("torch", "paddle", "numpy", "padiff")
        if name in sys.modules
    }
    return row


# ---------------------------------------------------------------------------------------------
# The parent: one child per configuration, then the table.
# ---------------------------------------------------------------------------------------------


def _run_child(
    size: str, optimizer: str, runner: str, repeat: int, timeout: float
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench_native_") as workdir:
        out = Path(workdir) / "row.json"
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            f"{size}:{optimizer}:{runner}",
            "--repeat",
            str(repeat),
            "--out",
            str(out),
        ]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        try:
            proc = subprocess.run(
                command,
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {
                "size": size,
                "optimizer": optimizer,
                "runner": runner,
                "error": f"timed out after {timeout:.0f} s",
            }
        if proc.returncode != 0 or not out.exists():
            text = (proc.stderr or proc.stdout).strip()
            return {"size": size, "optimizer": optimizer, "runner": runner, "error": text[-1500:]}
        return json.loads(out.read_text())


def _fmt(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| model | optimizer | runner | plain step (s) | step under runner (s) | ratio | "
        "CPU-time ratio | first call (s) | peak RSS (MiB) | verdict |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        model = f"ViTPose-{row['size']}"
        if "error" in row:
            lines.append(
                f"| {model} | {row['optimizer']} | {row['runner']} | - | - | - | - | - "
                f"| - | error: {row['error'].splitlines()[-1][:80]} |"
            )
            continue
        verdict = "-" if "ok" not in row else ("aligned" if row["ok"] else "diverged")
        lines.append(
            f"| {model} | {row['optimizer']} | {row['runner']} | {_fmt(row['plain_s'])} | "
            f"{_fmt(row.get('step_s'))} | {_fmt(row.get('ratio'), 2)} | "
            f"{_fmt(row.get('cpu_ratio'), 2)} | {_fmt(row.get('first_call_s'), 2)} | "
            f"{row['peak_rss_mib']:.0f} | {verdict} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["tiny", "base"])
    parser.add_argument(
        "--optimizers", nargs="+", default=["sgd", "adam"], choices=sorted(LEARNING_RATES)
    )
    parser.add_argument("--runners", nargs="+", default=list(RUNNERS), choices=RUNNERS)
    parser.add_argument("--repeat", type=int, default=5, help="steps per runner (tiny)")
    parser.add_argument("--repeat-base", type=int, default=2, help="steps per runner (base)")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        logging.basicConfig(level=logging.ERROR)
        size, optimizer, runner = args.child.split(":")
        row = child(size, optimizer, runner, args.repeat)
        Path(args.out).write_text(json.dumps(row))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rows = []
    for size in args.sizes:
        repeat = args.repeat if size == "tiny" else args.repeat_base
        for optimizer in args.optimizers:
            for runner in args.runners:
                logger.info("running ViTPose-%s %s %s ...", size, optimizer, runner)
                row = _run_child(size, optimizer, runner, repeat, args.timeout)
                logger.info(
                    "  %s",
                    {
                        k: row.get(k)
                        for k in ("plain_s", "step_s", "ratio", "peak_rss_mib", "ok", "error")
                    },
                )
                rows.append(row)
    import paddle  # noqa: F401 - so the environment records the framework versions
    import torch  # noqa: F401

    path = write_results("native", rows)
    print(table(rows))
    print(f"\nwritten to {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
