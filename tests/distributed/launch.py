"""Start ``world`` worker processes on a free localhost port, as torchrun or paddle's launcher
would (their environment variables), wait for all, and kill every one left on failure."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _env(framework: str, rank: int, world: int, ports: list[int]) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    if framework == "torch":
        env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(ports[0]))
        env.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    else:
        endpoints = ",".join(f"127.0.0.1:{p}" for p in ports[:world])
        env.update(
            PADDLE_TRAINER_ID=str(rank),
            PADDLE_TRAINERS_NUM=str(world),
            PADDLE_TRAINER_ENDPOINTS=endpoints,
            PADDLE_CURRENT_ENDPOINT=f"127.0.0.1:{ports[rank]}",
            PADDLE_MASTER=f"127.0.0.1:{ports[world]}",
            PADDLE_DISTRI_BACKEND="gloo",
            PADDLE_LOCAL_RANK=str(rank),
        )
    return env


def launch(
    framework: str,
    world: int,
    args: list[str],
    timeout: float = 300,
    module: str = "tests.distributed.worker",
) -> None:
    """Run ``python -m MODULE FRAMEWORK ARGS`` on ``world`` ranks.

    Raises:
        RuntimeError: a rank failed or timed out (with the tail of its output).
    """
    ports = _free_ports(world + 1)
    procs = []
    try:
        for rank in range(world):
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", module, framework, *args],
                    env=_env(framework, rank, world, ports),
                    cwd=ROOT,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
        failed = []
        for rank, proc in enumerate(procs):
            out, _ = proc.communicate(timeout=timeout)
            if proc.returncode:
                failed.append(f"rank {rank} exited {proc.returncode}:\n{out[-3000:]}")
        if failed:
            raise RuntimeError("\n".join(failed))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
