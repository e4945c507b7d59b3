"""The real-ports corpus: models from libraries nobody here wrote, on both sides.

Each family module (``vision``: torchvision vs paddle.vision; ``decoders``: Hugging Face
transformers vs PaddleFormers) lists :class:`PortPair` rows in a tuple ``PAIRS``. A pair is built
fresh by ``build()`` from the libraries' own constructors or tiny configs (random init, no
downloads); its ground truth is written by hand, **independently of the matcher**:

- ``weights``: every torch parameter and persistent buffer -> the paddle one and how its values
  go across (:class:`Copy`), used by :func:`hand_convert`; a paddle tensor made from several
  torch tensors or a slice of one (fused q/k/v, stacked experts) is in ``derived`` instead;
- ``modules``: every torch module that runs in forward -> the paddle module computing the same
  thing, parameter-free layers (dropout, pooling, activations) included;
- ``differences``: the true differences left after a hand conversion (the libraries disagree:
  a pooling ``ceil_mode``, a dropout convention), each named on both sides.

The tests and ``benchmarks/bench_ports.py`` measure padiff-ir against that truth.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

__all__ = [
    "BuiltPair",
    "Copy",
    "Derive",
    "PortPair",
    "TrueDifference",
    "hand_convert",
    "import_torchvision",
]


class Copy(Enum):
    """How a torch tensor's values become the paddle tensor's."""

    SAME = "same"  # the same array
    TRANSPOSE = "transpose"  # a 2-d Linear weight: torch [out, in], paddle [in, out]


@dataclass(frozen=True)
class Derive:
    """A paddle tensor made from several torch tensors, or from a slice of one (a fused q/k/v
    projection, gate and up in one matrix, a 3-d stack of experts split into one Linear each).

    ``build`` takes the ``sources``' values (numpy, in that order) and returns the paddle value.
    """

    sources: tuple[str, ...]  # torch tensor names
    build: Callable[..., np.ndarray]


@dataclass(frozen=True)
class TrueDifference:
    """A difference the two libraries really have, found by hand: where and what."""

    module_a: str  # the torch module path
    module_b: str  # the paddle module path
    what: str  # e.g. "MaxPool ceil_mode False vs True"


@dataclass
class BuiltPair:
    """One freshly built pair: the models, their inputs, and the hand-written truth."""

    torch_model: Any
    paddle_model: Any
    inputs: Any  # what padiff_ir.match takes: numpy arrays (a dict by name, or a tuple)
    weights: Mapping[str, tuple[str, Copy]]  # torch name -> (paddle name, copy)
    modules: Mapping[str, str]  # torch module path -> paddle module path
    differences: tuple[TrueDifference, ...] = ()
    notes: dict[str, Any] = field(default_factory=dict)
    derived: Mapping[str, Derive] = field(default_factory=dict)  # paddle name -> how it is made


@dataclass(frozen=True)
class PortPair:
    """A row of the corpus: a name, its family, and how to build it."""

    name: str  # e.g. "torchvision/resnet18"
    family: str  # "vision" | "decoders"
    build: Callable[[], BuiltPair]
    slow: bool = False  # large enough to keep out of the quick tier of the tests


def hand_convert(pair: BuiltPair) -> None:
    """Copy every torch tensor named in ``pair.weights`` into its paddle tensor, and build every
    paddle tensor named in ``pair.derived`` from its torch sources (in place).

    Raises AssertionError when a name is missing on either side or a shape disagrees: the
    hand-written map must be complete and right before it can judge the tool.
    """
    torch_tensors = dict(pair.torch_model.state_dict())
    paddle_tensors = dict(pair.paddle_model.state_dict())
    for name_a, (name_b, how) in pair.weights.items():
        assert name_a in torch_tensors, f"{name_a} is not a torch tensor"
        assert name_b in paddle_tensors, f"{name_b} is not a paddle tensor"
        value = torch_tensors[name_a].detach().cpu().numpy()
        if how is Copy.TRANSPOSE:
            value = value.T
        _write(paddle_tensors[name_b], value, f"{name_a} -> {name_b}")
    for name_b, derive in pair.derived.items():
        assert name_b in paddle_tensors, f"{name_b} is not a paddle tensor"
        missing = [name for name in derive.sources if name not in torch_tensors]
        assert not missing, f"{missing} are not torch tensors"
        values = [torch_tensors[name].detach().cpu().numpy() for name in derive.sources]
        _write(paddle_tensors[name_b], derive.build(*values), f"{derive.sources} -> {name_b}")


def _write(target: Any, value: np.ndarray, what: str) -> None:
    assert tuple(target.shape) == value.shape, f"{what}: {value.shape} vs {tuple(target.shape)}"
    target.set_value(np.ascontiguousarray(value).astype(target.numpy().dtype))


def import_torchvision() -> Any:
    """``torchvision.models``, importable beside the CPU build of torch.

    The only torchvision 0.28.0 wheel (PyPI's) is built against CUDA torch: its C++ ops do not
    load beside torch 2.13.0+cpu, and 0.28.0's ``_meta_registrations`` then registers a fake
    kernel for ``torchvision::nms``/``qnms`` without checking that the ops exist. Declaring the
    two schemas first lets the package import; the classification models use none of its ops.
    """
    import sys

    import torch

    try:
        import torchvision.models as models

        return models
    except RuntimeError as err:
        if "torchvision::nms" not in str(err):
            raise
    library = torch.library.Library("torchvision", "FRAGMENT")
    for op in ("nms", "qnms"):
        library.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _LIBRARIES.append(library)  # the schemas live as long as their Library object
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]  # the half-imported package, imported again below
    import torchvision.models as models

    return models


_LIBRARIES: list[Any] = []  # the schema fragments must outlive the import


if importlib.util.find_spec("torchvision") is not None:
    # before anything imports torchvision (transformers does, for its image processors): the
    # test session (tests/conftest.py) and each of bench_ports.py's child processes
    import_torchvision()
