"""The ``padiff-ir`` command line: a thin layer over the public API.

Exit codes (like ``diff``): 0 aligned / success, 1 diverged, 2 error.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence

from padiff_ir.errors import PadiffError

__all__ = ["main"]

logger = logging.getLogger("padiff_ir.cli")

EXIT_OK = 0
EXIT_DIVERGED = 1
EXIT_ERROR = 2


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output (-v info, -vv debug)")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="padiff-ir",
        description="Tell whether a torch model and a paddle model compute the same thing, "
                    "and where they part.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the main job on the built-in ViTPose pair")
    demo.add_argument("--size", default="tiny", choices=("tiny", "base"),
                      help="zoo size of the ViTPose pair (default tiny)")
    _add_common(demo)

    export = sub.add_parser(
        "export",
        help="export one model to an attributed ONNX file (for two-environment workflows)",
        description="MODEL is a path.onnx, zoo:NAME[:torch|paddle[:SIZE]] or "
                    "package.module:factory.",
    )
    export.add_argument("model", help="model specification")
    export.add_argument("-o", "--output", required=True, help="ONNX file to write")
    export.add_argument("--input-shape", action="append", default=[], metavar="NAME=D0,D1[:DTYPE]",
                        help="an input's name, shape and dtype (repeat per input)")
    export.add_argument("--inputs", metavar="NPZ", help="an .npz file of named inputs")
    export.add_argument("--opset", type=int, default=None, help="ONNX opset")
    _add_common(export)
    return parser


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("padiff_ir")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _progress(message: str) -> None:
    sys.stderr.write(f"padiff-ir: {message}\n")
    sys.stderr.flush()


def _load_inputs(args: argparse.Namespace, default: dict | None) -> dict:
    from padiff_ir._models import parse_input_shapes

    if args.inputs:
        import numpy as np

        with np.load(args.inputs) as data:
            return {k: data[k] for k in data.files}
    if args.input_shape:
        return parse_input_shapes(args.input_shape)
    if default is not None:
        return default
    raise PadiffError("no inputs: pass --input-shape NAME=D0,D1,... or --inputs inputs.npz")


def _cmd_export(args: argparse.Namespace) -> int:
    from padiff_ir._models import load_model_spec
    from padiff_ir.exporters import export

    model, zoo_inputs = load_model_spec(args.model)
    inputs = None if isinstance(model, str) else _load_inputs(args, zoo_inputs)
    start = time.perf_counter()
    _progress(f"exporting {args.model} ...")
    exported = export(model, inputs, opset=args.opset)
    exported.save(args.output)
    attributed = sum(1 for path in exported.node_modules.values() if path)
    print(f"wrote {args.output}: {exported.framework} {exported.model_class}, "
          f"{len(exported.model.graph.node)} nodes ({attributed} inside submodules), "
          f"{len(exported.parameters)} parameters, {time.perf_counter() - start:.1f} s")
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    import numpy as np

    from padiff_ir.exporters import export
    from padiff_ir.ir import build_graph, canonicalize
    from padiff_ir.runtime import run_all
    from padiff_ir.zoo import get_pair

    _progress(f"building the zoo's ViTPose pair ({args.size}) ...")
    pair = get_pair("vitpose", args.size)
    rows = []
    finals = []
    for side, model in (("torch", pair.torch_model), ("paddle", pair.paddle_model)):
        _progress(f"exporting the {side} model ...")
        start = time.perf_counter()
        exported = export(model, pair.inputs)
        graph = canonicalize(build_graph(exported))
        _progress(f"running every intermediate of the {side} graph ...")
        with run_all(exported, pair.inputs) as store:
            finals.append(np.asarray(store[exported.output_names[0]]).copy())
            stored = len(store)
        rows.append((side, len(exported.model.graph.node), len(graph.data_ops()),
                     len(set(exported.node_modules.values())), stored,
                     time.perf_counter() - start))
    print(f"ViTPose-{args.size}: input {pair.inputs['x'].shape}, heatmaps {finals[0].shape}")
    print(f"{'side':<8}{'onnx nodes':>12}{'data ops':>10}{'modules':>9}{'tensors':>9}"
          f"{'seconds':>9}")
    for side, nodes, data, modules, stored, seconds in rows:
        print(f"{side:<8}{nodes:>12}{data:>10}{modules:>9}{stored:>9}{seconds:>9.1f}")
    diff = float(np.max(np.abs(finals[0] - finals[1])))
    verdict = "aligned" if diff <= 1e-5 else "diverged"
    print(f"final output max abs diff {diff:.3g}: {verdict}")
    return EXIT_OK if diff <= 1e-5 else EXIT_DIVERGED


_COMMANDS = {"demo": _cmd_demo, "export": _cmd_export}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 aligned, 1 diverged, 2 error)."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0) and EXIT_ERROR
    _configure_logging(args.verbose)
    try:
        return _COMMANDS[args.command](args)
    except PadiffError as err:
        sys.stderr.write(f"padiff-ir: error: {err}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("padiff-ir: interrupted\n")
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
