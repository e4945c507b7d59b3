"""Layers of real libraries (torchvision, transformers) for tests, importable beside CPU torch.

The only torchvision 0.28.0 wheel is built against CUDA torch: its C++ ops do not load beside
torch 2.13.0+cpu, its ``_meta_registrations`` then fail on ``torchvision::nms``, and
``transformers`` (which imports torchvision whenever it is installed) fails with it. Declaring
the two schemas first lets both import (the same shim as the ports corpus's
``tests/ports/vision.import_torchvision``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from typing import Any

import pytest
import torch

_LIBRARIES: list[Any] = []  # the schema fragments must outlive the import


def import_torchvision() -> Any:
    """``torchvision.models`` beside the CPU torch (skips the test without torchvision)."""
    if importlib.util.find_spec("torchvision") is None:
        pytest.skip("torchvision is not installed (the [ports] extra)")
    try:
        import torchvision.models as models

        return models
    except RuntimeError as err:
        if "torchvision::nms" not in str(err):
            raise
    library = torch.library.Library("torchvision", "FRAGMENT")
    for op in ("nms", "qnms"):
        library.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _LIBRARIES.append(library)
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]  # the half-imported package, imported again below
    import torchvision.models as models

    return models


def import_transformers() -> Any:
    """``transformers``, with torchvision importable first (skips the test without it)."""
    with contextlib.suppress(pytest.skip.Exception):
        import_torchvision()
    return pytest.importorskip("transformers")
