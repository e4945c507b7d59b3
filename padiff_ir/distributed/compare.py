"""Compare two sharded (or unsharded) runs from their stores: tasks, engines, culprits.

The paired modules are cut into windows of (modules, step), one task each
(:func:`~padiff_ir.distributed.tasks.run_window`); the tasks run in this process, in local
processes, or as Ray tasks, the same function on the same data. A culprit is a module call
whose output departs while its input agrees (its own error in forward), or whose input or
parameter gradient departs while its input, output and output gradient agree (its own error in
backward: a missing all-reduce of a gradient, a wrong scaling), the innermost of such calls; it
names the step, the modules on both sides, what departs (``kind``), the placements and the
ranks whose block departs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from padiff_ir._paths import strictly_within
from padiff_ir.distributed.canonical import Run
from padiff_ir.distributed.result import ShardCulprit, ShardedResult, SplitReplicas
from padiff_ir.distributed.tasks import Outcome, WindowTask, run_window
from padiff_ir.errors import OptionError
from padiff_ir.metrics import check_bound

__all__ = ["ENGINES", "compare_runs"]

logger = logging.getLogger(__name__)

ENGINES = ("local", "ray")


def _tasks(
    run_a: Run, run_b: Run, pairs: Mapping[str, str], window: int, atol: float, rtol: float
) -> list[WindowTask]:
    order = [p for p in run_a.classes if p in pairs]
    steps = sorted(set(run_a.steps()) & set(run_b.steps()))
    chunks = [tuple(order[i : i + window]) for i in range(0, len(order), window)]
    return [
        WindowTask(
            str(run_a.root),
            str(run_b.root),
            step,
            tuple((p, pairs[p]) for p in chunk),
            atol,
            rtol,
        )
        for step in steps
        for chunk in chunks
    ]


def _run_local(tasks: list[WindowTask], workers: int) -> list[tuple[Outcome, ...]]:
    if workers <= 1:
        return [run_window(t) for t in tasks]
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        return list(pool.map(run_window, tasks))


def _run_ray(tasks: list[WindowTask], workers: int) -> list[tuple[Outcome, ...]]:
    try:
        import ray
    except ImportError as err:
        raise OptionError(
            "engine='ray' needs Ray: pip install 'padiff-ir[distributed]' (or use engine='local')",
            option="engine",
        ) from err
    started = not ray.is_initialized()
    if started:
        ray.init(
            num_cpus=max(workers, 1),
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    try:
        remote = ray.remote(num_cpus=1)(run_window)
        return list(ray.get([remote.remote(t) for t in tasks]))
    finally:
        if started:
            ray.shutdown()


def _culprits(outcomes: Sequence[Outcome], run_a: Run, run_b: Run) -> list[ShardCulprit]:
    """The culprits of the first step that departs (later steps inherit its weights)."""
    departing = [o.key[0] for o in outcomes if not o.ok]
    if not departing:
        return []
    outcomes = [o for o in outcomes if o.key[0] == min(departing)]
    calls: dict[tuple[int, str, int], dict[str, list[Outcome]]] = {}
    for o in outcomes:
        step, path, call, io, _ = o.key
        calls.setdefault((step, path, call), {}).setdefault(io, []).append(o)
    own = []
    for (step, path, call), found in calls.items():
        departs = _own_error(found)
        if departs is not None:
            own.append((step, path, call, departs))
    culprits = []
    for step, path, call, (kind, o) in own:
        inner = any(s == step and strictly_within(p, path) for s, p, _, _ in own)
        if inner:
            continue
        culprits.append(
            ShardCulprit(
                step=step,
                module_a=path,
                module_b=o.path_b,
                call=call,
                class_a=run_a.classes.get(path, ""),
                style=run_a.styles.get(path, "") or run_b.styles.get(o.path_b, ""),
                placement_a=o.placement_a,
                placement_b=o.placement_b,
                ranks_a=o.ranks_a,
                ranks_b=o.ranks_b,
                reason=o.reason,
                max_abs=o.max_abs,
                by=o.by,
                order=o.order,
                kind=kind,
            )
        )
    return sorted(culprits, key=lambda c: (c.step, c.order))


_KINDS = {"out": "output", "input_grad": "input_grad", "param_grad": "param_grad"}


def _own_error(found: Mapping[str, list[Outcome]]) -> tuple[str, Outcome] | None:
    """``(kind, first departing outcome)`` when a call's own computation departs: its output
    while its input agrees, else its input or parameter gradient while its input, output and
    output gradient agree."""

    def agree(io: str) -> bool:
        return all(o.ok for o in found.get(io, []))

    for io in ("out", "input_grad", "param_grad"):
        failing = [o for o in found.get(io, []) if not o.ok]
        if failing and agree("in") and (io == "out" or (agree("out") and agree("output_grad"))):
            return _KINDS[io], failing[0]
    return None


def _split(outcomes: Sequence[Outcome]) -> list[SplitReplicas]:
    found = []
    for o in outcomes:
        for side, ranks in (("a", o.split_a), ("b", o.split_b)):
            if ranks:
                found.append(SplitReplicas(o.key[0], side, o.key[1], o.key[3], ranks))
    return found


def _engine(engine: str) -> Callable[[list[WindowTask], int], list[tuple[Outcome, ...]]]:
    if engine == "local":
        return _run_local
    if engine == "ray":
        return _run_ray
    raise OptionError(f"engine={engine!r} is not one of {ENGINES}", option="engine")


def compare_runs(
    run_a: str | Path,
    run_b: str | Path,
    *,
    pairs: Mapping[str, str] | None = None,
    atol: float = 1e-5,
    rtol: float = 1e-5,
    engine: str = "local",
    workers: int = 1,
    window: int = 8,
) -> ShardedResult:
    """Compare two runs captured with :func:`~padiff_ir.distributed.capture_ranks`.

    Args:
        run_a, run_b: the stores (A is the reference); either may be sharded in any way, or
            one process.
        pairs: module paths of A -> module paths of B (:func:`logical_pairs` gives them for
            two models by the matcher); by default the paths both runs recorded.
        atol, rtol: elementwise tolerance.
        engine: ``local`` (this process, or ``workers`` processes) or ``ray`` (Ray tasks on
            the running cluster; a local one of ``workers`` CPUs when none is).
        workers: processes or Ray CPUs.
        window: modules per task.

    Raises:
        FileFormatError: a directory is not a store.
        OptionError: an engine, tolerance or size it cannot take.
    """
    atol, rtol = check_bound("atol", atol), check_bound("rtol", rtol)
    if window < 1 or workers < 1:
        raise OptionError("window and workers must be at least 1", option="window")
    runner = _engine(engine)
    start = time.perf_counter()
    a, b = Run(run_a), Run(run_b)
    if pairs is None:
        pairs = {p: p for p in a.classes if p in b.classes}
    tasks = _tasks(a, b, pairs, window, atol, rtol)
    logger.info("comparing %d windows on %s (%d workers)", len(tasks), engine, workers)
    outcomes = [o for chunk in runner(tasks, workers) for o in chunk]
    culprits = _culprits(outcomes, a, b)
    departing = sorted({o.key[0] for o in outcomes if not o.ok})
    return ShardedResult(
        ok=all(o.ok for o in outcomes),
        run_a=str(run_a),
        run_b=str(run_b),
        framework_a=a.framework,
        framework_b=b.framework,
        world_a=a.world,
        world_b=b.world,
        steps=len({t.step for t in tasks}),
        compared=len(outcomes),
        by_tensor=sum(o.by == "tensor" for o in outcomes),
        failing=sum(not o.ok for o in outcomes),
        departing_steps=tuple(departing),
        culprits=tuple(culprits),
        split_replicas=tuple(_split(outcomes)),
        unpaired=tuple(p for p in pairs if pairs[p] not in b.classes),
        engine=engine,
        workers=workers,
        tasks=len(tasks),
        seconds=round(time.perf_counter() - start, 3),
        bytes_read=sum(o.bytes_read for o in outcomes),
    )
