"""Run passes in order: :func:`run_passes`, :data:`DEFAULT_PASSES` and :func:`canonicalize`.

The default order matters: copies go first so that the patterns after them see producers
directly (paddle's ``Conv -> Add -> Identity`` and ``Reshape(bias, Identity(shape))``), and kinds
are marked last, on the final ops.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from typing import TYPE_CHECKING

from padiff_ir.errors import IRError
from padiff_ir.ir.lint import lint as lint_graph
from padiff_ir.ir.passes.conv_bias_split import conv_bias_split
from padiff_ir.ir.passes.gemm_to_matmul_add import gemm_to_matmul_add
from padiff_ir.ir.passes.identity_alias import identity_alias
from padiff_ir.ir.passes.mark_shape_subgraphs import mark_shape_subgraphs

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from padiff_ir.ir.graph import Graph
    from padiff_ir.ir.passes._pass import Pass

__all__ = ["DEFAULT_PASSES", "canonicalize", "run_passes"]

logger = logging.getLogger(__name__)

#: The passes :func:`canonicalize` runs, in order.
DEFAULT_PASSES: tuple[Pass, ...] = (
    identity_alias,
    gemm_to_matmul_add,
    conv_bias_split,
    mark_shape_subgraphs,
)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector, as ``timeit`` does, restoring its state after.

    Each pass copies the graph, some 100,000 objects for 20,000 ops; with the collector on, the
    copies trigger full collections that scan every graph alive, doubling the run time. The
    IR holds no reference cycles: nothing waits on the collector while it is paused.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _pass_name(graph_pass: Pass) -> str:
    return getattr(graph_pass, "__name__", None) or repr(graph_pass)


def run_passes(
    graph: Graph, passes: Sequence[Pass] = DEFAULT_PASSES, *, lint: bool = False
) -> Graph:
    """Run ``passes`` in order on ``graph`` and return the last graph (``graph`` is untouched).

    Args:
        graph: the graph to transform.
        passes: pure functions ``graph -> PassResult``, run in order.
        lint: check the IR's invariants (:func:`padiff_ir.ir.lint`) after every pass.

    Raises:
        IRError: a pass failed, or (with ``lint``) left a broken graph; the message names the
            pass and the passes run before it, and the original error is chained.

    Examples:
        >>> from padiff_ir.ir.graph import Graph, OpNode, TensorInfo
        >>> ops = [OpNode("id", "Identity", inputs=("x",), outputs=("y",))]
        >>> graph = Graph(ops, {n: TensorInfo(n) for n in "xy"}, ["x"], ["y"])
        >>> run_passes(graph, lint=True)
        Graph(framework='onnx', ops=0, data_ops=0, inputs=['x'], outputs=['x'])
    """
    with _gc_paused():
        return _run(graph, passes, lint)


def _run(graph: Graph, passes: Sequence[Pass], lint: bool) -> Graph:
    done: list[str] = []
    for graph_pass in passes:
        name = _pass_name(graph_pass)
        before = f"after {', '.join(done)}" if done else "as the first pass"
        try:
            result = graph_pass(graph)
        except Exception as err:
            raise IRError(
                f"pass {name!r} failed ({type(err).__name__}: {err}) {before}; run the "
                f"passes up to it with lint=True to see whether its input was already broken, "
                f"or leave {name!r} out of the passes"
            ) from err
        if lint:
            try:
                lint_graph(result.graph)
            except IRError as err:
                raise IRError(f"pass {name!r}, run {before}, left a broken graph: {err}") from err
        logger.debug("pass %s: %s", name, "modified" if result.modified else "unchanged")
        graph = result.graph
        done.append(name)
    return graph


def canonicalize(graph: Graph) -> Graph:
    """Run :data:`DEFAULT_PASSES` on ``graph``: the form in which two frameworks' graphs match."""
    return run_passes(graph, DEFAULT_PASSES)
