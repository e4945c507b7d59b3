"""Settings that differ between two paired layers, read from the layers themselves.

One vocabulary for ``match`` (a culprit's explanation) and ``auto_diff`` (its configuration
differences). A port often computes differently because of a setting, not a kernel: a BatchNorm
momentum written in the other framework's convention (torch updates
``running = (1 - m) * running + m * batch`` with ``m = 0.1``; paddle
``running = m * running + (1 - m) * batch`` with ``m = 0.9``), an epsilon, a dropout mode
(paddle's ``downscale_in_infer`` scales by ``1 - p`` in eval mode), a pooling ``ceil_mode`` or
``exclusive`` average (torch's ``count_include_pad``, inverted), an interpolation's
``align_corners``, a GELU approximation, a padding mode, a slope. :func:`layer_differences`
reads those settings from one pair of layers and says in words which disagree;
:func:`config_differences` does so for every pair of a layer map.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from padiff_ir.frameworks import get_framework
from padiff_ir.frameworks.registry import FRAMEWORKS
from padiff_ir.matching.transforms import class_family
from padiff_ir.matching.types import ModulePair

__all__ = [
    "config_differences",
    "differ",
    "fmt",
    "layer_differences",
    "op_setting",
    "setting_family",
    "settings_tuple",
]

logger = logging.getLogger(__name__)

Getter = Callable[[Any], Any]


def _attr(*names: str) -> Getter:
    def get(module: Any) -> Any:
        for name in names:
            if hasattr(module, name):
                return getattr(module, name)
        return None

    return get


_EPSILON = _attr("eps", "epsilon", "variance_epsilon", "_epsilon", "variance_eps")
"""An epsilon whatever a library calls it: torch ``eps``, paddle ``_epsilon``, Hugging Face's
and PaddleFormers' RMSNorm ``variance_epsilon``."""

_LIBRARY_SUFFIXES = ("rmsnorm", "layernorm", "groupnorm")
"""Families a library layer belongs to by its class name's ending (``Qwen2RMSNorm``,
``LlamaRMSNorm`` and PaddleFormers' ``RMSNorm`` are all ``rmsnorm``)."""


def _torch_bn_momentum(module: Any) -> Any:
    return module.momentum  # None: cumulative moving average


def _paddle_bn_momentum(module: Any) -> Any:
    momentum = getattr(module, "_momentum", None)
    return None if momentum is None else 1.0 - float(momentum)  # in torch's convention


def _paddle_gelu(module: Any) -> Any:
    return "tanh" if getattr(module, "_approximate", False) else "none"


def settings_tuple(value: Any) -> Any:
    """A setting as compared: lists as tuples, whole floats in them as ints."""
    if isinstance(value, (list, tuple)):
        return tuple(
            int(v) if isinstance(v, (int, float)) and float(v).is_integer() else v for v in value
        )
    return value


# family -> [(setting, torch getter, paddle getter)]
_SETTINGS: Mapping[str, list[tuple[str, Getter, Getter]]] = {
    "batchnorm": [
        ("epsilon", _EPSILON, _EPSILON),
        (
            "track_running_stats",
            _attr("track_running_stats"),
            lambda m: getattr(m, "_use_global_stats", None) is not False,
        ),
    ],
    "instancenorm": [("epsilon", _EPSILON, _EPSILON)],
    "layernorm": [("epsilon", _EPSILON, _EPSILON)],
    "rmsnorm": [("epsilon", _EPSILON, _EPSILON)],
    "groupnorm": [
        ("epsilon", _EPSILON, _EPSILON),
        ("groups", _attr("num_groups"), _attr("_num_groups")),
    ],
    "dropout": [("p", _attr("p"), _attr("p"))],
    "gelu": [("approximate", _attr("approximate"), _paddle_gelu)],
    "leakyrelu": [("negative_slope", _attr("negative_slope"), _attr("_negative_slope"))],
    "softmax": [("axis", _attr("dim"), _attr("_axis"))],
    "logsoftmax": [("axis", _attr("dim"), _attr("_axis"))],
    "embedding": [("padding_idx", _attr("padding_idx"), _attr("_padding_idx"))],
    "upsample": [
        ("mode", _attr("mode"), _attr("mode")),
        ("align_corners", _attr("align_corners"), _attr("align_corners")),
    ],
}


def _paddle_counts_padding(module: Any) -> Any:
    exclusive = getattr(module, "exclusive", None)
    return None if exclusive is None else not exclusive  # torch's count_include_pad


def _paddle_pool_padding(module: Any) -> Any:
    return getattr(module, "padding", None)


for _family in ("maxpool1d", "maxpool2d", "maxpool3d"):
    _SETTINGS[_family] = [  # type: ignore[index]
        ("kernel_size", _attr("kernel_size"), _attr("ksize")),
        ("stride", _attr("stride"), _attr("stride")),
        ("padding", _attr("padding"), _paddle_pool_padding),
        ("ceil_mode", _attr("ceil_mode"), _attr("ceil_mode")),
    ]
for _family in ("avgpool1d", "avgpool2d", "avgpool3d"):
    _SETTINGS[_family] = [  # type: ignore[index]
        ("kernel_size", _attr("kernel_size"), _attr("ksize")),
        ("stride", _attr("stride"), _attr("stride")),
        ("padding", _attr("padding"), _paddle_pool_padding),
        ("ceil_mode", _attr("ceil_mode"), _attr("ceil_mode")),
        (
            "count_include_pad (paddle: not exclusive)",
            _attr("count_include_pad"),
            _paddle_counts_padding,
        ),
    ]
_SETTINGS.update(  # type: ignore[attr-defined]
    {
        "elu": [("alpha", _attr("alpha"), _attr("_alpha"))],
        "celu": [("alpha", _attr("alpha"), _attr("_alpha"))],
        "hardtanh": [
            ("min", _attr("min_val"), _attr("_min")),
            ("max", _attr("max_val"), _attr("_max")),
        ],
        "softplus": [
            ("beta", _attr("beta"), _attr("_beta")),
            ("threshold", _attr("threshold"), _attr("_threshold")),
        ],
        "prelu": [],
        "flatten": [
            ("start_axis", _attr("start_dim"), _attr("start_axis")),
            ("stop_axis", _attr("end_dim"), _attr("stop_axis")),
        ],
    }
)
for _family in (
    "conv1d",
    "conv2d",
    "conv3d",
    "convtranspose1d",
    "convtranspose2d",
    "convtranspose3d",
):
    _SETTINGS[_family] = [  # type: ignore[index]
        ("stride", _attr("stride"), _attr("_stride")),
        ("dilation", _attr("dilation"), _attr("_dilation")),
        ("groups", _attr("groups"), _attr("_groups")),
        ("padding_mode", _attr("padding_mode"), _attr("_padding_mode")),
    ]


# ONNX op attribute -> (family, setting of :data:`_SETTINGS`) it carries: where an exporter
# writes a layer's setting into an op, what the op's value should be.
_OP_ATTRIBUTES: Mapping[tuple[str, str], tuple[str, str]] = {
    ("LeakyRelu", "alpha"): ("leakyrelu", "negative_slope"),
    ("Elu", "alpha"): ("elu", "alpha"),
    ("Celu", "alpha"): ("celu", "alpha"),
    ("LayerNormalization", "epsilon"): ("layernorm", "epsilon"),
    ("BatchNormalization", "epsilon"): ("batchnorm", "epsilon"),
    ("InstanceNormalization", "epsilon"): ("instancenorm", "epsilon"),
}


def _base_family(module: Any, framework: str) -> str:
    """The family of what ``module`` is (a subclass of ``nn.Linear`` is a ``linear``)."""
    base = get_framework(framework).base_layer(module) if framework in FRAMEWORKS else ""
    return setting_family(type(module).__name__, framework, base)


def op_setting(op_type: str, attribute: str, module: Any, framework: str) -> tuple[str, Any] | None:
    """The setting of ``module`` that attribute ``attribute`` of an ``op_type`` op carries,
    and its value in the module; None when the op attribute carries no setting of its family.

    Example:
        >>> import torch
        >>> op_setting("LeakyRelu", "alpha", torch.nn.LeakyReLU(0.2), "torch")
        ('negative_slope', 0.2)
    """
    found = _OP_ATTRIBUTES.get((op_type, attribute))
    if found is None or _base_family(module, framework) != found[0]:
        return None
    for setting, get_torch, get_paddle in _SETTINGS.get(found[0], ()):
        if setting == found[1]:
            return setting, _setting(module, framework, (get_torch, get_paddle))
    return None


def _setting(module: Any, framework: str, getters: tuple[Getter, Getter]) -> Any:
    value = getters[0 if framework == "torch" else 1](module)
    return settings_tuple(value)


def differ(x: Any, y: Any) -> bool:
    """Whether two settings differ (``None``, not readable on one side, never differs)."""
    if x is None or y is None:
        return False  # not readable on one side
    if isinstance(x, (int, float)) and isinstance(y, (int, float)) and not isinstance(x, bool):
        return not math.isclose(float(x), float(y), rel_tol=1e-6, abs_tol=1e-12)
    if isinstance(x, tuple) and isinstance(y, (int, float)):
        return any(differ(v, y) for v in x)
    if isinstance(y, tuple) and isinstance(x, (int, float)):
        return any(differ(x, v) for v in y)
    return x != y


def fmt(value: Any) -> str:
    """A setting as the sentences write it."""
    return f"{value:g}" if isinstance(value, float) else repr(value)


def _batch_norm(path: str, module_a: Any, module_b: Any, fw_a: str, fw_b: str) -> list[str]:
    found = []
    getters = {"torch": _torch_bn_momentum, "paddle": _paddle_bn_momentum}
    m_a, m_b = getters[fw_a](module_a), getters[fw_b](module_b)
    if (m_a is None) != (m_b is None) or (m_a is not None and differ(m_a, m_b)):

        def show(value: Any, framework: str) -> str:  # value in torch's convention
            if value is None:
                return "None (cumulative average)"
            return f"{1.0 - value:g}" if framework == "paddle" else f"{value:g}"

        if fw_a != fw_b and m_a is not None:
            other = "paddle" if fw_a == "torch" else "torch"
            text = (
                f"{path}: BatchNorm momentum {show(m_a, fw_a)} in model A ({fw_a}) is "
                f"{show(m_a, other)} in {other}'s convention, but model B ({fw_b}) has "
                f"{show(m_b, fw_b)}"
            )
        else:
            text = (
                f"{path}: BatchNorm momentum {show(m_a, fw_a)} in model A ({fw_a}) vs "
                f"{show(m_b, fw_b)} in model B ({fw_b})"
            )
        found.append(
            text + " (torch's momentum m is paddle's 1 - m); the running statistics "
            "drift apart from the first training-mode forward"
        )
    training = bool(getattr(module_a, "training", False) or getattr(module_b, "training", False))
    if fw_a != fw_b and training:
        found.append(
            f"{path}: in training mode torch's BatchNorm updates running_var with the unbiased "
            "batch variance (x n/(n-1), n values per channel) and paddle's with the biased one; "
            "the running variances differ by that factor on each update"
        )
    return found


def config_differences(
    pairs: Iterable[ModulePair],
    modules_a: Mapping[str, Any],
    modules_b: Mapping[str, Any],
    framework_a: str,
    framework_b: str,
) -> list[str]:
    """Sentences naming each setting that differs between matched layers.

    Example:
        >>> import paddle, torch
        >>> from padiff_ir.matching.types import ModulePair
        >>> a, b = torch.nn.LayerNorm(4, eps=1e-5), paddle.nn.LayerNorm(4, epsilon=1e-6)
        >>> config_differences([ModulePair("ln", "ln")], {"ln": a}, {"ln": b}, "torch", "paddle")
        ['ln: LayerNorm epsilon 1e-05 in model A (torch) vs 1e-06 in model B (paddle)']
    """
    found: list[str] = []
    for pair in pairs:
        module_a, module_b = modules_a.get(pair.a), modules_b.get(pair.b)
        if module_a is None or module_b is None:
            continue
        site_a, site_b = pair.site_a, pair.site_b
        label = site_a if site_a == site_b else f"{site_a} / {site_b}"
        found += layer_differences(label, module_a, module_b, framework_a, framework_b)
    return list(dict.fromkeys(found))


def setting_family(class_name: str, framework: str = "", base: str = "") -> str:
    """The family whose settings a layer has: its class family (that of ``base``, the
    framework's layer class it derives from, when given), or for a library's own norm layer
    the norm its class name ends with.

    Examples:
        >>> setting_family("Qwen2RMSNorm", "torch"), setting_family("RMSNorm", "paddle")
        ('rmsnorm', 'rmsnorm')
        >>> setting_family("LayerNorm", "paddle")
        'layernorm'
    """
    family = class_family(class_name, framework, base)
    if family in _SETTINGS:
        return family
    key = class_name.lower().replace("_", "")
    return next((suffix for suffix in _LIBRARY_SUFFIXES if key.endswith(suffix)), family)


def layer_differences(
    label: str, module_a: Any, module_b: Any, framework_a: str, framework_b: str
) -> list[str]:
    """Sentences naming each setting that differs between two layers of one family
    (``label: ...``); none for layers of different families.

    Example:
        >>> import paddle, torch
        >>> a, b = torch.nn.MaxPool2d(3, 2), paddle.nn.MaxPool2D(3, 2, ceil_mode=True)
        >>> layer_differences("pool#2 / pool2", a, b, "torch", "paddle")
        ['pool#2 / pool2: MaxPool2d ceil_mode False in model A (torch) vs True in model B (paddle)']
    """
    name_a = type(module_a).__name__
    family = _base_family(module_a, framework_a)
    if family != _base_family(module_b, framework_b):
        return []
    found = []
    if family == "batchnorm":
        found += _batch_norm(label, module_a, module_b, framework_a, framework_b)
    for setting, get_torch, get_paddle in _SETTINGS.get(family, ()):
        x = _setting(module_a, framework_a, (get_torch, get_paddle))
        y = _setting(module_b, framework_b, (get_torch, get_paddle))
        if differ(x, y):
            found.append(
                f"{label}: {name_a} {setting} {fmt(x)} in model A ({framework_a}) "
                f"vs {fmt(y)} in model B ({framework_b})"
            )
    found += _dropout_mode(label, module_a, module_b, family)
    return found


def _dropout_mode(label: str, module_a: Any, module_b: Any, family: str) -> list[str]:
    if family != "dropout":
        return []
    modes = [getattr(m, "mode", "upscale_in_train") for m in (module_a, module_b)]
    if "downscale_in_infer" in modes and modes[0] != modes[1]:
        side = "A" if modes[0] == "downscale_in_infer" else "B"
        return [
            f"{label}: Dropout mode 'downscale_in_infer' in model {side} scales outputs by "
            "(1 - p) in eval mode; torch (and paddle's mode 'upscale_in_train') scales in "
            "training instead, and is the identity in eval mode"
        ]
    return []
