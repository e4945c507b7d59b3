"""paddle2onnx in a child process: ``python -m padiff_ir.exporters._paddle2onnx_worker``.

paddle2onnx converts in C++: it writes its logs to file descriptor 1, raises ``SystemExit`` on
some failures and aborts the whole process (SIGABRT) on others. Running it in a child process
keeps the user's process alive whatever happens and lets the parent route the logs to
``logging``.

The child imports paddle2onnx once (about a second: it imports paddle) and then converts one
job after another, so a process pays that import once (:mod:`._conversion` is the parent's
side). Each job is a JSON line on stdin, ``{"model", "params", "out", "opset", "log", "tmp"}``;
its logs (fd 1 and 2) go to the job's ``log`` file and ``tmp`` is its temporary folder; the
answer is one JSON line, ``{"ok": true}`` or ``{"ok": false, "error": ...}``, on the pipe that
was fd 1 when the child started. The child ends at the end of stdin: when the parent closes it,
or exits, or dies. It ignores SIGINT (a terminal's Ctrl-C reaches it too): the parent kills a
worker whose conversion it gives up.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import tempfile
from collections.abc import Iterator
from typing import Any, TextIO


@contextlib.contextmanager
def _output_to(path: str) -> Iterator[None]:
    """File descriptors 1 and 2 (C++ logs included) written to ``path`` meanwhile."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.dup2(target, 1)
        os.dup2(target, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (target, *saved):
            os.close(fd)


def convert(job: dict[str, Any]) -> None:
    """One conversion, as the job asks (raises what paddle2onnx raises)."""
    import paddle2onnx

    paddle2onnx.export(
        model_filename=job["model"],
        params_filename=job["params"],
        save_file=job["out"],
        opset_version=int(job["opset"]),
        auto_upgrade_opset=True,
        verbose=False,
        enable_onnx_checker=True,
        enable_optimize=False,
        optimize_tool=None,
    )


def _run_job(job: dict[str, Any]) -> dict[str, Any]:
    os.environ["TMPDIR"] = job["tmp"]
    tempfile.tempdir = job["tmp"]
    try:
        with _output_to(job["log"]):
            convert(job)
    except BaseException as err:  # SystemExit too: paddle2onnx's way to fail
        return {"ok": False, "error": f"{type(err).__name__}: {err}"}
    finally:
        tempfile.tempdir = None
    return {"ok": True}


def serve(jobs: TextIO, answers: TextIO) -> int:
    """Convert each job read from ``jobs`` and answer it on ``answers``, to the end of ``jobs``."""
    for line in jobs:
        if not line.strip():
            continue
        answers.write(json.dumps(_run_job(json.loads(line))) + "\n")
        answers.flush()
    return 0


def main() -> int:
    # Ctrl-C in a terminal reaches the whole process group: the parent decides (it kills a
    # worker whose conversion it gives up, and stops the idle one at exit)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)  # stray output never reaches the answers
    os.close(quiet)
    import paddle2onnx  # noqa: F401  (the slow import, before the first job)

    return serve(sys.stdin, answers)


if __name__ == "__main__":
    sys.exit(main())
