"""Training comparison of eager torch/paddle models: ``auto_diff`` as in PaDiff, without ONNX.

:func:`auto_diff` runs two models side by side through forward, loss, backward and optimizer
steps with hooks on every matched layer pair, and returns a :class:`DiffResult` that says at
which stage, step and layer they first disagree. Layer pairs come from the matching every entry
point uses (:func:`padiff_ir.pairing.graphs.pair_models`: ONNX graphs when both models export,
eager traces otherwise), so models that cannot be exported to ONNX work too.

Example:
    >>> import paddle, torch
    >>> from padiff_ir.native import auto_diff
    >>> t = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> p = paddle.nn.Sequential(paddle.nn.Linear(4, 8), paddle.nn.ReLU(),
    ...                          paddle.nn.Linear(8, 2))
    >>> x = torch.linspace(-1, 1, 12).reshape(3, 4)
    >>> result = auto_diff(t, p, ({"input": x}, {"input": paddle.to_tensor(x.numpy())}),
    ...                    atol=1e-6, rtol=1e-5)
    >>> result == True, [s.loss is not None for s in result.steps]
    (True, [True])
"""

from __future__ import annotations

from padiff_ir.native._arguments import AutoDiffError
from padiff_ir.native._selection import Selector
from padiff_ir.native.auto_diff import auto_diff
from padiff_ir.native.diff_result import (
    STAGES,
    DiffResult,
    FirstDifference,
    InputDiff,
    LayerDiff,
    ParamDiff,
    StepResult,
)

__all__ = [
    # comparison
    "auto_diff",
    "Selector",
    # results
    "DiffResult",
    "FirstDifference",
    "InputDiff",
    "LayerDiff",
    "ParamDiff",
    "STAGES",
    "StepResult",
    # errors
    "AutoDiffError",
]
