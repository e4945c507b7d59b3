"""Peak memory and time of ``run_all`` on a model with large activations.

A residual conv stack (``blocks`` x [Conv3x3 -> ReLU -> Add]) is exported from torch with the
dynamo exporter. Its weights are small (a few hundred KB) and its activations large (about 1.5 GB
over all node outputs with the defaults), so the process's peak RSS shows what holding the
intermediates costs. Each configuration runs in a fresh subprocess, which measures its own peak
RSS during the run (RSS counts ORT's arena and the pages of spilled files the process touched,
which ``tracemalloc`` would miss). The peak is ``VmHWM`` from ``/proc/self/status``, reset just
before the run by writing ``5`` to ``/proc/self/clear_refs``: ``getrusage(RUSAGE_SELF).ru_maxrss``
is not usable here because Linux carries it over from the parent through ``fork``/``execve``, so
every child would report at least the parent's peak (torch and the export included).

Every configuration records a digest of all tensor summaries; equal digests mean the recorded
activations are the same. Each configuration runs ``--repeat`` times (fresh processes); the table
shows the median time and the largest peak.

Usage::

    python benchmarks/bench_store.py [--blocks 40] [--batch 8] [--channels 16] [--size 160]
                                     [--repeat 3] [--only CONFIGURATION ...]

writes ``benchmarks/results/store.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import platform
import resource
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

from benchmarks._common import reset_peak_rss, status_bytes  # noqa: E402

logger = logging.getLogger("bench_store")

MIB = 1024 * 1024
RESULTS = Path(__file__).resolve().parent / "results" / "store.json"

# name -> (description, run_all options); "store_budget" builds the store given to run_all.
CONFIGURATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "infer_only": ("Runner.infer, graph outputs only (reference)", {}),
    "one_session_in_ram": (
        "run_all, one session, store keeps everything in RAM",
        {"memory_budget": 64 * 1024 * MIB},
    ),
    "one_session_spill_all": (
        "run_all, one session, store spills everything",
        {"memory_budget": 64 * 1024 * MIB, "store_budget": 0},
    ),
    "default": ("run_all defaults (1 GiB: store 512 MiB + segments 512 MiB)", {}),
    "budget_256MiB": ("run_all memory_budget=256 MiB", {"memory_budget": 256 * MIB}),
    "chunk8_spill_all": (
        "run_all chunk_size=8, store spills everything",
        {"chunk_size": 8, "store_budget": 0, "memory_budget": 64 * 1024 * MIB},
    ),
}


def export_model(path: Path, *, blocks: int, batch: int, channels: int, size: int) -> None:
    """Export the residual conv stack to ``path`` (ONNX) and its input to ``path.npy``."""
    import numpy as np
    import torch

    class ConvStack(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = torch.nn.Conv2d(3, channels, 3, padding=1)
            self.convs = torch.nn.ModuleList(
                torch.nn.Conv2d(channels, channels, 3, padding=1) for _ in range(blocks)
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.stem(x)
            for conv in self.convs:
                x = x + torch.relu(conv(x))
            return x.mean(dim=(2, 3))

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = ConvStack().eval()
        for conv in model.convs:  # keep the residual stream bounded
            conv.weight.data.mul_(0.1)
    generator = np.random.default_rng(0)
    x = generator.standard_normal((batch, 3, size, size)).astype(np.float32)
    program = torch.onnx.export(model, (torch.from_numpy(x),), dynamo=True, optimize=False)
    import onnx

    onnx.save_model(program.model_proto, str(path))
    np.save(str(path) + ".npy", x)


def _peak_rss() -> int:
    try:
        return status_bytes("VmHWM")
    except (OSError, RuntimeError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child(model_path: str, configuration: str) -> dict[str, Any]:
    """Run one configuration in this (fresh) process and measure it."""
    import numpy as np
    import onnx

    from padiff_ir.runtime import ActivationStore, Runner

    model = onnx.load(model_path)
    x = np.load(model_path + ".npy")
    feeds = {model.graph.input[0].name: x}
    options = dict(CONFIGURATIONS[configuration][1])
    import onnxruntime  # noqa: F401  (imported before measuring)

    peak_reset = reset_peak_rss()
    rss_before = status_bytes("VmRSS")
    cpu_start = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    runner = Runner(model)
    result: dict[str, Any] = {}
    if configuration == "infer_only":
        outputs = runner.infer(feeds)
        seconds = time.perf_counter() - start
        digest = hashlib.sha256(
            b"".join(np.ascontiguousarray(v).tobytes() for v in outputs.values())
        ).hexdigest()
        result.update(
            tensors=len(outputs), activation_bytes=sum(v.nbytes for v in outputs.values())
        )
    else:
        if "store_budget" in options:
            options["store"] = ActivationStore(options.pop("store_budget"))
        store = runner.run_all(feeds, **options)
        seconds = time.perf_counter() - start
        summaries = [store.summary(name).to_dict() for name in store]
        digest = hashlib.sha256(json.dumps(summaries, sort_keys=True).encode()).hexdigest()
        result.update(
            tensors=len(store),
            activation_bytes=store.nbytes_in_memory + store.nbytes_on_disk,
            store_in_memory=store.nbytes_in_memory,
            store_on_disk=store.nbytes_on_disk,
        )
        store.close()
    runner.close()
    peak = _peak_rss()
    cpu_end = resource.getrusage(resource.RUSAGE_SELF)
    cpu_seconds = (cpu_end.ru_utime + cpu_end.ru_stime) - (cpu_start.ru_utime + cpu_start.ru_stime)
    result.update(
        configuration=configuration,
        description=CONFIGURATIONS[configuration][0],
        seconds=round(seconds, 3),
        cpu_seconds=round(cpu_seconds, 3),
        rss_before=rss_before,
        peak_reset=peak_reset,
        peak_rss=peak,
        peak_rss_increase=peak - rss_before,
        digest=digest[:16],
    )
    return result


def _combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One row from repeated runs: median time, largest peak, all times kept."""
    if len({run["digest"] for run in runs}) != 1:
        raise RuntimeError(f"{runs[0]['configuration']}: repeated runs recorded different values")
    combined = dict(runs[0])
    combined["seconds"] = statistics.median(run["seconds"] for run in runs)
    combined["seconds_all"] = [run["seconds"] for run in runs]
    combined["cpu_seconds"] = statistics.median(run["cpu_seconds"] for run in runs)
    for key in ("peak_rss", "peak_rss_increase"):
        combined[key] = max(run[key] for run in runs)
    return combined


def _table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| configuration | peak RSS (MiB) | peak - RSS before run (MiB) | median time (s) "
        "| median CPU time (s) | store RAM (MiB) | store disk (MiB) | tensors | digest |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['configuration']} | {r['peak_rss'] / MIB:.0f} | "
            f"{r['peak_rss_increase'] / MIB:.0f} | {r['seconds']:.2f} | {r['cpu_seconds']:.2f} | "
            f"{r.get('store_in_memory', 0) / MIB:.0f} | {r.get('store_on_disk', 0) / MIB:.0f} | "
            f"{r['tensors']} | {r['digest']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=40)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per configuration")
    parser.add_argument("--only", nargs="*", choices=sorted(CONFIGURATIONS))
    parser.add_argument(
        "--child", nargs=2, metavar=("MODEL", "CONFIGURATION"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.child:
        json.dump(child(*args.child), sys.stdout)
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    root = Path(__file__).resolve().parent.parent
    environment = {
        **os.environ,
        "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    results = []
    with tempfile.TemporaryDirectory(prefix="bench_store_") as directory:
        model_path = Path(directory) / "conv_stack.onnx"
        logger.info("exporting the model ...")
        export_model(
            model_path, blocks=args.blocks, batch=args.batch, channels=args.channels, size=args.size
        )
        for configuration in args.only or CONFIGURATIONS:
            runs = []
            for repeat in range(args.repeat):
                logger.info("running %s (%d/%d) ...", configuration, repeat + 1, args.repeat)
                completed = subprocess.run(
                    [sys.executable, __file__, "--child", str(model_path), configuration],
                    capture_output=True,
                    text=True,
                    check=False,
                    env=environment,
                )
                if completed.returncode != 0:
                    logger.error("%s failed:\n%s", configuration, completed.stderr[-4000:])
                    return 1
                runs.append(json.loads(completed.stdout))
            results.append(_combine(runs))

    import onnxruntime

    report = {
        "model": {
            "kind": "residual conv stack, blocks x (Conv3x3 -> ReLU -> Add), torch dynamo export",
            "blocks": args.blocks,
            "batch": args.batch,
            "channels": args.channels,
            "size": args.size,
        },
        "repeat": args.repeat,
        "environment": {
            "python": platform.python_version(),
            "onnxruntime": onnxruntime.__version__,
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
        },
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(_table(results))
    print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
