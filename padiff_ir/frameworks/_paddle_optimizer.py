"""A paddle optimizer copied onto a cast copy of its model (:meth:`cast_copy_trained`).

paddle's optimizers are not deep-copyable with their parameters remapped, so the copy is made
again through its class's constructor: every argument of the constructor that the optimizer
keeps as ``_<argument>`` (``_beta1``, ``_momentum``, ``_grad_clip``, ``_learning_rate``: a
float or an ``LRScheduler``, copied...), the weight decay where paddle keeps it (a regularizer,
momentum's folded L2 coefficient, AdamW's decoupled coefficient), the parameter groups with
their own settings, and the accumulators already made (moments, velocities, beta powers: cast
and keyed by the copy's parameters), so a copy made mid-training steps on as the original.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from padiff_ir.hints import Optimizer, Tensor

__all__ = ["copied_optimizer"]

#: constructor arguments read elsewhere than ``_<argument>``
_HANDLED = frozenset({"self", "parameters", "weight_decay", "apply_decay_param_fun", "name"})
_SIXTEEN_BIT = ("float16", "bfloat16")


def copied_optimizer(optimizer: Optimizer, mapping: Mapping[int, Tensor], dtype: str) -> Any:
    """An optimizer of ``optimizer``'s class and settings over the parameters ``mapping``
    maps ``optimizer``'s onto (by ``id``), its accumulators cast to ``dtype``'s.

    Raises:
        NotImplementedError: a constructor argument without a default that the optimizer
            does not keep (a class this cannot rebuild); the caller keeps the fixed
            tolerance for weights and states.
    """
    cls = type(optimizer)
    arguments: dict[str, Any] = {"parameters": _parameters(optimizer, mapping)}
    for name, parameter in inspect.signature(cls.__init__).parameters.items():
        if name in _HANDLED or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if hasattr(optimizer, f"_{name}"):
            arguments[name] = _copied(getattr(optimizer, f"_{name}"))
        elif parameter.default is inspect.Parameter.empty:
            raise NotImplementedError(f"{cls.__name__}'s {name!r} is not kept on the optimizer")
    if dtype not in _SIXTEEN_BIT and "multi_precision" in arguments:
        arguments["multi_precision"] = False  # master weights are for 16-bit parameters only
    arguments["weight_decay"] = _weight_decay(optimizer)
    decides = getattr(optimizer, "_apply_decay_param_fun", None)
    if decides is not None:
        arguments["apply_decay_param_fun"] = _by_original_name(decides, optimizer, mapping)
    result = cls(**arguments)
    _copy_accumulators(optimizer, result, mapping, dtype)
    return result


def _copied(value: Any) -> Any:
    """A setting as the copy takes it: tensors cloned, schedulers and clips deep-copied."""
    if hasattr(value, "clone") and hasattr(value, "stop_gradient"):  # a paddle tensor
        return value.clone()
    if isinstance(value, (int, float, str, bool)) or value is None or callable(value):
        return value
    return copy.deepcopy(value)


def _parameters(optimizer: Optimizer, mapping: Mapping[int, Tensor]) -> list[Any]:
    """The optimizer's parameters (or groups, with their own settings) on the copy."""
    given = list(getattr(optimizer, "_parameter_list", None) or [])
    if given and isinstance(given[0], dict):
        groups = getattr(optimizer, "_param_groups", None) or given
        return [
            {
                **{k: _copied(v) for k, v in group.items() if k != "params"},
                "params": [mapping[id(p)] for p in group["params"] if id(p) in mapping],
            }
            for group in groups
        ]
    return [mapping[id(p)] for p in given if id(p) in mapping]


def _weight_decay(optimizer: Optimizer) -> Any:
    """The decay as the constructor takes it back."""
    if type(optimizer).__name__ == "AdamW" or hasattr(optimizer, "_apply_decay_param_fun"):
        coefficient = getattr(optimizer, "_weight_decay", None)
        if coefficient is not None:
            return _copied(coefficient)
    regularizer = getattr(optimizer, "regularization", None)
    if regularizer is not None:
        return copy.deepcopy(regularizer)
    if getattr(optimizer, "_regularization_method", "") == "l2_decay":  # momentum folds it in
        return float(optimizer._regularization_coeff)
    return None


def _by_original_name(
    decides: Callable[[str], bool], optimizer: Optimizer, mapping: Mapping[int, Tensor]
) -> Callable[[str], bool]:
    """AdamW's ``apply_decay_param_fun`` asked about the original parameter's name."""
    names = {
        mapping[id(p)].name: p.name
        for p in _flat(getattr(optimizer, "_parameter_list", None) or [])
        if id(p) in mapping
    }
    return lambda name: decides(names.get(name, name))


def _flat(given: list[Any]) -> list[Any]:
    if given and isinstance(given[0], dict):
        return [p for group in given for p in group["params"]]
    return given


def _copy_accumulators(
    original: Optimizer, copied: Any, mapping: Mapping[int, Tensor], dtype: str
) -> None:
    """The moments, velocities and beta powers ``original`` has made, cast and keyed by the
    copy's parameters (made later, at the first step, where it has none)."""
    accumulators = getattr(original, "_accumulators", None) or {}
    if not accumulators:
        return
    made: set[str] = getattr(original, "_already_create_accumulator", set())
    params = {p.name: p for p in _flat(original._parameter_list) if id(p) in mapping}
    by_name = {name: mapping[id(p)] for name, p in params.items()}
    for kind, tensors in accumulators.items():
        for name, tensor in tensors.items():
            target = by_name.get(name)
            if target is None:
                continue
            value = tensor.clone()
            # a state in its parameter's dtype follows it (16-bit weights: float32 states)
            if value.is_floating_point() and value.dtype == params[name].dtype:
                value = value.astype("float32" if dtype in _SIXTEEN_BIT else dtype)
            copied._accumulators.setdefault(kind, {})[target.name] = value
    copied._already_create_accumulator.update(by_name[n].name for n in made if n in by_name)
