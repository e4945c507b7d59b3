"""The ``padiff-ir`` command line: a thin layer over the public API.

Exit codes (like ``diff``): 0 aligned / success, 1 diverged, 2 error, whatever the error (an
unexpected one is printed as one line too; ``--traceback`` prints the details). ``padiff-ir``
and ``python -m padiff_ir`` are the same command.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

from padiff_ir._console import ProgressDisplay, configure_logging
from padiff_ir._terminal import wants_color
from padiff_ir.errors import InputError, OptionError, PadiffError

__all__ = ["main"]

logger = logging.getLogger("padiff_ir.cli")

EXIT_OK = 0
EXIT_DIVERGED = 1
EXIT_ERROR = 2


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-v info, -vv debug)"
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print only errors and the verdict line (no progress, no summary)",
    )
    parser.add_argument(
        "--traceback", action="store_true", help="on an error, print its full traceback too"
    )


def _add_tolerances(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tolerance",
        choices=("auto", "fixed"),
        help="auto (the default): each module judged against its measured numerical noise; "
        "fixed: --atol/--rtol/--mode (passing any of them means fixed too)",
    )
    parser.add_argument("--atol", type=float, help="fixed absolute tolerance (1e-5)")
    parser.add_argument("--rtol", type=float, help="fixed relative tolerance (1e-5)")
    parser.add_argument(
        "--mode",
        choices=("strict", "mean", "abs_mean"),
        help="fixed compare mode (strict, the default: elementwise)",
    )
    parser.add_argument(
        "--json",
        metavar="PATH",
        help="also write the result as JSON ('-': to stdout, the summary then goes to stderr)",
    )
    parser.add_argument("--html", metavar="PATH", help="also write the HTML report")


def _add_inputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input-shape",
        action="append",
        default=[],
        metavar="NAME=D0,D1[:DTYPE]",
        help="an input's name, shape and dtype (repeat per input)",
    )
    parser.add_argument("--inputs", metavar="NPZ", help="an .npz file of named inputs")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the generated inputs (default 0)"
    )
    parser.add_argument(
        "--input-range",
        metavar="LOW,HIGH",
        help="generated inputs drawn uniformly in [LOW, HIGH) (ints too; "
        "write --input-range=-1,1 for a negative LOW); default: floats "
        "standard normal, ints 0 or 1",
    )


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="padiff-ir",
        description="Tell whether a torch model and a paddle model compute the same thing, "
        "and where they part. Exit codes: 0 aligned, 1 diverged, 2 error.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the main job on the built-in ViTPose pair")
    demo.add_argument(
        "--size",
        default="tiny",
        choices=("tiny", "base"),
        help="zoo size of the ViTPose pair (default tiny)",
    )
    demo.add_argument(
        "--bug",
        action="store_true",
        help="inject a LayerNorm epsilon bug into one paddle block first",
    )
    demo.add_argument(
        "-o",
        "--output",
        default="padiff-ir-demo.html",
        help="HTML report to write (default padiff-ir-demo.html)",
    )
    _add_tolerances(demo)
    _add_common(demo)

    compare = sub.add_parser(
        "compare",
        help="compare two models (ONNX files, zoo models or module:factory)",
        description="MODEL is a path.onnx, zoo:NAME[:torch|paddle[:SIZE]] or "
        "package.module:factory.",
    )
    compare.add_argument("model_a", help="model A (the reference)")
    compare.add_argument("model_b", help="model B")
    _add_inputs(compare)
    compare.add_argument(
        "--assign-weights",
        action="store_true",
        help="copy A's weights into B through the parameter map first",
    )
    compare.add_argument(
        "--layer-map", metavar="FILE", help="a layer map saved with LayerMap.save() (pins, ignores)"
    )
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

    from padiff_ir.report.commands import add_explore_parser, add_report_parser

    _add_common(add_report_parser(sub))
    _add_common(add_explore_parser(sub))
    return parser


def _version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("padiff-ir")
    except (ImportError, PackageNotFoundError):
        from padiff_ir import __version__

        return __version__


_DISPLAY: ProgressDisplay | None = None  # the running command's progress display


def _progress(message: str) -> None:
    if _DISPLAY is not None:
        _DISPLAY(message)


def _end_progress() -> None:
    """Close the progress display (on a terminal its rows stay above what is printed next)."""
    if _DISPLAY is not None:
        _DISPLAY.close()


def _value_range(args: argparse.Namespace) -> tuple[float, float] | None:
    from padiff_ir._models import parse_value_range

    return parse_value_range(args.input_range) if args.input_range else None


def _load_inputs(
    args: argparse.Namespace, default: dict | None, onnx_path: str | None = None
) -> dict:
    """The inputs: ``--inputs``, else generated from ``--input-shape`` and the ONNX file's
    declared inputs, else ``default`` (a zoo model's), else an error.

    Raises:
        InputError: no inputs can be found, an ``--input-shape`` names an input the ONNX file
            does not have, or an input has a dynamic dimension no ``--input-shape`` fixes.
    """
    from padiff_ir._models import parse_input_specs, random_inputs, resolve_onnx_inputs

    if args.inputs:
        import zipfile

        import numpy as np

        try:
            data = np.load(args.inputs)
            if not hasattr(data, "files"):
                raise ValueError("it holds one array, not named arrays")
            with data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError, zipfile.BadZipFile) as err:
            raise InputError(
                f"--inputs {args.inputs}: not an .npz file of named inputs "
                f"({err}); write one with numpy.savez(path, x=array, ...)"
            ) from err
    value_range = _value_range(args)
    given = parse_input_specs(args.input_shape)
    if onnx_path is not None and (given or default is None):
        specs = resolve_onnx_inputs(onnx_path, given)
        return random_inputs(specs, seed=args.seed, value_range=value_range)
    if given:
        return random_inputs(given, seed=args.seed, value_range=value_range)
    if default is not None:
        return default
    raise InputError("no inputs: pass --input-shape NAME=D0,D1,... or --inputs inputs.npz")


def _cmd_export(args: argparse.Namespace) -> int:
    import padiff_ir
    from padiff_ir._models import load_model_spec

    _value_range(args)  # fail before loading
    model, zoo_inputs = load_model_spec(args.model)
    inputs = None if isinstance(model, str) else _load_inputs(args, zoo_inputs)
    start = time.perf_counter()
    _progress(f"exporting {args.model} ...")
    exported = padiff_ir.export(model, inputs, opset=args.opset)
    exported.save(args.output)
    _end_progress()
    attributed = sum(1 for path in exported.node_modules.values() if path)
    print(
        f"wrote {args.output}: {exported.framework} {exported.model_class}, "
        f"{len(exported.model.graph.node)} nodes ({attributed} inside submodules), "
        f"{len(exported.parameters)} parameters, {time.perf_counter() - start:.1f} s"
    )
    return EXIT_OK


def _finish(result: object, args: argparse.Namespace, default_html: str | None = None) -> int:
    """Print the summary, write the files asked for; the exit code of the verdict.

    Files are written before the summary is printed, so a file that cannot be written makes
    an error (exit 2) rather than a verdict followed by a traceback.
    """
    _end_progress()
    to_stdout = args.json == "-"
    say = sys.stderr if to_stdout else sys.stdout
    if args.json and not to_stdout:
        result.to_json(args.json)  # type: ignore[attr-defined]
    html = args.html if getattr(args, "html", None) else default_html
    if html:
        result.to_html(html)  # type: ignore[attr-defined]
    summary = result.summary(color=wants_color(say))  # type: ignore[attr-defined]
    print(summary.splitlines()[0] if args.quiet else summary, file=say)
    if to_stdout:
        print(result.to_json())  # type: ignore[attr-defined]
    elif args.json and not args.quiet:
        print(f"result: {args.json}", file=say)
    if html and not args.quiet:
        print(f"report: {html}", file=say)
    return EXIT_OK if result else EXIT_DIVERGED


def _check_outputs(args: argparse.Namespace, *paths: tuple[str, str | None]) -> None:
    """Each output file's folder exists (checked before the models run).

    Raises:
        OptionError: naming the option and the missing folder.
    """
    from pathlib import Path

    for option, path in paths:
        if not path or path == "-":
            continue
        folder = Path(path).parent
        if not folder.is_dir():
            raise OptionError(
                f"{option} {path}: the folder {folder} does not exist; create it "
                "or pass a path in an existing folder",
                option=option,
            )
        if Path(path).is_dir():
            raise OptionError(f"{option} {path} is a folder; pass a file path", option=option)


def _tolerance_options(args: argparse.Namespace) -> dict[str, Any]:
    """``match``'s tolerance keywords from the command line (those not given left out)."""
    given = {
        "tolerance": args.tolerance,
        "atol": args.atol,
        "rtol": args.rtol,
        "compare_mode": args.mode,
    }
    return {name: value for name, value in given.items() if value is not None}


def _check_tolerance(args: argparse.Namespace) -> None:
    from padiff_ir.metrics import Tolerance, tolerance_of

    tolerance_of(None, args.atol, args.rtol, args.mode, defaults=Tolerance())


def _cmd_demo(args: argparse.Namespace) -> int:
    import padiff_ir
    from padiff_ir.zoo import get_pair

    _check_tolerance(args)  # fail before the build
    _check_outputs(args, ("--json", args.json), ("--html", args.html), ("--output", args.output))
    _progress(f"building the zoo's ViTPose pair ({args.size}): torch and paddle, equal weights")
    pair = get_pair("vitpose", args.size)
    if args.bug:
        _progress("injecting a bug: backbone.blocks.1.norm1 epsilon 1e-3 in the paddle model")
        pair.paddle_model.backbone.blocks[1].norm1._epsilon = 1e-3
    result = padiff_ir.match(
        pair.torch_model,
        pair.paddle_model,
        pair.inputs,
        **_tolerance_options(args),
        progress=_DISPLAY,
    )
    return _finish(result, args, default_html=args.output)


def _cmd_compare(args: argparse.Namespace) -> int:
    import padiff_ir
    from padiff_ir._models import load_model_spec

    _check_tolerance(args)  # fail before loading
    _value_range(args)
    _check_outputs(args, ("--json", args.json), ("--html", args.html))
    model_a, inputs_a = load_model_spec(args.model_a)
    model_b, inputs_b = load_model_spec(args.model_b)
    onnx_path = next((m for m in (model_a, model_b) if isinstance(m, str)), None)
    inputs = _load_inputs(args, inputs_a if inputs_a is not None else inputs_b, onnx_path)
    layer_map = None
    if args.layer_map:
        layer_map = padiff_ir.LayerMap.load(args.layer_map)
    result = padiff_ir.match(
        model_a,
        model_b,
        inputs,
        **_tolerance_options(args),
        assign_weights=args.assign_weights,
        layer_map=layer_map,
        progress=_DISPLAY,
    )
    return _finish(result, args)


def _cmd_report(args: argparse.Namespace) -> int:
    from padiff_ir.report.commands import report_command

    return report_command(args)


def _cmd_explore(args: argparse.Namespace) -> int:
    from padiff_ir.report.commands import explore_command

    return explore_command(args)


_COMMANDS = {
    "demo": _cmd_demo,
    "compare": _cmd_compare,
    "export": _cmd_export,
    "report": _cmd_report,
    "explore": _cmd_explore,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 aligned, 1 diverged, 2 error)."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0) and EXIT_ERROR
    global _DISPLAY
    configure_logging(args.verbose, args.quiet)
    _DISPLAY = ProgressDisplay(sys.stderr, quiet=args.quiet)
    try:
        return _COMMANDS[args.command](args)
    except PadiffError as err:
        _report_error(str(err), args.traceback)
        return EXIT_ERROR
    except KeyboardInterrupt:
        _report_error("interrupted", args.traceback)
        return EXIT_ERROR
    except Exception as err:  # the exit-code contract holds for every error
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        hint = "" if args.traceback else " (rerun with --traceback for details)"
        _report_error(f"{type(err).__name__}: {first}{hint}", args.traceback)
        return EXIT_ERROR
    finally:
        _end_progress()
        _DISPLAY = None


def _report_error(message: str, traceback: bool) -> None:
    if traceback:
        import traceback as tb

        tb.print_exc(file=sys.stderr)
    sys.stderr.write(f"padiff-ir: error: {message}\n")
    sys.stderr.flush()


if __name__ == "__main__":
    sys.exit(main())
