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

This module names the settings of each layer family; each framework reads them from its own
layers (:attr:`padiff_ir.frameworks.Framework.settings`: torch's ``eps`` and paddle's
``_epsilon`` are both the ``epsilon``), with its BatchNorm momentum convention and dropout
modes, so a third framework brings its vocabulary in its own file.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any

from padiff_ir.frameworks import get_framework
from padiff_ir.frameworks.registry import FRAMEWORKS
from padiff_ir.hints import Module
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

_LIBRARY_SUFFIXES = ("rmsnorm", "layernorm", "groupnorm")
"""Families a library layer belongs to by its class name's ending (``Qwen2RMSNorm``,
``LlamaRMSNorm`` and PaddleFormers' ``RMSNorm`` are all ``rmsnorm``)."""


def settings_tuple(value: Any) -> Any:
    """A setting as compared: lists as tuples, whole floats in them as ints."""
    if isinstance(value, (list, tuple)):
        return tuple(
            int(v) if isinstance(v, (int, float)) and float(v).is_integer() else v for v in value
        )
    return value


_POOLING = ("kernel_size", "stride", "padding", "ceil_mode")
_CONVOLUTION = ("stride", "dilation", "groups", "padding_mode")

#: family -> the settings compared, in the order the sentences name them; each framework reads
#: them from its own layers (:attr:`padiff_ir.frameworks.Framework.settings`)
_SETTINGS: Mapping[str, tuple[str, ...]] = {
    "batchnorm": ("epsilon", "track_running_stats"),
    "instancenorm": ("epsilon",),
    "layernorm": ("epsilon",),
    "rmsnorm": ("epsilon",),
    "groupnorm": ("epsilon", "groups"),
    "dropout": ("p",),
    "gelu": ("approximate",),
    "leakyrelu": ("negative_slope",),
    "softmax": ("axis",),
    "logsoftmax": ("axis",),
    "embedding": ("padding_idx",),
    "upsample": ("mode", "align_corners"),
    **{f"maxpool{n}d": _POOLING for n in (1, 2, 3)},
    **{f"avgpool{n}d": (*_POOLING, "count_include_pad (paddle: not exclusive)") for n in (1, 2, 3)},
    "elu": ("alpha",),
    "celu": ("alpha",),
    "hardtanh": ("min", "max"),
    "softplus": ("beta", "threshold"),
    "prelu": (),
    "flatten": ("start_axis", "stop_axis"),
    **{f"conv{n}d": _CONVOLUTION for n in (1, 2, 3)},
    **{f"convtranspose{n}d": _CONVOLUTION for n in (1, 2, 3)},
}


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


def _base_family(module: Module, framework: str) -> str:
    """The family of what ``module`` is (a subclass of ``nn.Linear`` is a ``linear``)."""
    base = get_framework(framework).base_layer(module) if framework in FRAMEWORKS else ""
    return setting_family(type(module).__name__, framework, base)


def op_setting(
    op_type: str, attribute: str, module: Module, framework: str
) -> tuple[str, Any] | None:
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
    family, setting = found
    if setting not in _SETTINGS.get(family, ()):
        return None
    return setting, _setting(module, framework, family, setting)


def _setting(module: Module, framework: str, family: str, setting: str) -> Any:
    """``module``'s setting as its framework keeps it (None for a framework not registered)."""
    if framework not in FRAMEWORKS:
        return None
    return settings_tuple(get_framework(framework).setting(module, family, setting))


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


def _batch_norm(path: str, module_a: Module, module_b: Module, fw_a: str, fw_b: str) -> list[str]:
    found = []
    framework_a, framework_b = get_framework(fw_a), get_framework(fw_b)
    m_a, m_b = framework_a.batch_norm_momentum(module_a), framework_b.batch_norm_momentum(module_b)
    if (m_a is None) != (m_b is None) or (m_a is not None and differ(m_a, m_b)):

        def show(value: Any, framework: str) -> str:  # value in torch's convention
            if value is None:
                return "None (cumulative average)"
            return f"{get_framework(framework).own_momentum(value):g}"

        if fw_a != fw_b and m_a is not None:
            text = (
                f"{path}: BatchNorm momentum {show(m_a, fw_a)} in model A ({fw_a}) is "
                f"{show(m_a, fw_b)} in {fw_b}'s convention, but model B ({fw_b}) has "
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
    unbiased = framework_a.batch_norm_unbiased_variance, framework_b.batch_norm_unbiased_variance
    if unbiased[0] != unbiased[1] and training:
        by_unbiased, by_biased = (fw_a, fw_b) if unbiased[0] else (fw_b, fw_a)
        found.append(
            f"{path}: in training mode {by_unbiased}'s BatchNorm updates running_var with the "
            "unbiased batch variance (x n/(n-1), n values per channel) and "
            f"{by_biased}'s with the biased one; the running variances differ by that factor "
            "on each update"
        )
    return found


def config_differences(
    pairs: Iterable[ModulePair],
    modules_a: Mapping[str, Module],
    modules_b: Mapping[str, Module],
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
    label: str, module_a: Module, module_b: Module, framework_a: str, framework_b: str
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
    for setting in _SETTINGS.get(family, ()):
        x = _setting(module_a, framework_a, family, setting)
        y = _setting(module_b, framework_b, family, setting)
        if differ(x, y):
            found.append(
                f"{label}: {name_a} {setting} {fmt(x)} in model A ({framework_a}) "
                f"vs {fmt(y)} in model B ({framework_b})"
            )
    if family == "dropout":
        found += _dropout_mode(label, module_a, module_b, framework_a, framework_b)
    return found


def _dropout_mode(
    label: str, module_a: Module, module_b: Module, framework_a: str, framework_b: str
) -> list[str]:
    if framework_a not in FRAMEWORKS or framework_b not in FRAMEWORKS:
        return []
    modes = [
        get_framework(framework).dropout_mode(module)
        for framework, module in ((framework_a, module_a), (framework_b, module_b))
    ]
    if "downscale_in_infer" in modes and modes[0] != modes[1]:
        side = "A" if modes[0] == "downscale_in_infer" else "B"
        return [
            f"{label}: Dropout mode 'downscale_in_infer' in model {side} scales outputs by "
            "(1 - p) in eval mode; torch (and paddle's mode 'upscale_in_train') scales in "
            "training instead, and is the identity in eval mode"
        ]
    return []
