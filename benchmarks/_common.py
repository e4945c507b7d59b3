"""Helpers shared by the benchmark scripts: run a case in a fresh process, write results."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def status_bytes(field: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``...), in bytes."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB.

    Read from ``VmHWM`` in ``/proc/self/status``: ``ru_maxrss`` of a child started by
    fork/exec starts at its parent's peak, which would overstate small cases.
    """
    try:
        return status_bytes("VmHWM") / 2**20
    except (OSError, RuntimeError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def environment() -> dict[str, Any]:
    import numpy
    import onnx
    import onnxruntime

    versions = {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
    }
    for name in ("torch", "paddle", "paddle2onnx"):
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = getattr(module, "__version__", "?")
    return {
        "versions": versions,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "date": time.strftime("%Y-%m-%d"),
    }


def run_in_subprocess(script: str, case: str, timeout: float = 1800) -> dict[str, Any]:
    """Run ``python script --case CASE`` in a fresh process; it prints one JSON line last."""
    proc = subprocess.run(
        [sys.executable, script, "--case", case],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"case": case, "error": (proc.stderr or proc.stdout).strip()[-800:]}
    return json.loads(lines[-1])


def write_results(name: str, rows: list[dict[str, Any]]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"environment": environment(), "rows": rows}, indent=2) + "\n")
    return path


def timed(fn, *args, repeat: int = 1, **kwargs) -> tuple[Any, float]:
    """Result of ``fn`` and its best wall time over ``repeat`` runs, in seconds."""
    best = float("inf")
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return result, best


def eager_forward(model: Any, framework: str, inputs: dict[str, Any]) -> Any:
    """One forward of a torch or paddle model without gradients, inputs by argument name."""
    if framework == "torch":
        import torch

        with torch.no_grad():
            return model(**{k: torch.from_numpy(v) for k, v in inputs.items()})
    import paddle

    with paddle.no_grad():
        return model(**{k: paddle.to_tensor(v) for k, v in inputs.items()})
