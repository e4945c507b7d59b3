"""The Model Explorer export of a real result, and Model Explorer itself on it.

The files (graphs, node data, mapping) are checked against the result without Model Explorer.
With the ``[explorer]`` extra installed, its local server runs in a child process on the files
of ViTPose-tiny with a culprit LayerNorm in B (``backbone.blocks.1.norm2``, epsilon 1e-3), and
headless Chromium checks that both graphs load side by side with our node data on them and that
our mapping, uploaded as sync navigation, moves B's pane to the partner of A's selected node.
Only localhost is reached: every other request is aborted (the app asks a CDN for its fonts and
falls back to local ones).
"""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import onnx
import pytest

from padiff_ir.cli import main as cli_main
from padiff_ir.compare import MatchResult
from padiff_ir.errors import FileFormatError
from padiff_ir.report import ReportError, model_explorer_data, to_model_explorer
from padiff_ir.report.explorer_server import ExplorerServer, start_server
from padiff_ir.report.model_explorer import STATUS_COLOURS, THRESHOLDS, ExplorerFiles
from tests.report.conftest import CHROMIUM, CHROMIUM_ARGS, _tiny_result

CULPRIT = "backbone.blocks.1.norm2"
HAS_EXPLORER = all(
    importlib.util.find_spec(name) is not None for name in ("model_explorer", "model_explorer_onnx")
)
needs_explorer = pytest.mark.skipif(
    not HAS_EXPLORER,
    reason="Model Explorer is not installed: pip install 'padiff-ir[explorer]'",
)
#: WebGL (Model Explorer draws with it) in software: no --disable-gpu here
BROWSER_ARGS = [
    *(a for a in CHROMIUM_ARGS if a != "--disable-gpu"),
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]
FONT_HOST = "https://fonts.gstatic.com/"


def _culprit_nodes(data: dict[str, Any]) -> dict[str, str]:
    """Each side's LayerNormalization node of the culprit module."""
    modules = {"a": CULPRIT, "b": CULPRIT}
    return {
        side: next(
            n["id"]
            for n in data["graphs"][side]["nodes"]
            if n["module"] == modules[side] and n["op"] == "LayerNormalization"
        )
        for side in ("a", "b")
    }


def _colour(hex_colour: str) -> str:
    red, green, blue = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({red}, {green}, {blue})"


# -- the files ------------------------------------------------------------------------------
def test_files_hold_both_graphs_errors_and_pairing(tiny_data, tmp_path):
    written = to_model_explorer(MatchResult.from_dict(tiny_data), tmp_path)
    files = ExplorerFiles.read(tmp_path)
    assert sorted(map(str, written.values())) == sorted(map(str, files.paths()))
    culprit = _culprit_nodes(tiny_data)
    worst = max(float(p["metrics"]["max_abs"]) for p in tiny_data["pairs"])
    for side in ("a", "b"):
        model = onnx.load(str(files.models[side]))
        view = tiny_data["graphs"][side]
        assert model.graph.name == files.graph_ids[side]
        assert [n.name for n in model.graph.node] == [n["id"] for n in view["nodes"]]
        props = {p.key: p.value for p in model.graph.node[0].metadata_props}
        assert props["namespace"] == view["nodes"][0]["module"].replace(".", "/")
        assert not model.graph.initializer, "weight-less"
        ids = {n.name for n in model.graph.node}
        data = {k: json.loads(p.read_text()) for k, p in files.node_data[side].items()}
        assert set(data) == {"max_abs", "max_rel", "own_max_abs", "status"}
        for content in data.values():
            assert list(content) == [files.graph_ids[side]]
            assert set(content[files.graph_ids[side]]["results"]) <= ids
        max_abs = data["max_abs"][files.graph_ids[side]]
        assert max(r["value"] for r in max_abs["results"].values()) == pytest.approx(worst)
        assert max_abs["results"][culprit[side]]["value"] == pytest.approx(worst)
        assert [t["value"] for t in max_abs["thresholds"]] == [v for v, _ in THRESHOLDS]
        status = data["status"][files.graph_ids[side]]["results"][culprit[side]]
        assert status == {"value": "culprit", "bgColor": STATUS_COLOURS["culprit"]}
    mapping = json.loads(files.mapping.read_text())["mappingEntries"]
    assert len(mapping) >= 40
    assert {"leftNodeIds": [culprit["a"]], "rightNodeIds": [culprit["b"]]} in mapping


def test_needs_graphs_and_its_files(tiny_data, tmp_path):
    del tiny_data["graphs"]
    with pytest.raises(ReportError, match="no graphs"):
        model_explorer_data(tiny_data)
    with pytest.raises(ReportError, match="no graphs"):
        to_model_explorer(tiny_data, tmp_path)
    with pytest.raises(FileFormatError, match="model_explorer.json"):
        ExplorerFiles.read(tmp_path)


# -- the server -----------------------------------------------------------------------------
def _stopped(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/check_health", timeout=2)
    except (urllib.error.URLError, OSError):
        return True
    return False


@needs_explorer
def test_cli_explore_serves_until_interrupted(tiny_data, tmp_path):
    saved = tmp_path / "result.json"
    saved.write_text(json.dumps(tiny_data), encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "padiff_ir.cli", "explore", str(saved), "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline() if process.stdout else ""
        assert line.startswith("Model Explorer: http://127.0.0.1:"), process.stderr
        port = int(line.split(":")[3].split("/")[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/check_health") as response:
            assert response.read() == b"model_explorer_ok"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
    assert _stopped(port), "the server (a child of the command) is gone with it"


@needs_explorer
def test_a_killed_caller_leaves_no_server(tiny_data, tmp_path):
    """start_server's caller killed with SIGKILL (no stop(), no atexit): the server follows."""
    to_model_explorer(tiny_data, tmp_path)
    script = (
        "import os, signal, sys\n"
        "from padiff_ir.report.explorer_server import start_server\n"
        f"server = start_server({str(tmp_path)!r})\n"
        "print(server.port, server.process.pid, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    caller = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=180
    )
    assert caller.returncode == -signal.SIGKILL, caller.stderr
    port, child = (int(v) for v in caller.stdout.split())
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (_stopped(port) and _gone(child)):
        time.sleep(0.2)
    assert _stopped(port) and _gone(child), "the server outlived its caller"


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split(") ")[1].startswith("Z")  # a zombie has ended
    except FileNotFoundError:
        return True


@needs_explorer
def test_cli_explore_reports_a_missing_result(tmp_path, capsys):
    assert cli_main(["explore", str(tmp_path / "missing.json"), "--no-browser"]) == 2
    assert "missing.json" in capsys.readouterr().err


@pytest.fixture(scope="module")
def explorer(tmp_path_factory) -> Any:
    if not HAS_EXPLORER:
        pytest.skip("Model Explorer is not installed: pip install 'padiff-ir[explorer]'")
    folder = tmp_path_factory.mktemp("model_explorer")
    data = json.loads(_tiny_result())
    to_model_explorer(data, folder)
    server = start_server(folder, log=folder / "server.log")
    yield server, data
    server.stop()
    assert not server.running() and _stopped(server.port)


@pytest.fixture(scope="module")
def explorer_page(explorer: tuple[ExplorerServer, dict[str, Any]], browser: Any) -> Any:
    """Model Explorer's page in a Chromium of the session's Playwright, with WebGL."""
    server, data = explorer
    local = f"http://127.0.0.1:{server.port}/"
    seen: dict[str, list[str]] = {"errors": [], "blocked": []}

    def route(handler: Any) -> None:
        url = handler.request.url
        if url.startswith((local, "data:", "blob:")):
            handler.continue_()
        else:
            seen["blocked"].append(url)
            handler.abort()

    def on_console(message: Any) -> None:
        if message.type == "error" and "net::ERR_FAILED" not in message.text:
            seen["errors"].append(message.text)

    webgl = browser.browser_type.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
    try:
        page = webgl.new_page(viewport={"width": 1600, "height": 1000})
        page.route("**/*", route)
        page.on("console", on_console)
        page.on("pageerror", lambda err: seen["errors"].append(str(err)))
        page.goto(server.url)
        for side in ("a", "b"):
            title = f"{server.files.models[side].name} | {server.files.graph_ids[side]}"
            page.get_by_text(title).wait_for(timeout=60_000)
        page.wait_for_function(
            "!document.body.innerText.includes('Processing graph')", timeout=60_000
        )
        yield page, server, data, seen
    finally:
        webgl.close()


def test_both_graphs_load_with_our_node_data(explorer_page):
    page, _, _, seen = explorer_page
    providers = page.evaluate(
        "() => [...document.querySelectorAll('*')].filter(e => e.children.length === 0)"
        ".map(e => e.textContent.trim())"
    )
    for name in ("max_abs", "max_rel", "own_max_abs", "status"):
        assert providers.count(name) >= 2, f"node data {name} loaded on both graphs"
    backgrounds = page.evaluate(
        "() => [...document.querySelectorAll('*')].map(e => getComputedStyle(e).backgroundColor)"
    )
    # the culprit's error (7.8e-3) falls in the band up to 1e-2, exact ops in the first band
    assert _colour("#ff8a65") in backgrounds and _colour(THRESHOLDS[0][1]) in backgrounds
    assert seen["errors"] == []
    assert all(url.startswith(FONT_HOST) for url in seen["blocked"]), seen["blocked"]


def test_selecting_the_culprit_in_a_moves_b_to_its_partner(explorer_page):
    page, server, data, _ = explorer_page
    culprit = _culprit_nodes(data)
    page.get_by_text("Sync", exact=True).click()
    dropdown = page.locator(".model-explorer-sync-navigation-dropdown")
    with page.expect_file_chooser() as chooser:
        dropdown.get_by_text("Upload", exact=True).click()
    chooser.value.set_files(str(server.files.mapping))
    page.get_by_text(server.files.mapping.name).wait_for()
    modes = page.evaluate(
        "() => [...document.querySelectorAll('.model-explorer-sync-navigation-dropdown label')]"
        ".map(l => [l.innerText.trim(), !!(l.querySelector('input') || {}).checked])"
    )
    assert ["Upload mapping from computer", True] in modes
    dropdown.locator("mat-icon.close").click()
    # locate A's culprit op (it is centred in the left pane), then click it there
    search = page.get_by_placeholder("Search nodes/layers by regex").first
    search.fill(culprit["a"])
    search.press("Enter")
    results = page.locator(".search-results-container").first
    results.get_by_text("1 result").wait_for()
    results.get_by_text("LayerNormalization", exact=True).click(modifiers=["Alt"])
    # selected: its panel shows its id
    page.wait_for_function("id => document.body.innerText.includes(id)", arg=culprit["a"])
    time.sleep(2)  # the pane's animation to the op
    canvas = page.locator("canvas").first.bounding_box()
    assert canvas is not None
    deadline = time.monotonic() + 30
    while culprit["b"] not in page.locator("body").inner_text():
        assert time.monotonic() < deadline, f"B's pane did not move to {culprit['b']}"
        page.mouse.click(canvas["x"] + 20, canvas["y"] + canvas["height"] - 100)  # empty space
        page.mouse.click(canvas["x"] + canvas["width"] / 2, canvas["y"] + canvas["height"] / 2)
        time.sleep(2)
    text = page.locator("body").inner_text()
    assert culprit["a"] in text and "culprit" in text
    assert "0.001" in text and "1e-06" in text.lower(), "both epsilons shown side by side"
