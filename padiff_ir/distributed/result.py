"""The result of comparing two sharded runs: a verdict, culprits with rank and placement."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from padiff_ir._result import Verdict, VerdictResult
from padiff_ir.errors import ReportError

__all__ = ["ShardCulprit", "ShardedResult", "SplitReplicas"]


@dataclass(frozen=True)
class ShardCulprit:
    """A module call whose own computation departs: its output while its input agrees, or
    (in backward) its input or parameter gradient while its input, output and output gradient
    agree.

    Attributes:
        step: the training step (from 0).
        Culprits are those of the first departing step (later steps inherit its weights).
        module_a / module_b: its paths in the two runs; call: which call of it in the step.
        class_a: A's class; style: A's tensor-parallel style (``column``, ``row``, ``vocab``,
            ``""`` for none).
        placement_a / placement_b: where its output lives on each side's ranks
            (``shard(-1)``, ``replicated``, ``partial``).
        ranks_a / ranks_b: the ranks whose own block of the output departs (every rank holding
            it when the blocks cannot be told apart; empty for a one-process run).
        reason: what departs (a shape, a sum, the elementwise verdict).
        max_abs: the largest elementwise difference, when full tensors were compared.
        by: ``digest`` or ``tensor``: what decided.
        order: where the call entered in its step (data-flow order).
        kind: what departs: ``output``, ``input_grad`` (the gradient it passes to its input)
            or ``param_grad`` (a gradient of one of its own parameters after backward and the
            data-parallel all-reduce).
    """

    step: int
    module_a: str
    module_b: str
    call: int
    class_a: str
    style: str
    placement_a: str
    placement_b: str
    ranks_a: tuple[int, ...]
    ranks_b: tuple[int, ...]
    reason: str
    max_abs: float | None
    by: str
    order: int
    kind: str = "output"

    @property
    def ranks(self) -> tuple[int, ...]:
        """The departing ranks of whichever side is sharded (A's first)."""
        return self.ranks_a or self.ranks_b

    @property
    def placement(self) -> str:
        """The output's placement on the sharded side (A's first)."""
        return self.placement_b if self.ranks_b and not self.ranks_a else self.placement_a

    def describe(self) -> str:
        ranks = ",".join(str(r) for r in self.ranks) or "-"
        style = f" {self.style}-parallel" if self.style else ""
        return (
            f"step {self.step} {self.module_a or '<root>'} {self.kind} ({self.class_a}{style}, "
            f"{self.placement}) ranks {ranks}: {self.reason}"
        )


@dataclass(frozen=True)
class SplitReplicas:
    """Ranks holding a replica that departs from their group's first replica (a missing or
    wrong collective): ``side`` ``a`` or ``b``, the module and ``in``, ``out``,
    ``output_grad``, ``input_grad`` or ``param_grad`` (data-parallel replicas whose parameter
    gradients differ after the all-reduce)."""

    step: int
    side: str
    module: str
    io: str
    ranks: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class ShardedResult(VerdictResult):
    """Do two sharded (or unsharded) runs compute the same thing, and where not.

    ``bool(result)`` is the verdict; ``culprits`` name each departing module with the step,
    the ranks and the placement; ``to_json()`` is data, ``str(result)`` a summary.
    """

    ok: bool
    run_a: str
    run_b: str
    framework_a: str
    framework_b: str
    world_a: int
    world_b: int
    steps: int
    compared: int
    by_tensor: int
    failing: int
    departing_steps: tuple[int, ...]
    culprits: tuple[ShardCulprit, ...]
    split_replicas: tuple[SplitReplicas, ...]
    unpaired: tuple[str, ...]
    engine: str
    workers: int
    tasks: int
    seconds: float
    bytes_read: int

    kind: ClassVar[str] = "sharded"
    summary_module: ClassVar[str] = "padiff_ir.distributed.summary"

    @property
    def verdict(self) -> Verdict:
        return Verdict.of(self.ok)

    @property
    def first_culprit(self) -> ShardCulprit | None:
        return self.culprits[0] if self.culprits else None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}

    def to_html(self, path: str | Path, *, title: str | None = None) -> Path:
        """Not drawn yet: the HTML report renders ``match`` and ``auto_diff`` results.

        Raises:
            ReportError: always; use :meth:`to_json` or ``str(result)``.
        """
        raise ReportError(
            "the HTML report does not draw sharded-run results yet: use result.to_json(path) "
            "or str(result)"
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShardedResult:
        data = {k: v for k, v in data.items() if k != "kind"}
        data["culprits"] = tuple(
            ShardCulprit(
                **{
                    **c,
                    "ranks_a": tuple(c["ranks_a"]),
                    "ranks_b": tuple(c["ranks_b"]),
                }
            )
            for c in data["culprits"]
        )
        data["split_replicas"] = tuple(
            SplitReplicas(**{**s, "ranks": tuple(s["ranks"])}) for s in data["split_replicas"]
        )
        data["unpaired"] = tuple(data["unpaired"])
        data["departing_steps"] = tuple(data["departing_steps"])
        return cls(**data)
