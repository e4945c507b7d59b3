"""``padiff-ir report RESULT.json -o report.html``: the HTML report of a saved result;
``padiff-ir explore RESULT.json``: the same result in Google's Model Explorer.

Both render from the JSON file alone (written by ``result.to_json(path)``); no model is run.
Wire them into :mod:`padiff_ir.cli` with :func:`add_report_parser` / :func:`report_command` and
:func:`add_explore_parser` / :func:`explore_command`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import webbrowser
from pathlib import Path

__all__ = ["add_explore_parser", "add_report_parser", "explore_command", "report_command"]

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
        help="also write the Model Explorer files (graphs, node data, A->B mapping) to DIR",
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
            f"wrote Model Explorer files to {directory}: "
            + ", ".join(p.name for p in written.values())
        )
    return EXIT_OK


def add_explore_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``explore`` subcommand to the CLI's subparsers; returns its parser."""
    parser = subparsers.add_parser(
        "explore",
        help="open a saved result in Google's Model Explorer (pip install 'padiff-ir[explorer]')",
        description="RESULT is a JSON file written by result.to_json(path), or a folder "
        "written by result.to_model_explorer(folder). Starts Model Explorer's local server on "
        "both graphs with the errors as node data; Ctrl-C stops it.",
    )
    parser.add_argument("result", help="result JSON file or Model Explorer folder")
    parser.add_argument(
        "--dir",
        default=None,
        help="folder to write the Model Explorer files to (default: a temporary one)",
    )
    parser.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    parser.add_argument(
        "--no-browser", action="store_true", help="print the URL but do not open a browser"
    )
    return parser


def explore_command(args: argparse.Namespace) -> int:
    """Run ``padiff-ir explore`` until Ctrl-C; returns the exit code (0 stopped, 2 error).

    The server runs in a child process that is ended, with everything it started, on Ctrl-C.
    """
    from padiff_ir.report.explorer_server import require_explorer, start_server
    from padiff_ir.report.model_explorer import to_model_explorer

    require_explorer()
    source = Path(args.result)
    with tempfile.TemporaryDirectory(prefix="padiff-ir-explore-") as scratch:
        folder = source
        if not source.is_dir():
            folder = Path(args.dir) if args.dir else Path(scratch)
            to_model_explorer(source, folder)
        server = start_server(folder, port=args.port)
        try:
            print(f"Model Explorer: {server.url}", flush=True)
            print(
                "A is on the left, B on the right, the errors as node data. To move B with A, "
                "click Sync > Upload mapping from computer > Upload and pick "
                f"{server.files.mapping.resolve()}. Press Ctrl-C to stop.",
                flush=True,
            )
            if not args.no_browser:
                webbrowser.open_new_tab(server.url)
            server.wait()
        except KeyboardInterrupt:
            print("stopping Model Explorer", flush=True)
        finally:
            server.stop()
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Run ``report`` on its own
    (``python -m padiff_ir.report.commands RESULT.json -o out.html``)."""
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
