"""Class families: the torch and paddle class names of one kind of layer get one family name.

``Conv2d`` and ``Conv2D`` are ``conv2d``, ``BatchNorm2d`` and ``BatchNorm2D`` are ``batchnorm``,
``ModuleList`` and ``LayerList`` are ``list``. The graph built from a eager trace
(:mod:`padiff_ir.ir.trace_graph`) turns a module call into the ONNX ops of its family.
"""

from __future__ import annotations

from collections.abc import Mapping

from padiff_ir.frameworks.registry import FRAMEWORKS

__all__ = [
    "FAMILY_ALIASES",
    "PARAMETER_FREE_KINDS",
    "layer_kind",
    "linear_layouts_differ",
    "module_family",
]

FAMILY_ALIASES: Mapping[str, str] = {
    "nondynamicallyquantizablelinear": "linear",
    "convtranspose1d": "convtranspose1d",
    "conv1dtranspose": "convtranspose1d",
    "convtranspose2d": "convtranspose2d",
    "conv2dtranspose": "convtranspose2d",
    "convtranspose3d": "convtranspose3d",
    "conv3dtranspose": "convtranspose3d",
    "batchnorm": "batchnorm",
    "batchnorm1d": "batchnorm",
    "batchnorm2d": "batchnorm",
    "batchnorm3d": "batchnorm",
    "syncbatchnorm": "batchnorm",
    "instancenorm1d": "instancenorm",
    "instancenorm2d": "instancenorm",
    "instancenorm3d": "instancenorm",
    "dropout1d": "dropout",
    "dropout2d": "dropout",
    "dropout3d": "dropout",
    "alphadropout": "dropout",
    "modulelist": "list",
    "layerlist": "list",
    "moduledict": "dict",
    "layerdict": "dict",
    "parameterlist": "list",
    "silu": "silu",
    "siluactivation": "silu",  # Hugging Face's activations.SiLUActivation (an nn.Module)
    "hardswish": "hardswish",
    "upsamplingnearest2d": "upsample",
    "upsamplingbilinear2d": "upsample",
}


def module_family(class_name: str, framework: str = "") -> str:
    """The family of a torch or paddle class name (no registry consulted).

    Examples:
        >>> module_family("Conv2DTranspose"), module_family("ConvTranspose2d")
        ('convtranspose2d', 'convtranspose2d')
        >>> module_family("RNN", "torch"), module_family("RNN", "paddle")
        ('simplernn', 'rnn')
    """
    key = class_name.lower().replace("_", "")
    spec = FRAMEWORKS.get(framework)
    if spec is not None:
        key = spec.class_families.get(key, key)
    return FAMILY_ALIASES.get(key, key)


def linear_layouts_differ(framework_a: str, framework_b: str) -> bool:
    """Whether the two frameworks hold a ``Linear`` weight transposed to each other
    (:attr:`~padiff_ir.frameworks.registry.FrameworkSpec.linear_weight_transposed`); ``False``
    when either is not a registered framework.

    Examples:
        >>> linear_layouts_differ("torch", "paddle"), linear_layouts_differ("paddle", "paddle")
        (True, False)
        >>> linear_layouts_differ("torch", "onnx")
        False
    """
    spec_a, spec_b = FRAMEWORKS.get(framework_a), FRAMEWORKS.get(framework_b)
    if spec_a is None or spec_b is None:
        return False
    return spec_a.linear_weight_transposed != spec_b.linear_weight_transposed


_ACTIVATIONS = frozenset(
    {
        "relu", "relu6", "gelu", "elu", "selu", "celu", "leakyrelu", "prelu", "rrelu",
        "sigmoid", "hardsigmoid", "logsigmoid", "tanh", "hardtanh", "tanhshrink", "silu",
        "swish", "hardswish", "mish", "softplus", "softsign", "softshrink", "hardshrink",
        "softmax", "logsoftmax", "softmax2d", "thresholdedrelu", "threshold", "glu",
    }
)  # fmt: skip

#: The kinds :func:`layer_kind` names: layers with no parameters whose one job is known.
PARAMETER_FREE_KINDS = frozenset({"activation", "dropout", "pool"})


def layer_kind(class_name: str, framework: str = "") -> str | None:
    """What a layer does, coarser than its family: ``"activation"`` (ReLU, GELU...),
    ``"dropout"``, ``"pool"`` (max, average, adaptive, of any rank), or ``None`` (any other
    layer: parametric, a container, a class of a library).

    Two layers of different kinds never compute the same thing; two of one kind may (a ReLU
    ported as a GELU is one layer with a bug).

    Examples:
        >>> layer_kind("ReLU6"), layer_kind("AdaptiveAvgPool2D"), layer_kind("Dropout2d")
        ('activation', 'pool', 'dropout')
        >>> layer_kind("Fire") is None
        True
    """
    family = module_family(class_name, framework)
    if family in _ACTIVATIONS:
        return "activation"
    if family == "dropout":
        return "dropout"
    if family.endswith(("pool1d", "pool2d", "pool3d")) or family in ("maxpool", "avgpool"):
        return "pool"
    return None
