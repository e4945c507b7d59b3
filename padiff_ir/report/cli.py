"""``padiff-ir report RESULT.json -o report.html``: the HTML report of a saved result.

Renders from the JSON file alone (written by ``result.to_json(path)``); no model is run. Wire it
into :mod:`padiff_ir.cli` with :func:`add_report_parser` and :func:`report_command`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

__all__ = ["add_report_parser", "report_command"]

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_ERROR = 2


def add_report_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``report`` subcommand to the CLI's subparsers; returns its parser."""
    parser = subparsers.add_parser(
        "report",
        help="write the HTML report of a saved result (JSON), without running a model",
        description="RESULT is a JSON file written by result.to_json(path).",
    )
    parser.add_argument("result", help="result JSON file")
    parser.add_argument(
        "-o", "--output", default=None, help="HTML file to write (default: RESULT with .html)"
    )
    parser.add_argument("--title", default=None, help="page title")
    parser.add_argument(
        "--model-explorer",
        metavar="DIR",
        default=None,
        help="also write Model Explorer node data and the A->B mapping to DIR",
    )
    return parser


def report_command(args: argparse.Namespace) -> int:
    """Run ``padiff-ir report``; returns the exit code (0 written, 2 error).

    Errors of the library (:class:`~padiff_ir.errors.PadiffError`) propagate to the CLI's
    ``main``, which prints them and returns 2.
    """
    from padiff_ir.report import render_html, result_dict, to_model_explorer

    source = Path(args.result)
    output = Path(args.output) if args.output else source.with_suffix(".html")
    data = result_dict(source)
    path = render_html(data, output, title=getattr(args, "title", None))
    size = path.stat().st_size / 1e6
    print(f"wrote {path} ({size:.1f} MB)")
    directory = getattr(args, "model_explorer", None)
    if directory:
        written = to_model_explorer(data, directory)
        print(
            f"wrote Model Explorer node data to {directory}: "
            + ", ".join(p.name for p in written.values())
        )
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Run ``report`` on its own (``python -m padiff_ir.report.cli RESULT.json -o out.html``)."""
    from padiff_ir.errors import PadiffError

    parser = argparse.ArgumentParser(prog="padiff-ir")
    add_report_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["report", *(sys.argv[1:] if argv is None else argv)])
    try:
        return report_command(args)
    except PadiffError as err:
        sys.stderr.write(f"padiff-ir: error: {err}\n")
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
