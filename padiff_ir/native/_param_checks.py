"""Parameter-level comparisons: values, gradients and optimizer state through the layout map.

Each :class:`~padiff_ir.matching.types.ParamPair` says how A's tensors become B's
(:func:`~padiff_ir.matching.transforms.apply_transform`: a transposed Linear weight, a fused qkv
split in three...). Gradients and optimizer moments have their parameter's layout, so the same
transform brings A's gradient of a fused ``qkv.weight`` to B's three ``q/k/v`` gradients. Every
comparison is :func:`~padiff_ir.metrics.compare_arrays` of A (in B's layout) with B.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from padiff_ir.errors import WeightAssignError
from padiff_ir.frameworks import Framework
from padiff_ir.hints import Tensor
from padiff_ir.matching.transform_types import ModuleTransform, Transform
from padiff_ir.matching.types import ParamPair
from padiff_ir.metrics import TensorMetrics, Tolerance, compare_arrays
from padiff_ir.native._slots import failed_metrics
from padiff_ir.native._workers import Deferred, Workers
from padiff_ir.native.diff_result import ParamDiff

__all__ = ["ParamComparer"]

logger = logging.getLogger(__name__)

Getter = Callable[[str], Any]


@dataclass
class ParamComparer:
    """Compares tensors attached to parameter pairs (values, gradients, state).

    Attributes:
        pairs: the parameter pairs to compare (blacklisted modules already left out).
        ops_a / ops_b: the two frameworks.
        workers: where the comparisons run (their tolerance is the call's).
        order_of: ``(module_a, kind) -> order`` in the step's timeline.
    """

    pairs: list[ParamPair]
    ops_a: Framework
    ops_b: Framework
    workers: Workers
    order_of: Callable[[str, str], float]
    #: A's arrays by ``(kind, name)`` as compared, kept for a replay (None: not kept)
    kept: dict[tuple[str, str], np.ndarray] | None = None

    def compare(
        self,
        kind: str,
        get_a: Getter,
        get_b: Getter,
        *,
        names: Iterable[str] | None = None,
        missing: str = "",
    ) -> list[ParamDiff]:
        """Compare ``get_a(name)`` with ``get_b(name)`` for every pair both getters know.

        A getter raises ``KeyError`` for a name it does not handle (the pair is skipped) and
        returns ``None`` for a tensor that is absent (a missing gradient); ``missing`` words
        that case. ``names``: restrict to pairs whose A names are in it. Tensors become numpy
        copies here; the layout transforms and comparisons run on the workers.
        """
        wanted = set(names) if names is not None else None
        drafts: list[tuple[ParamPair, str, Deferred, float]] = []
        for pair in self.pairs:
            if isinstance(pair.transform, ModuleTransform):  # copied by a module function
                continue
            if wanted is not None and not set(pair.a) <= wanted:
                continue
            try:
                tensors_a = [get_a(n) for n in pair.a]
                tensors_b = [get_b(n) for n in pair.b]
            except KeyError:
                continue
            drafts += self._submit(pair, kind, tensors_a, tensors_b, missing)
        return [
            ParamDiff(
                "+".join(pair.a),
                name_b,
                pair.module_a,
                pair.module_b,
                kind,
                metrics.result(),
                order,
            )
            for pair, name_b, metrics, order in drafts
        ]

    def _submit(
        self,
        pair: ParamPair,
        kind: str,
        tensors_a: list[Tensor],
        tensors_b: list[Tensor],
        missing: str,
    ) -> list[tuple[ParamPair, str, Deferred, float]]:
        order = self.order_of(pair.module_a, kind)
        none_a = [t is None for t in tensors_a]
        none_b = [t is None for t in tensors_b]
        if all(none_a) and all(none_b):
            return []
        if any(none_a) or any(none_b):
            side = "A" if any(none_a) else "B"
            metrics = failed_metrics(f"no {kind} in model {side}{missing}")
            return [(pair, "+".join(pair.b), Deferred(metrics), order)]
        # a replayed A hands numpy arrays already (see ``kept``)
        arrays_a = [t if isinstance(t, np.ndarray) else self.ops_a.to_numpy(t) for t in tensors_a]
        if self.kept is not None:
            self.kept.update(((kind, name), a) for name, a in zip(pair.a, arrays_a))
        arrays_b = [self.ops_b.to_numpy(t) for t in tensors_b]
        if len(arrays_b) == 1:
            return [
                (
                    pair,
                    pair.b[0],
                    self.workers.run(
                        lambda: _compare_one(
                            pair.transform, arrays_a, arrays_b[0], 0, self.workers.tolerance
                        )
                    ),
                    order,
                )
            ]
        return [
            (
                pair,
                name_b,
                self.workers.run(
                    functools.partial(
                        _compare_one,
                        pair.transform,
                        arrays_a,
                        arrays_b[i],
                        i,
                        self.workers.tolerance,
                    )
                ),
                order,
            )
            for i, name_b in enumerate(pair.b)
        ]


def _compare_one(
    transform: Transform,
    arrays_a: list[np.ndarray],
    array_b: np.ndarray,
    index: int,
    tolerance: Tolerance,
) -> TensorMetrics:
    """A's arrays in B's layout (piece ``index``) compared with ``array_b``."""
    try:
        pieces = transform.apply(arrays_a)
    except WeightAssignError as err:
        return failed_metrics(f"cannot bring A's tensor to B's layout: {err}")
    if index >= len(pieces):
        return failed_metrics(f"the transform gives {len(pieces)} tensor(s), fewer than B's")
    return compare_arrays(pieces[index], array_b, tolerance)


def getter(
    tensors: Mapping[str, Tensor], transform: Callable[[Tensor], Tensor] | None = None
) -> Getter:
    """A getter over ``tensors`` (``KeyError`` for unknown names), optionally mapped."""

    def get(name: str) -> Any:
        tensor = tensors[name]
        return transform(tensor) if transform is not None else tensor

    return get
