"""Every docstring example of the package runs as written (the public API's first of all)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import padiff_ir

_SKIP = {"padiff_ir.__main__", "padiff_ir.exporters._paddle2onnx_worker"}
MODULES = sorted(
    {"padiff_ir"}
    | {info.name for info in pkgutil.walk_packages(padiff_ir.__path__, "padiff_ir.")} - _SKIP
)


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed"
