"""Configuration differences between matched layers, random layers, optimizer settings.

Numbers that differ three steps into training often come from a setting, not from a kernel:
a BatchNorm momentum written in the other framework's convention (torch updates
``running = (1 - m) * running + m * batch`` with ``m = 0.1``; paddle
``running = m * running + (1 - m) * batch`` with ``m = 0.9``), an epsilon, a dropout rate, a
GELU approximation, a learning rate. :func:`config_differences` reads those settings from each
matched pair of layers (and from the two optimizers) and says in words which ones disagree.
:func:`random_layers` finds the layers whose output is random in training mode.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from padiff_ir.matching.transforms import class_family
from padiff_ir.matching.types import ModulePair

__all__ = ["RANDOM_FAMILIES", "config_differences", "optimizer_differences", "random_layers"]

logger = logging.getLogger(__name__)

RANDOM_FAMILIES = frozenset(
    {"dropout", "featurealphadropout", "droppath", "stochasticdepth", "rrelu"}
)
"""Class families whose output is random in training mode."""

Getter = Callable[[Any], Any]


def _attr(*names: str) -> Getter:
    def get(module: Any) -> Any:
        for name in names:
            if hasattr(module, name):
                return getattr(module, name)
        return None

    return get


def _torch_bn_momentum(module: Any) -> Any:
    return module.momentum  # None: cumulative moving average


def _paddle_bn_momentum(module: Any) -> Any:
    momentum = getattr(module, "_momentum", None)
    return None if momentum is None else 1.0 - float(momentum)  # in torch's convention


def _paddle_gelu(module: Any) -> Any:
    return "tanh" if getattr(module, "_approximate", False) else "none"


def _tuple(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(
            int(v) if isinstance(v, (int, float)) and float(v).is_integer() else v for v in value
        )
    return value


# family -> [(setting, torch getter, paddle getter)]
_SETTINGS: Mapping[str, list[tuple[str, Getter, Getter]]] = {
    "batchnorm": [
        ("epsilon", _attr("eps"), _attr("_epsilon")),
        (
            "track_running_stats",
            _attr("track_running_stats"),
            lambda m: getattr(m, "_use_global_stats", None) is not False,
        ),
    ],
    "instancenorm": [("epsilon", _attr("eps"), _attr("_epsilon"))],
    "layernorm": [("epsilon", _attr("eps"), _attr("_epsilon"))],
    "groupnorm": [
        ("epsilon", _attr("eps"), _attr("_epsilon")),
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


def _setting(module: Any, framework: str, getters: tuple[Getter, Getter]) -> Any:
    value = getters[0 if framework == "torch" else 1](module)
    return _tuple(value)


def _differ(x: Any, y: Any) -> bool:
    if x is None or y is None:
        return False  # not readable on one side
    if isinstance(x, (int, float)) and isinstance(y, (int, float)) and not isinstance(x, bool):
        return not math.isclose(float(x), float(y), rel_tol=1e-6, abs_tol=1e-12)
    if isinstance(x, tuple) and isinstance(y, (int, float)):
        return any(_differ(v, y) for v in x)
    if isinstance(y, tuple) and isinstance(x, (int, float)):
        return any(_differ(x, v) for v in y)
    return x != y


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else repr(value)


def _batch_norm(path: str, module_a: Any, module_b: Any, fw_a: str, fw_b: str) -> list[str]:
    found = []
    getters = {"torch": _torch_bn_momentum, "paddle": _paddle_bn_momentum}
    m_a, m_b = getters[fw_a](module_a), getters[fw_b](module_b)
    if (m_a is None) != (m_b is None) or (m_a is not None and _differ(m_a, m_b)):

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
        name_a, name_b = type(module_a).__name__, type(module_b).__name__
        family = class_family(name_a, framework_a)
        if family != class_family(name_b, framework_b):
            continue
        label = pair.a if pair.a == pair.b else f"{pair.a} / {pair.b}"
        if family == "batchnorm":
            found += _batch_norm(label, module_a, module_b, framework_a, framework_b)
        for setting, get_torch, get_paddle in _SETTINGS.get(family, ()):
            x = _setting(module_a, framework_a, (get_torch, get_paddle))
            y = _setting(module_b, framework_b, (get_torch, get_paddle))
            if _differ(x, y):
                found.append(
                    f"{label}: {name_a} {setting} {_fmt(x)} in model A ({framework_a}) "
                    f"vs {_fmt(y)} in model B ({framework_b})"
                )
        found += _dropout_mode(label, module_a, module_b, family)
    return found


def _dropout_mode(label: str, module_a: Any, module_b: Any, family: str) -> list[str]:
    if family != "dropout":
        return []
    modes = [getattr(m, "mode", "upscale_in_train") for m in (module_a, module_b)]
    if "downscale_in_infer" in modes and modes[0] != modes[1]:
        return [
            f"{label}: paddle Dropout mode 'downscale_in_infer' scales outputs by (1 - p) "
            "in eval mode; torch (and mode 'upscale_in_train') scales in training instead"
        ]
    return []


def random_layers(model: Any, framework: str, side: str) -> list[tuple[str, Any, str]]:
    """``(path, module, description)`` of each layer whose output is random in training mode."""
    from padiff_ir.pairing.layer_map import named_modules

    found = []
    for path, module in named_modules(model):
        name = type(module).__name__
        family = class_family(name, framework).replace("_", "")
        if family in RANDOM_FAMILIES or "droppath" in family or "stochasticdepth" in family:
            rate = getattr(module, "p", getattr(module, "drop_prob", None))
            rate_text = f", p={rate:g}" if isinstance(rate, (int, float)) else ""
            mode = "training" if module.training else "eval"
            found.append(
                (
                    path,
                    module,
                    f"model {side} ({framework}) {path or '<root>'}: "
                    f"{name}{rate_text}, {mode} mode",
                )
            )
    return found


_OPTIMIZER_SETTINGS = ("lr", "weight_decay", "momentum", "betas", "eps", "nesterov", "amsgrad")


def optimizer_differences(
    config_a: Mapping[str, Any], config_b: Mapping[str, Any], fw_a: str, fw_b: str
) -> list[str]:
    """Sentences naming the optimizer settings that differ (class kinds and hyperparameters).

    Example:
        >>> optimizer_differences({"kind": "sgd", "class": "SGD", "lr": 0.1},
        ...                       {"kind": "sgd", "class": "SGD", "lr": 0.2}, "torch", "paddle")
        ['optimizer: learning rate 0.1 in model A (torch SGD) vs 0.2 in model B (paddle SGD)']
    """
    found = []
    label_a = f"{fw_a} {config_a.get('class', '?')}"
    label_b = f"{fw_b} {config_b.get('class', '?')}"
    if config_a.get("kind") != config_b.get("kind"):
        found.append(
            f"optimizer: {label_a} in model A vs {label_b} in model B (different update rules)"
        )
    names = {"lr": "learning rate", "weight_decay": "weight decay", "eps": "epsilon"}
    for key in _OPTIMIZER_SETTINGS:
        x, y = config_a.get(key), config_b.get(key)
        if key == "weight_decay":
            x, y = x or 0.0, y or 0.0
        if x is None or y is None or not _differ(_tuple(x), _tuple(y)):
            continue
        found.append(
            f"optimizer: {names.get(key, key)} {_fmt(x)} in model A ({label_a}) vs "
            f"{_fmt(y)} in model B ({label_b})"
        )
    if config_a.get("decoupled_weight_decay") != config_b.get("decoupled_weight_decay") and (
        config_a.get("weight_decay") or config_b.get("weight_decay")
    ):
        found.append(
            f"optimizer: weight decay is decoupled (AdamW) on one side only "
            f"({label_a} vs {label_b})"
        )
    return found
