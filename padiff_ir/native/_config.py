"""Random layers and optimizer settings; the layers' settings come from one vocabulary.

Numbers that differ three steps into training often come from a setting, not from a kernel:
the layers' settings (BatchNorm momentum conventions, epsilons, dropout modes, GELU
approximations...) are read by :func:`padiff_ir.pairing.settings.config_differences`, the
vocabulary ``match`` explains culprits with too; :func:`optimizer_differences` reads the two
optimizers' settings. :func:`random_layers` finds the layers whose output is random in
training mode.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from padiff_ir.hints import Model
from padiff_ir.matching.transforms import class_family
from padiff_ir.pairing.settings import config_differences, differ, fmt, settings_tuple

__all__ = ["RANDOM_FAMILIES", "config_differences", "optimizer_differences", "random_layers"]

logger = logging.getLogger(__name__)

RANDOM_FAMILIES = frozenset(
    {"dropout", "featurealphadropout", "droppath", "stochasticdepth", "rrelu"}
)
"""Class families whose output is random in training mode."""


def random_layers(model: Model, framework: str, side: str) -> list[tuple[str, Any, str]]:
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
    config_a: Mapping[str, object], config_b: Mapping[str, object], fw_a: str, fw_b: str
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
        if x is None or y is None or not differ(settings_tuple(x), settings_tuple(y)):
            continue
        found.append(
            f"optimizer: {names.get(key, key)} {fmt(x)} in model A ({label_a}) vs "
            f"{fmt(y)} in model B ({label_b})"
        )
    if config_a.get("decoupled_weight_decay") != config_b.get("decoupled_weight_decay") and (
        config_a.get("weight_decay") or config_b.get("weight_decay")
    ):
        found.append(
            f"optimizer: weight decay is decoupled (AdamW) on one side only "
            f"({label_a} vs {label_b})"
        )
    return found
