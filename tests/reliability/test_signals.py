"""SIGTERM during a paddle export leaves no temporary folder behind (as SIGINT does not)."""

from __future__ import annotations

import os
import signal
import sys
import textwrap

import pytest

from tests.conftest import run_python

DURING_TRACE = """
    import padiff_ir
    padiff_ir.export(PaddleTerminatedDuringExport(), inputs())
"""
DURING_CONVERSION = """
    from padiff_ir.exporters.paddle_exporter import start_paddle_export
    from padiff_ir.frameworks.inputs import normalize_inputs
    pending = start_paddle_export(PaddleLog(), normalize_inputs(inputs()))
    os.kill(os.getpid(), signal.SIGTERM)  # while paddle2onnx converts in its child process
    pending.result()
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize(
    ("code", "status"),
    [(DURING_TRACE, None), (DURING_CONVERSION, 143)],
    ids=["during the trace", "during the conversion"],
)
def test_sigterm_during_the_paddle_export_cleans_its_temporary_folder(tmp_path, code, status):
    script = (
        textwrap.dedent("""
        import os, signal, sys, tempfile
        tempfile.tempdir = sys.argv[1]
        from tests.reliability.models import PaddleLog, PaddleTerminatedDuringExport, inputs
    """)
        + textwrap.dedent(code)
        + "print('export finished')\n"
    )
    done = run_python(script, str(tmp_path))
    assert "export finished" not in done.stdout
    # paddle re-raises the SystemExit of the trace with its message: status 1 then
    assert done.returncode == (status if status is not None else 1), done.stderr[-2000:]
    assert "SystemExit" in done.stderr or status == 128 + signal.SIGTERM
    assert [n for n in os.listdir(tmp_path) if n.startswith("padiff_ir_")] == []
