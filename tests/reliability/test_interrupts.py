"""Ctrl-C and SIGTERM come out of every stage as themselves: never an ``ExportError``, never a
fallback to the native path, and no temporary folder left behind (issue 24)."""

from __future__ import annotations

import os
import sys
import textwrap

import pytest

import padiff_ir
from tests.conftest import run_python
from tests.reliability.interface_models import (
    PaddleInterruptedWhenRun,
    PaddleInterruptSwallowed,
    PaddleInterruptWrapped,
    TorchPlain,
)
from tests.reliability.models import inputs


@pytest.mark.parametrize("paddle_class", [PaddleInterruptWrapped, PaddleInterruptSwallowed])
def test_an_interrupt_inside_the_paddle_trace_is_no_fallback(guard, paddle_class):
    model_a, model_b = TorchPlain(), paddle_class()
    guard.watch(model_a, model_b)
    with pytest.raises(KeyboardInterrupt):
        padiff_ir.match(model_a, model_b, inputs())


def test_an_interrupt_inside_the_paddle_trace_is_no_export_error(guard):
    model = PaddleInterruptSwallowed()
    guard.watch(model)
    with pytest.raises(KeyboardInterrupt):
        padiff_ir.export(model, inputs())


@pytest.mark.parametrize("entry", ["match", "auto_diff", "auto_layer_map"])
def test_an_interrupt_wrapped_in_an_eager_run_is_no_input_error(guard, entry):
    model_a, model_b = TorchPlain(), PaddleInterruptedWhenRun()
    guard.watch(model_a, model_b)
    with pytest.raises(KeyboardInterrupt):
        getattr(padiff_ir, entry)(model_a, model_b, inputs())


CTRL_C_AT_RANDOM = """
    import collections, os, signal, sys, tempfile, threading, time
    tempfile.tempdir = sys.argv[1]
    from padiff_ir.exporters.paddle_exporter import start_paddle_export
    from padiff_ir.frameworks.inputs import normalize_inputs
    from tests.reliability.interface_models import PaddleManyLayers
    from tests.reliability.models import inputs

    given = normalize_inputs(inputs())
    start = time.perf_counter()
    start_paddle_export(PaddleManyLayers(), given).result()
    took = time.perf_counter() - start
    outcomes = collections.Counter()
    tries = 16
    for index in range(1, tries + 1):
        model = PaddleManyLayers()
        timer = threading.Timer(took * index / tries, os.kill, (os.getpid(), signal.SIGINT))
        try:
            timer.start()
            start_paddle_export(model, given).result()
            time.sleep(2 * took)  # the interrupt arrives here if the export was faster
            outcomes["finished"] += 1
        except KeyboardInterrupt:
            outcomes["KeyboardInterrupt"] += 1
        except BaseException as err:
            outcomes[f"{type(err).__name__}: {str(err)[:200]}"] += 1
    print(dict(outcomes))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_at_any_point_of_a_paddle_export_is_a_keyboard_interrupt(tmp_path):
    done = run_python(textwrap.dedent(CTRL_C_AT_RANDOM), str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    outcomes = eval(done.stdout.strip().splitlines()[-1])  # a dict printed by the script
    assert set(outcomes) <= {"KeyboardInterrupt", "finished"}, outcomes
    assert outcomes.get("KeyboardInterrupt", 0) >= 8, outcomes
    assert [n for n in os.listdir(tmp_path) if n.startswith("padiff_ir_")] == []
