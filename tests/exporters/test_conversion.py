"""The paddle2onnx worker: one child per process, reused, never left behind."""

from __future__ import annotations

import signal
import sys
import textwrap
import time

import numpy as np
import pytest

from padiff_ir.errors import ExportError
from padiff_ir.exporters import _conversion, export
from tests.conftest import run_python
from tests.exporters.models import PaddleUnconvertible
from tests.reliability.models import PaddleLog, PaddleScaled, inputs


def _idle_pid() -> int | None:
    worker = _conversion._idle
    return worker.proc.pid if worker is not None and worker.alive() else None


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            return not any(line.startswith("State:\tZ") for line in status)
    except FileNotFoundError:
        return False


def test_one_worker_converts_one_export_after_another(no_temp_leftovers):
    first = export(PaddleLog(), inputs())
    pid = _idle_pid()
    assert pid is not None
    second = export(PaddleScaled(), inputs(seed=1))
    again = export(PaddleLog(), inputs(batch=5))  # another signature: not a cache hit
    assert _idle_pid() == pid
    assert first.node_modules and second.node_modules
    assert again.node_modules == first.node_modules


def test_a_crashed_worker_is_replaced(no_temp_leftovers):
    export(PaddleLog(), inputs())
    with pytest.raises(ExportError, match="paddle2onnx crashed"):
        export(PaddleUnconvertible(), np.ones((2, 3), np.float32))
    exported = export(PaddleLog(), inputs(batch=7))
    assert exported.node_modules
    assert _idle_pid() is not None


def test_stop_workers_ends_the_idle_worker():
    _conversion.start_worker()
    pid = _idle_pid()
    assert pid is not None
    _conversion.stop_workers()
    assert _idle_pid() is None
    assert not _alive(pid)


AFTER_EXPORT = """
    print('worker', _conversion._idle.proc.pid, flush=True)
"""
DURING_CONVERSION = """
    pending = start_paddle_export(PaddleLog(), normalize_inputs(inputs()))
    print('worker', pending._conversion._worker.proc.pid, flush=True)
    os.kill(os.getpid(), SIGNAL)
    pending.result()
    print('export finished')
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and POSIX signals")
@pytest.mark.parametrize(
    ("code", "sent"),
    [
        (AFTER_EXPORT, None),
        (DURING_CONVERSION, signal.SIGTERM),
        (DURING_CONVERSION, signal.SIGINT),
    ],
    ids=["exit after an export", "SIGTERM while converting", "Ctrl-C while converting"],
)
def test_no_worker_outlives_its_process(code, sent):
    script = textwrap.dedent("""
        import os, signal
        from padiff_ir.exporters import _conversion, export
        from padiff_ir.exporters.paddle_exporter import start_paddle_export
        from padiff_ir.frameworks.inputs import normalize_inputs
        from tests.reliability.models import PaddleLog, inputs
        export(PaddleLog(), inputs())
    """) + textwrap.dedent(code).replace("SIGNAL", str(int(sent or 0)))
    done = run_python(script)
    assert "export finished" not in done.stdout
    assert (done.returncode == 0) == (sent is None), done.stderr[-2000:]
    pid = int(done.stdout.split("worker", 1)[1].split()[0])
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)
