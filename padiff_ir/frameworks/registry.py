"""The frameworks padiff-ir knows: how to recognise each one's models, and its implementation.

A :class:`FrameworkSpec` names a framework's package, its model base class (checked without
importing the package) and the :class:`~padiff_ir.frameworks._base.Framework` subclass that
implements it, loaded on first use. Supporting a third framework (JAX/Flax, MindSpore) is one new
file with that subclass and one :func:`register_framework` call.

Examples:
    >>> sorted(FRAMEWORKS)
    ['paddle', 'torch']
    >>> FRAMEWORKS["paddle"].model_class
    ('paddle.nn', 'Layer')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["FRAMEWORKS", "FrameworkSpec", "register_framework"]


@dataclass(frozen=True)
class FrameworkSpec:
    """One framework.

    Attributes:
        name: its name in results and messages (``"torch"``); also its top-level package.
        model_class: ``(module, qualified name)`` of the class its models derive from.
        implementation: ``"module:Class"`` of its :class:`Framework` subclass.
        class_families: lower-case class names whose family is not their name's (torch's
            ``RNN`` is a simple RNN; paddle's ``RNN`` runs any cell), read without importing
            the framework (graphs name their modules' classes).
        linear_weight_transposed: whether its ``Linear`` holds its weight as ``[out, in]``,
            the transpose of the ``[in, out]`` a ``MatMul`` reads.
    """

    name: str
    model_class: tuple[str, str]
    implementation: str
    class_families: Mapping[str, str] = field(default_factory=dict, hash=False)
    linear_weight_transposed: bool = False


FRAMEWORKS: dict[str, FrameworkSpec] = {
    "torch": FrameworkSpec(
        "torch",
        ("torch.nn", "Module"),
        "padiff_ir.frameworks._torch:TorchFramework",
        class_families={"rnn": "simplernn"},
        linear_weight_transposed=True,
    ),
    "paddle": FrameworkSpec(
        "paddle", ("paddle.nn", "Layer"), "padiff_ir.frameworks._paddle:PaddleFramework"
    ),
}


def register_framework(spec: FrameworkSpec) -> None:
    """Make a framework known (or replace what is known of it)."""
    FRAMEWORKS[spec.name] = spec
