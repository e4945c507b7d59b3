"""Argument handling of :func:`~padiff_ir.native.auto_diff`: pairs put in model order, losses run.

PaDiff's examples give per-framework pairs in ``(paddle, torch)`` order whatever order the models
come in (``loss_fn=[paddle_loss, torch_loss]``, ``optimizer=[paddle_opt, torch_opt]``). A pair is
matched to models A and B by the framework its items show: tensors, modules and optimizers by
type; a function by what it is bound to or closes over (a loss module, a target tensor, an
optimizer) or the framework module it names (``torch.mean``), as
:func:`padiff_ir.frameworks.framework_of_value` reads it. A pair whose items show nothing is
taken in model order, and a loss that then fails on its model's output raises
:class:`AutoDiffError` saying so and how to fix it.
"""

from __future__ import annotations

import inspect
import logging
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from padiff_ir._interrupts import reraise_interruption
from padiff_ir.errors import AutoDiffError
from padiff_ir.frameworks import FRAMEWORKS, Framework, detect_framework, framework_of_value
from padiff_ir.hints import Model, Outputs

__all__ = ["AutoDiffError", "LossFunction", "OptimizerStep", "model_framework", "order_pair"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")


def order_pair(
    pair: Sequence[_T], framework_a: str, framework_b: str, what: str
) -> tuple[_T, _T, str]:
    """``(item for A, item for B, note)``: the pair swapped when its items show the other order.

    Raises:
        AutoDiffError: ``pair`` is not two items.
    """
    if not isinstance(pair, (list, tuple)) or len(pair) != 2:
        raise AutoDiffError(
            f"{what} must be a pair [for model A, for model B] (PaDiff's [paddle, torch] order is "
            f"recognised by type), got {type(pair).__name__}"
        )
    first, second = pair
    if framework_a == framework_b:
        return first, second, ""
    kind_first, kind_second = framework_of_value(first), framework_of_value(second)
    swapped = (kind_first == framework_b and kind_second != framework_b) or (
        kind_second == framework_a and kind_first != framework_a
    )
    if swapped:
        note = (
            f"{what} was given as [{framework_b}, {framework_a}] (PaDiff's order); used in "
            f"model order [{framework_a}, {framework_b}]"
        )
        logger.info("%s", note)
        return second, first, note
    return first, second, ""


def describe_callable(fn: object) -> str:
    """``name (file:line)`` of a function, or its type for other callables."""
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    code = getattr(fn, "__code__", None)
    if code is not None:
        return f"{name} ({code.co_filename.rsplit('/', 1)[-1]}:{code.co_firstlineno})"
    return name


@dataclass
class LossFunction:
    """One side's loss: ``fn(output) -> scalar``, with what the error message needs."""

    fn: Callable[[Any], Any]
    position: int  # index in the pair as the user gave it
    side: str  # "A" or "B"
    framework: str
    swapped: bool

    def __call__(self, output: Outputs, ops: Framework, model_name: str) -> Any:
        try:
            loss = self.fn(output)
        except Exception as err:
            reraise_interruption(err)
            raise AutoDiffError(self._failure(f"{type(err).__name__}: {err}", model_name)) from err
        if not ops.is_tensor(loss):
            raise AutoDiffError(
                self._failure(
                    f"it returned a {type(loss).__module__}.{type(loss).__qualname__}, not a "
                    f"{self.framework} tensor",
                    model_name,
                )
            )
        if ops.numel(loss) != 1:
            raise AutoDiffError(
                f"loss_fn[{self.position}] {describe_callable(self.fn)} returned shape "
                f"{[int(d) for d in loss.shape]} on model {self.side}'s output; a loss must be a "
                "scalar: reduce it (e.g. .mean())"
            )
        return loss

    def _failure(self, what: str, model_name: str) -> str:
        head = (
            f"loss_fn[{self.position}] {describe_callable(self.fn)} failed on the output of "
            f"model {self.side} ({self.framework} {model_name}): {what}."
        )
        if self.swapped:
            return (
                f"{head} The pair was read as PaDiff's [paddle, torch] order because its "
                "functions refer to those frameworks; if that is wrong, pass loss_fn in the "
                "order of the models given to auto_diff."
            )
        other = next((name for name in FRAMEWORKS if name != self.framework), "other")
        return (
            f"{head} loss_fn was read in model order [loss for model A, loss for model B] "
            "because its functions do not show their framework. If "
            f"loss_fn[{self.position}] is the {other} loss (PaDiff's [paddle_loss, "
            "torch_loss] with the models given as (torch, paddle)), swap the two; or let "
            "each loss close over its framework's loss module or target tensor so the order "
            "is recognised."
        )


@dataclass
class OptimizerStep:
    """One side's optimizer: an instance, a factory returning one, or a step function."""

    value: Any
    ops: Framework
    instance: Any = None

    def __post_init__(self) -> None:
        if self.ops.is_optimizer(self.value):
            self.instance = self.value
        elif not callable(self.value):
            raise AutoDiffError(
                f"optimizer items must be {self.ops.name} optimizers or zero-argument callables, "
                f"got {type(self.value).__qualname__}"
            )
        else:
            self.instance = _optimizer_in_closure(self.value, self.ops)

    def step(self) -> None:
        if self.ops.is_optimizer(self.value):
            self.ops.optimizer_step(self.value)
            return
        result = self.value()
        if self.ops.is_optimizer(result):  # a factory: keep the optimizer for the next steps
            self.value = self.instance = result
            self.ops.optimizer_step(result)


def _optimizer_in_closure(fn: object, ops: Framework) -> Any:
    """The optimizer a step function closes over or is bound to (for state comparison)."""
    bound = getattr(fn, "__self__", None)
    if bound is not None and ops.is_optimizer(bound):
        return bound
    if isinstance(fn, types.FunctionType):
        for cell in fn.__closure__ or ():
            try:
                value = cell.cell_contents
            except ValueError:
                continue
            if ops.is_optimizer(value):
                return value
        for name in fn.__code__.co_names:
            value = fn.__globals__.get(name)
            if value is not None and ops.is_optimizer(value):
                return value
    return None


def check_one_argument(fn: object, what: str) -> None:
    """Raise unless ``fn`` is callable with one positional argument."""
    if not callable(fn):
        raise AutoDiffError(f"{what} must be callable, got {type(fn).__qualname__}")
    try:
        inspect.signature(fn).bind(None)
    except TypeError as err:
        raise AutoDiffError(
            f"{what} {describe_callable(fn)} must take exactly one argument (the model output) "
            f"and return a scalar: {err}"
        ) from err
    except ValueError:  # builtins without a signature
        return


def model_framework(model: Model, side: str) -> str:
    """``"torch"`` or ``"paddle"``: the framework of model ``side`` (``"A"`` or ``"B"``).

    Raises:
        AutoDiffError: the model is an ONNX model.
    """
    framework = detect_framework(model)
    if framework not in FRAMEWORKS:
        raise AutoDiffError(
            f"auto_diff trains torch or paddle models; model {side} is {framework} "
            "(use padiff_ir.match to compare an ONNX model's inference)"
        )
    return framework
