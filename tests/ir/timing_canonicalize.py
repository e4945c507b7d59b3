"""Timing check (not a test): the default passes on a synthetic graph of 20,000 ops.

Run with ``python -m tests.ir.timing_canonicalize [ops]``. The graph repeats a block of 20 ops
holding every pattern the passes rewrite: torch's ``Gemm`` and ``Transpose -> MatMul -> Add``,
a ``Conv`` with its bias, paddle's ``Conv -> Add(Reshape(bias)) -> Identity``, ``Identity`` and
no-op ``Cast`` ops, and ``Shape -> Gather -> Concat -> Reshape`` arithmetic.
"""

from __future__ import annotations

import sys
import time

from padiff_ir.ir import Graph, OpNode, TensorInfo, canonicalize, lint

BLOCK = 20


def synthetic_graph(blocks: int) -> Graph:
    ops: list[OpNode] = []
    tensors: dict[str, TensorInfo] = {}

    def tensor(
        name: str, shape: tuple | None = None, dtype: str = "float32", **flags: object
    ) -> str:
        tensors[name] = TensorInfo(name, shape, dtype, **flags)
        return name

    def op(
        op_type: str, inputs: list[str], outputs: list[str], block: int, **attributes: object
    ) -> None:
        ops.append(
            OpNode(
                f"{op_type}_{len(ops)}",
                op_type,
                attributes=attributes,
                inputs=tuple(inputs),
                outputs=tuple(outputs),
                index=len(ops),
                module_path=f"blocks.{block}",
                module_class="Block",
            )
        )

    current = tensor("x", (2, 8, 4, 4), is_input=True)
    for b in range(blocks):

        def p(name: str, shape: tuple, b: int = b) -> str:
            return tensor(f"{name}{b}", shape, param_name=f"blocks.{b}.{name}", is_initializer=True)

        def t(
            name: str, shape: tuple | None = (2, 8, 4, 4), dtype: str = "float32", b: int = b
        ) -> str:
            return tensor(f"{name}{b}", shape, dtype)

        op("Conv", [current, p("cw", (8, 8, 1, 1)), p("cb", (8,))], [t("c")], b)
        op("Conv", [t("c"), p("pw", (8, 8, 1, 1))], [t("pc")], b)
        op("Constant", [], [t("bshape", (4,), "int64")], b, value_ints=[1, 8, 1, 1])
        op("Reshape", [p("pb", (8,)), t("bshape", (4,), "int64")], [t("rb", (1, 8, 1, 1))], b)
        op("Add", [t("pc"), t("rb", (1, 8, 1, 1))], [t("pa")], b)
        op("Identity", [t("pa")], [t("pi")], b)
        op("Cast", [t("pi")], [t("pcast")], b, to=1)
        op("Shape", [t("pcast")], [t("s", (4,), "int64")], b)
        op("Constant", [], [t("zero", (1,), "int64")], b, value_ints=[0])
        op("Gather", [t("s", (4,), "int64"), t("zero", (1,), "int64")], [t("n", (1,), "int64")], b)
        op("Constant", [], [t("minus", (1,), "int64")], b, value_ints=[-1])
        op(
            "Concat",
            [t("n", (1,), "int64"), t("minus", (1,), "int64")],
            [t("target", (2,), "int64")],
            b,
            axis=0,
        )
        op("Reshape", [t("pcast"), t("target", (2,), "int64")], [t("flat", (2, 128))], b)
        op(
            "Gemm",
            [t("flat", (2, 128)), p("gw", (128, 128)), p("gb", (128,))],
            [t("g", (2, 128))],
            b,
            transB=1,
        )
        op("Transpose", [p("tw", (128, 128))], [t("twt", (128, 128))], b, perm=[1, 0])
        op("MatMul", [t("g", (2, 128)), t("twt", (128, 128))], [t("m", (2, 128))], b)
        op("Add", [t("m", (2, 128)), p("tb", (128,))], [t("l", (2, 128))], b)
        op("Relu", [t("l", (2, 128))], [t("r", (2, 128))], b)
        op("Constant", [], [t("back", (4,), "int64")], b, value_ints=[2, 8, 4, 4])
        op("Reshape", [t("r", (2, 128)), t("back", (4,), "int64")], [t("y")], b)
        current = f"y{b}"
    tensors[current].is_output = True
    return Graph(ops, tensors, ["x"], [current])


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    size = int(args[0]) if args else 20_000
    graph = synthetic_graph(size // BLOCK)
    walls, cpus = [], []
    for _ in range(5):
        wall, cpu = time.perf_counter(), time.process_time()
        out = canonicalize(graph)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    lint(out)
    print(
        f"canonicalize: {len(graph)} ops -> {len(out)} ops ({len(out.data_ops())} data ops); "
        f"best of 5: {min(walls):.3f} s wall, {min(cpus):.3f} s CPU; "
        f"median {sorted(walls)[2]:.3f} s wall"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
