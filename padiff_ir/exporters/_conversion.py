"""The parent's side of the paddle2onnx worker (:mod:`._paddle2onnx_worker`).

A child process that has imported paddle2onnx (about a second: it imports paddle) converts
one saved program after another. :func:`start_worker` starts it ahead of need (a paddle export
calls it before ``paddle.jit.save``, so the import overlaps the trace); :func:`start_conversion`
hands it a job and returns at once, :meth:`Conversion.wait` waits for the answer. The worker
is kept for the next export of the process. No worker outlives the process: an interrupted
conversion (Ctrl-C, SIGTERM as ``SystemExit``) kills its worker, the idle one is stopped at
exit, and a worker whose parent died sees its stdin end and exits.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
from typing import Any

__all__ = ["Conversion", "ConversionFailure", "start_conversion", "start_worker", "stop_workers"]

logger = logging.getLogger(__name__)

#: A worker whose memory grew past this after a job (a large model's weights) is not kept.
MAX_IDLE_RSS_MIB = 1024


class ConversionFailure(Exception):
    """paddle2onnx failed (``returncode`` 1) or its worker died (the signal, negative)."""

    def __init__(self, log: str, returncode: int) -> None:
        super().__init__(log)
        self.log = log
        self.returncode = returncode


class _Worker:
    """One child process running :func:`._paddle2onnx_worker.serve`."""

    def __init__(self) -> None:
        env = dict(os.environ, GLOG_minloglevel="2")
        command = [sys.executable, "-m", "padiff_ir.exporters._paddle2onnx_worker"]
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self.owner = os.getpid()
        with _spawned_lock:
            _spawned.add(self)
        logger.debug("paddle2onnx worker %d started", self.proc.pid)

    def alive(self) -> bool:
        """Running, and this process's own (not inherited through a fork)."""
        return self.owner == os.getpid() and self.proc.poll() is None

    def send(self, job: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()

    def answer(self) -> dict[str, Any] | None:
        """The answer to the job sent; None when the worker died instead."""
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        return json.loads(line) if line.strip() else None

    def rss_mib(self) -> float:
        try:
            with open(f"/proc/{self.proc.pid}/status", encoding="ascii") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def stop(self) -> None:
        """Close its stdin (it exits at the end of its current job); killed if it lingers."""
        with _spawned_lock:
            _spawned.discard(self)
        if self.owner != os.getpid():
            return
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.kill()
        self._close_pipes()

    def kill(self) -> None:
        with _spawned_lock:
            _spawned.discard(self)
        if self.owner != os.getpid():
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._close_pipes()

    def _close_pipes(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


_lock = threading.Lock()  # guards _idle
_idle: _Worker | None = None
_spawned_lock = threading.Lock()  # guards _spawned: every live worker of this process
_spawned: set[_Worker] = set()


def start_worker() -> None:
    """Start the shared worker now unless one is ready: its import overlaps the caller's work."""
    global _idle
    with _lock:
        if _idle is not None and _idle.alive():
            return
        _idle = _Worker()


def _take() -> _Worker:
    global _idle
    with _lock:
        worker, _idle = _idle, None
    if worker is not None and worker.alive():
        return worker
    return _Worker()


def _give_back(worker: _Worker) -> None:
    global _idle
    with _lock:
        keep = _idle is None and worker.alive() and worker.rss_mib() <= MAX_IDLE_RSS_MIB
        if keep:
            _idle = worker
    if not keep:
        worker.stop()


def stop_workers() -> None:
    """Stop every worker of this process: the idle one, and any still converting (killed)."""
    global _idle
    with _lock:
        idle, _idle = _idle, None
    with _spawned_lock:
        busy = [worker for worker in _spawned if worker is not idle]
    if idle is not None:
        idle.stop()
    for worker in busy:
        worker.kill()


atexit.register(stop_workers)


class Conversion:
    """A conversion under way in a worker; :meth:`wait` for it, :meth:`cancel` to give up."""

    def __init__(self, worker: _Worker, log_file: str) -> None:
        self._worker: _Worker | None = worker
        self._log_file = log_file

    def _log(self) -> str:
        try:
            with open(self._log_file, encoding="utf-8", errors="replace") as handle:
                return handle.read()
        except OSError:
            return ""

    def wait(self) -> str:
        """The conversion's log once it is done.

        Raises:
            ConversionFailure: paddle2onnx failed or its process died.
        """
        worker = self._worker
        if worker is None:
            raise ConversionFailure("the conversion was cancelled", 1)
        try:
            answer = worker.answer()
        except BaseException:
            self.cancel()
            raise
        self._worker = None
        log = self._log()
        for line in log.splitlines():
            if line.strip():
                logger.debug("paddle2onnx: %s", line)
        if answer is None:
            code = worker.proc.wait()
            worker.kill()
            raise ConversionFailure(log, code or 1)
        _give_back(worker)
        if not answer.get("ok"):
            raise ConversionFailure(f"{log}\n{answer.get('error', '')}".strip(), 1)
        return log

    def cancel(self) -> None:
        """Kill the worker if the conversion is still going on (it is not reused)."""
        if self._worker is not None:
            self._worker.kill()
            self._worker = None


def start_conversion(
    model_file: str, params_file: str, out_file: str, opset: int, tmp: str
) -> Conversion:
    """Hand the saved program to a worker (the shared one when idle); returns at once."""
    worker = _take()
    log_file = os.path.join(tmp, "paddle2onnx.log")
    job = {
        "model": model_file,
        "params": params_file,
        "out": out_file,
        "opset": opset,
        "log": log_file,
        "tmp": tmp,
    }
    try:
        worker.send(job)
    except OSError:  # it died since: one more try with a new one
        worker.kill()
        worker = _Worker()
        worker.send(job)
    return Conversion(worker, log_file)
