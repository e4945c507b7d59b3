"""SIGTERM during a paddle export ends the process with its status (143) and leaves no temporary
folder behind."""

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
    "code",
    [DURING_TRACE, DURING_CONVERSION],
    ids=["during the trace", "during the conversion"],
)
def test_sigterm_during_the_paddle_export_cleans_its_temporary_folder(tmp_path, code):
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
    # SIGTERM comes out as itself, also where paddle re-raises the trace's SystemExit with
    # a message of its own (issue 24)
    assert done.returncode == 128 + signal.SIGTERM, done.stderr[-2000:]
    assert [n for n in os.listdir(tmp_path) if n.startswith("padiff_ir_")] == []
