"""Model Explorer's local server on the files :func:`~padiff_ir.report.to_model_explorer` wrote.

:func:`start_server` runs the server in a child process (``python -m
padiff_ir.report.explorer_server DIR --port N``), waits until it answers and returns an
:class:`ExplorerServer` whose :attr:`~ExplorerServer.url` opens both graphs side by side (A
left, B right) with every node data file loaded on its own graph; ``stop()`` (or leaving the
``with`` block) ends the child and everything it started. ``padiff-ir explore`` is built on it.

The child serves offline: Model Explorer's check for a newer release on PyPI and GitHub is
turned off there (its web app's fonts come from a CDN and fall back to local ones when blocked).
The sync navigation mapping cannot be passed in the URL: choose *sync navigation* > *Upload
mapping from computer* in the app and pick ``sync_navigation_a_to_b.json``.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

from padiff_ir.errors import ReportError
from padiff_ir.report.model_explorer import SIDES, ExplorerFiles

__all__ = ["ExplorerServer", "explorer_url_data", "free_port", "start_server"]

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
#: The extension that makes Model Explorer read ONNX files.
ONNX_EXTENSION = "model_explorer_onnx"
_HEALTH = "/check_health"
_HEALTHY = "model_explorer_ok"


def free_port(host: str = HOST) -> int:
    """A TCP port nothing listens on now (the system's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def explorer_url_data(files: ExplorerFiles) -> dict[str, Any]:
    """The ``data`` parameter of Model Explorer's URL for ``files``: both models, every node
    data file targeted at its own model, and two panes (A left, B right)."""
    node_data = [
        (str(p.resolve()), files.models[s].name) for s in SIDES for p in files.node_data[s].values()
    ]
    panes = [
        {
            "deepestExpandedGroupNodeIds": [],
            "selectedNodeId": "",
            "selectedGraphId": files.graph_ids[side],
            "selectedCollectionLabel": files.models[side].name,
            "widthFraction": 0.5,
            "selected": side == "a",
        }
        for side in SIDES
    ]
    return {
        "models": [
            {"url": str(files.models[s].resolve()), "adapterId": "onnx_adapter"} for s in SIDES
        ],
        "nodeData": [path for path, _ in node_data],
        "nodeDataTargets": [model for _, model in node_data],
        "uiState": {"paneStates": panes},
    }


def _url(port: int, files: ExplorerFiles) -> str:
    data = quote(json.dumps(explorer_url_data(files), separators=(",", ":")))
    return f"http://{HOST}:{port}/?data={data}"


@dataclass
class ExplorerServer:
    """A Model Explorer server running in a child process (see :func:`start_server`).

    Attributes:
        process: the child.
        port: where it listens (on 127.0.0.1).
        url: the page showing both graphs with the node data.
        files: what it serves.
    """

    process: subprocess.Popen[bytes]
    port: int
    url: str
    files: ExplorerFiles
    log: Path | None = field(default=None)

    def running(self) -> bool:
        return self.process.poll() is None

    def wait(self) -> int:
        """Block until the child ends (Ctrl-C reaches it too); its exit status."""
        return self.process.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """End the child and its process group; no process is left behind."""
        if self.process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.process.wait()
        if self.process.stdin is not None:
            self.process.stdin.close()
        logger.info("Model Explorer server on port %d stopped", self.port)

    def _signal(self, number: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            if hasattr(os, "killpg"):
                os.killpg(self.process.pid, number)  # the child's session: it and its children
            elif number == signal.SIGTERM:
                self.process.terminate()
            else:
                self.process.kill()

    def __enter__(self) -> ExplorerServer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{_HEALTH}", timeout=2) as response:
            return bool(response.read().decode() == _HEALTHY)
    except (urllib.error.URLError, OSError):
        return False


def start_server(
    directory: str | Path,
    *,
    port: int | None = None,
    timeout: float = 120.0,
    log: str | Path | None = None,
) -> ExplorerServer:
    """Start Model Explorer on the files in ``directory`` (written by ``to_model_explorer``).

    ``port`` defaults to a free one; the child's output goes to ``log`` (default: discarded).

    Raises:
        ReportError: Model Explorer is not installed (``pip install padiff-ir[explorer]``),
            ``directory`` does not hold the files, or the server did not answer in ``timeout``
            seconds.
    """
    require_explorer()
    files = ExplorerFiles.read(directory)
    port = port or free_port()
    command = [
        sys.executable,
        "-m",
        __name__,
        str(files.directory),
        "--port",
        str(port),
        "--with-parent",
    ]
    sink: Any = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    try:
        # stdin: a pipe only this process writes to; its end tells the child we are gone
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        if log:
            sink.close()
    server = ExplorerServer(process, port, _url(port, files), files, Path(log) if log else None)
    atexit.register(server.stop)  # a caller that forgets stop() leaves nothing running at exit
    deadline = time.monotonic() + timeout
    while not _healthy(port):
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            where = f" (its output: {log})" if log else ""
            raise ReportError(
                f"Model Explorer's server did not start on port {port}{where}; "
                "check that 'python -m padiff_ir.report.explorer_server DIR' runs"
            )
        time.sleep(0.2)
    logger.info("Model Explorer serving %s on port %d", files.directory, port)
    return server


def require_explorer() -> None:
    """Raise unless Model Explorer and its ONNX adapter can be imported.

    Raises:
        ReportError: naming the packages to install.
    """
    import importlib.util

    missing = [m for m in ("model_explorer", ONNX_EXTENSION) if importlib.util.find_spec(m) is None]
    if missing:
        raise ReportError(
            f"Model Explorer is not installed ({', '.join(missing)} missing): "
            "pip install 'padiff-ir[explorer]'"
        )


def serve(directory: Path, port: int) -> None:
    """Run Model Explorer's server here until interrupted (the child's main)."""
    from model_explorer import server
    from model_explorer.config import ModelExplorerConfig

    # offline: no look-up of a newer release (PyPI, GitHub) from this process
    server._check_new_version = lambda print_msg=True: {
        "version": "",
        "runningVersion": "",
        "releaseUrl": "",
        "desktopAppUrl": "",
    }
    files = ExplorerFiles.read(directory)
    config = ModelExplorerConfig()
    for side in SIDES:
        config.add_model_from_path(str(files.models[side]), adapterId="onnx_adapter")
    server.start(
        host=HOST,
        port=port,
        config=config,
        extensions=[ONNX_EXTENSION],
        no_open_in_browser=True,
    )


def _exit_with_parent() -> None:
    """End this process when its stdin ends: the parent closed it or died (as the paddle2onnx
    worker of :mod:`padiff_ir.exporters._conversion` does)."""

    def watch() -> None:
        sys.stdin.buffer.read()
        os._exit(0)

    threading.Thread(target=watch, name="padiff-ir-parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    """``python -m padiff_ir.report.explorer_server DIR --port N``."""
    parser = argparse.ArgumentParser(prog="padiff_ir.report.explorer_server")
    parser.add_argument("directory", help="the folder result.to_model_explorer wrote")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--with-parent", action="store_true", help="exit when stdin ends (the parent is gone)"
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if args.with_parent:
        _exit_with_parent()
    serve(Path(args.directory), args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
