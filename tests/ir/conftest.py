"""Fixtures of the IR tests: real torch and paddle exports (helpers are in ``_graphs``).

The real exports are session fixtures (an export takes seconds). The paddle export runs in a
child process: paddle2onnx logs at the C level and may abort its process on an op it does not
support, which must fail a test, not kill the test run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import onnx
import pytest

from padiff_ir.exporters import ExportedGraph
from padiff_ir.ir import Graph, build_graph
from tests.ir._graphs import constants_to_initializers


def _torch_export(model: object, args: tuple, **kwargs: object) -> onnx.ModelProto:
    import torch

    with torch.no_grad():
        return torch.onnx.export(model, args, dynamo=True, optimize=False, **kwargs).model_proto


def _torch_models() -> tuple[type, type]:
    import torch
    from torch import nn

    class Twin(nn.Module):
        """The model :data:`PADDLE_TWIN` writes with paddle."""

        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.fc = nn.Linear(4 * 8 * 8, 16)
            self.head = nn.Linear(8, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.relu(self.conv(x)).flatten(1)
            z = self.fc(y).reshape(-1, 2, 8)  # 2-D Linear (Gemm), then 3-D (MatMul)
            return self.head(z) + z

    class Rich(nn.Module):
        """Linear on 2-D and 3-D inputs, Conv2d with bias, LayerNorm, GELU."""

        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.fc2d = nn.Linear(4 * 8 * 8, 16)
            self.fc3d = nn.Linear(8, 8)
            self.norm = nn.LayerNorm(8)
            self.act = nn.GELU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.fc2d(torch.relu(self.conv(x)).flatten(1))
            z = y.reshape(y.shape[0], 2, 8)
            return self.act(self.norm(self.fc3d(z)))

    return Twin, Rich


@pytest.fixture(scope="session")
def torch_rich_model() -> onnx.ModelProto:
    """A torch export with a dynamic batch, so with ``Shape`` arithmetic."""
    torch = pytest.importorskip("torch")
    _, rich = _torch_models()
    torch.manual_seed(0)
    batch = torch.export.Dim("batch", min=2, max=64)
    return _torch_export(rich().eval(), (torch.randn(2, 3, 8, 8),), dynamic_shapes=({0: batch},))


@pytest.fixture(scope="session")
def torch_twin_model() -> onnx.ModelProto:
    torch = pytest.importorskip("torch")
    twin, _ = _torch_models()
    torch.manual_seed(0)
    return _torch_export(twin().eval(), (torch.randn(2, 3, 8, 8),))


PADDLE_TWIN = textwrap.dedent("""
    import json, os, sys
    import paddle
    import paddle2onnx

    class Twin(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.conv = paddle.nn.Conv2D(3, 4, 3, padding=1)
            self.fc = paddle.nn.Linear(4 * 8 * 8, 16)
            self.head = paddle.nn.Linear(8, 8)

        def forward(self, x):
            y = paddle.flatten(paddle.nn.functional.relu(self.conv(x)), 1)
            z = paddle.reshape(self.fc(y), [-1, 2, 8])
            return self.head(z) + z

    directory = sys.argv[1]
    paddle.seed(0)
    layer = Twin()
    layer.eval()
    prefix = os.path.join(directory, "twin")
    spec = [paddle.static.InputSpec([2, 3, 8, 8], "float32", "x")]
    paddle.jit.save(layer, prefix, input_spec=spec)
    program = prefix + (".json" if os.path.exists(prefix + ".json") else ".pdmodel")
    paddle2onnx.export(model_filename=program, params_filename=prefix + ".pdiparams",
                       save_file=os.path.join(directory, "twin.onnx"), opset_version=17,
                       optimize_tool=None)
    names = {p.name: path for path, p in layer.named_parameters()}
    with open(os.path.join(directory, "parameters.json"), "w") as f:
        json.dump(names, f)
""")


@pytest.fixture(scope="session")
def paddle_twin_export() -> tuple[onnx.ModelProto, dict[str, str]]:
    """The paddle2onnx export of the twin model, and ONNX name -> paddle parameter name."""
    pytest.importorskip("paddle")
    pytest.importorskip("paddle2onnx")
    with tempfile.TemporaryDirectory(prefix="padiff_ir_test_") as directory:
        script = Path(directory, "export_twin.py")  # paddle.jit reads the layer's source
        script.write_text(PADDLE_TWIN)
        done = subprocess.run(
            [sys.executable, str(script), directory],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        onnx_file = Path(directory, "twin.onnx")
        if done.returncode != 0 or not onnx_file.exists():
            pytest.fail(f"paddle export failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        model = onnx.load(str(onnx_file))
        parameters = json.loads(Path(directory, "parameters.json").read_text())
    return model, parameters


@pytest.fixture(scope="session")
def torch_rich(torch_rich_model: onnx.ModelProto) -> Graph:
    return build_graph(ExportedGraph.from_model(torch_rich_model))


@pytest.fixture(scope="session")
def torch_twin(torch_twin_model: onnx.ModelProto) -> Graph:
    return build_graph(ExportedGraph.from_model(torch_twin_model))


@pytest.fixture(scope="session")
def paddle_twin(paddle_twin_export: tuple[onnx.ModelProto, dict[str, str]]) -> Graph:
    """The raw paddle2onnx graph: parameters are ``Constant`` nodes."""
    return build_graph(ExportedGraph.from_model(paddle_twin_export[0]))


@pytest.fixture(scope="session")
def paddle_twin_params(paddle_twin_export: tuple[onnx.ModelProto, dict[str, str]]) -> Graph:
    """The paddle graph with parameters as attributed initializers, as the exporter gives."""
    model, names = paddle_twin_export
    return build_graph(ExportedGraph.from_model(constants_to_initializers(model, names)))
