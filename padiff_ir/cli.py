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


def _add_tolerances(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--atol", type=float, default=1e-5, help="absolute tolerance (1e-5)")
    parser.add_argument("--rtol", type=float, default=1e-5, help="relative tolerance (1e-5)")
    parser.add_argument("--mode", default="strict", choices=("strict", "mean", "abs_mean"),
                        help="compare mode (strict: elementwise)")
    parser.add_argument("--json", metavar="PATH", help="also write the result as JSON")
    parser.add_argument("--html", metavar="PATH", help="also write the HTML report")


def _add_inputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input-shape", action="append", default=[],
                        metavar="NAME=D0,D1[:DTYPE]",
                        help="an input's name, shape and dtype (repeat per input)")
    parser.add_argument("--inputs", metavar="NPZ", help="an .npz file of named inputs")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="padiff-ir",
        description="Tell whether a torch model and a paddle model compute the same thing, "
                    "and where they part. Exit codes: 0 aligned, 1 diverged, 2 error.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the main job on the built-in ViTPose pair")
    demo.add_argument("--size", default="tiny", choices=("tiny", "base"),
                      help="zoo size of the ViTPose pair (default tiny)")
    demo.add_argument("--bug", action="store_true",
                      help="inject a LayerNorm epsilon bug into one paddle block first")
    demo.add_argument("-o", "--output", default="padiff-ir-demo.html",
                      help="HTML report to write (default padiff-ir-demo.html)")
    _add_tolerances(demo)
    _add_common(demo)

    compare = sub.add_parser(
        "compare", help="compare two models (ONNX files, zoo models or module:factory)",
        description="MODEL is a path.onnx, zoo:NAME[:torch|paddle[:SIZE]] or "
                    "package.module:factory.")
    compare.add_argument("model_a", help="model A (the reference)")
    compare.add_argument("model_b", help="model B")
    _add_inputs(compare)
    compare.add_argument("--assign-weights", action="store_true",
                         help="copy A's weights into B through the parameter map first")
    _add_tolerances(compare)
    _add_common(compare)

    export = sub.add_parser(
        "export",
        help="export one model to an attributed ONNX file (for two-environment workflows)",
        description="MODEL is a path.onnx, zoo:NAME[:torch|paddle[:SIZE]] or "
                    "package.module:factory.",
    )
    export.add_argument("model", help="model specification")
    export.add_argument("-o", "--output", required=True, help="ONNX file to write")
    _add_inputs(export)
    export.add_argument("--opset", type=int, default=None, help="ONNX opset")
    _add_common(export)

    from padiff_ir.report.cli import add_report_parser

    _add_common(add_report_parser(sub))
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
    import padiff_ir
    from padiff_ir._models import load_model_spec

    model, zoo_inputs = load_model_spec(args.model)
    inputs = None if isinstance(model, str) else _load_inputs(args, zoo_inputs)
    start = time.perf_counter()
    _progress(f"exporting {args.model} ...")
    exported = padiff_ir.export(model, inputs, opset=args.opset)
    exported.save(args.output)
    attributed = sum(1 for path in exported.node_modules.values() if path)
    print(f"wrote {args.output}: {exported.framework} {exported.model_class}, "
          f"{len(exported.model.graph.node)} nodes ({attributed} inside submodules), "
          f"{len(exported.parameters)} parameters, {time.perf_counter() - start:.1f} s")
    return EXIT_OK


class _Progress:
    """Stage messages on stderr, with the time the previous stage took."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.last: str | None = None

    def __call__(self, message: str) -> None:
        now = time.perf_counter()
        if self.last is not None:
            _progress(f"  done in {now - self.start:.1f}s")
        self.start = now
        self.last = message
        _progress(message)


def _finish(result: object, args: argparse.Namespace, default_html: str | None = None) -> int:
    print(result)
    if args.json:
        result.to_json(args.json)  # type: ignore[attr-defined]
        print(f"result: {args.json}")
    html = args.html if getattr(args, "html", None) else default_html
    if html:
        result.to_html(html)  # type: ignore[attr-defined]
        print(f"report: {html}")
    return EXIT_OK if result else EXIT_DIVERGED


def _cmd_demo(args: argparse.Namespace) -> int:
    import padiff_ir
    from padiff_ir.zoo import get_pair

    _progress(f"building the zoo's ViTPose pair ({args.size}): torch and paddle, equal weights")
    pair = get_pair("vitpose", args.size)
    if args.bug:
        _progress("injecting a bug: backbone.blocks.1.norm1 epsilon 1e-3 in the paddle model")
        pair.paddle_model.backbone.blocks[1].norm1._epsilon = 1e-3
    result = padiff_ir.match(pair.torch_model, pair.paddle_model, pair.inputs, atol=args.atol,
                             rtol=args.rtol, compare_mode=args.mode, progress=_Progress())
    return _finish(result, args, default_html=args.output)


def _cmd_compare(args: argparse.Namespace) -> int:
    import padiff_ir
    from padiff_ir._models import load_model_spec

    model_a, inputs_a = load_model_spec(args.model_a)
    model_b, inputs_b = load_model_spec(args.model_b)
    inputs = _load_inputs(args, inputs_a if inputs_a is not None else inputs_b)
    result = padiff_ir.match(model_a, model_b, inputs, atol=args.atol, rtol=args.rtol,
                             compare_mode=args.mode, assign_weights=args.assign_weights,
                             progress=_Progress())
    return _finish(result, args)


def _cmd_report(args: argparse.Namespace) -> int:
    from padiff_ir.report.cli import report_command

    return report_command(args)


_COMMANDS = {"demo": _cmd_demo, "compare": _cmd_compare, "export": _cmd_export,
             "report": _cmd_report}


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
