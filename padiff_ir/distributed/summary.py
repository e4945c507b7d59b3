"""Terminal summary of a :class:`~padiff_ir.distributed.result.ShardedResult`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from padiff_ir._terminal import Column, line, render, table, terminal_width

if TYPE_CHECKING:
    from padiff_ir.distributed.result import ShardedResult

__all__ = ["render_summary"]

_COLUMNS = (
    Column("step", width=4, justify="right"),
    Column("module", width=20, flexible=True),
    Column("kind", width=10),
    Column("style", width=6),
    Column("placement", width=10),
    Column("ranks", width=7),
    Column("by", width=6),
    Column("what departs", width=24, flexible=True),
)


def render_summary(result: ShardedResult, *, width: int | None = None, color: bool = False) -> str:
    """The verdict, what was compared, and one row per culprit."""
    width = width or terminal_width()
    verdict = "ALIGNED" if result.ok else "DIVERGED"
    parts: list = [
        line(
            f"{verdict}: {result.framework_a} x{result.world_a} vs "
            f"{result.framework_b} x{result.world_b}, {result.compared} tensors over "
            f"{result.steps} steps ({result.by_tensor} read in full, {result.failing} departing)",
            "bold green" if result.ok else "bold red",
        ),
        line(
            f"engine {result.engine}, {result.workers} workers, {result.tasks} tasks, "
            f"{result.seconds:.2f} s, {result.bytes_read / 1e6:.1f} MB read"
        ),
    ]
    if result.departing_steps:
        steps = ", ".join(str(s) for s in result.departing_steps)
        parts.append(
            line(f"departing steps: {steps} (culprits of step {result.departing_steps[0]})")
        )
    if result.culprits:
        rows = [
            (
                str(c.step),
                c.module_a if c.module_a == c.module_b else f"{c.module_a} ~ {c.module_b}",
                c.kind,
                c.style or "-",
                c.placement,
                ",".join(str(r) for r in c.ranks) or "-",
                c.by,
                c.reason,
            )
            for c in result.culprits
        ]
        parts.append(table(_COLUMNS, rows, width))
    for split in result.split_replicas[:5]:
        ranks = ",".join(str(r) for r in split.ranks)
        parts.append(
            line(
                f"replicas differ: run {split.side} step {split.step} {split.module} "
                f"({split.io}) on ranks {ranks}"
            )
        )
    return render(parts, width, color=color)
