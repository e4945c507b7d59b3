"""Fixtures of the report tests: real results (built once per session) and a headless browser.

The browser is Debian's ``chromium`` driven by Playwright (``pip install playwright``; never
``playwright install``, which downloads a browser). Browser tests skip only when chromium is not
installed; the test setup installs it (``apt-get install -y chromium``).
"""

from __future__ import annotations

import functools
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@functools.cache
def _tiny_result() -> str:
    from tests.report._results import vitpose_result

    return json.dumps(vitpose_result("tiny"))


@functools.cache
def _diff_result() -> str:
    import paddle
    import torch

    from padiff_ir.native import auto_diff
    from padiff_ir.zoo import get_pair

    pair = get_pair("mlp", "tiny")
    optimizer_a = torch.optim.Adam(pair.torch_model.parameters(), lr=1e-2)
    optimizer_b = paddle.optimizer.Adam(
        learning_rate=1.1e-2, parameters=pair.paddle_model.parameters()
    )
    result = auto_diff(
        pair.torch_model,
        pair.paddle_model,
        pair.inputs,
        optimizer=[optimizer_a, optimizer_b],
        steps=4,
        compare_mode="strict",
        atol=1e-6,
        rtol=1e-5,
    )
    return result.to_json(indent=None)


@functools.cache
def _llama_result(layers: int) -> str:
    from padiff_ir import match
    from padiff_ir.zoo import get_pair

    pair = get_pair("llama", "tiny", overrides={"layers": layers})
    result = match(pair.torch_model, pair.paddle_model, pair.inputs, assign_weights=True)
    return result.to_json(indent=None)


@pytest.fixture
def llama_data() -> dict[str, Any]:
    """``match(..., assign_weights=True)`` of the zoo's decoder-LLM pair (llama tiny, 2 layers):
    paddle's model cannot export, so the result is the native fallback's; a fresh copy."""
    return json.loads(_llama_result(2))


@pytest.fixture
def llama24_data() -> dict[str, Any]:
    """As ``llama_data`` with 24 decoder layers."""
    return json.loads(_llama_result(24))


@pytest.fixture
def tiny_data() -> dict[str, Any]:
    """``match()`` of the zoo's ViTPose-tiny (the demo's pair) with a culprit LayerNorm in B
    (``backbone.blocks.1.norm2`` with epsilon 1e-3), as a dict with graphs; a fresh copy."""
    return json.loads(_tiny_result())


@pytest.fixture
def diff_data() -> dict[str, Any]:
    """auto_diff of the zoo's MLP over 4 Adam steps whose learning rates differ (1e-2, 1.1e-2)."""
    return json.loads(_diff_result())


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed: apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "chromium is installed but playwright is not: pip install playwright "
            "(do not run 'playwright install'; the tests use /usr/bin/chromium)"
        )
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@dataclass
class OpenedReport:
    """A report loaded in a page, with what the page logged and asked for."""

    page: Any
    uri: str
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        """No console error, no exception, no dialog, no request but the file itself."""
        assert self.errors == [], self.errors
        assert self.blocked == [], f"network requests attempted: {self.blocked}"
        others = [u for u in self.requests if u != self.uri and not u.startswith("data:")]
        assert others == [], f"requests besides the report file: {others}"


@pytest.fixture
def open_report(browser):
    """``open_report(path) -> OpenedReport``: load a report from disk, network blocked."""
    pages = []

    def opener(path: Path, *, timeout_ms: float = 20_000) -> OpenedReport:
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        pages.append(page)
        opened = OpenedReport(page, Path(path).resolve().as_uri())

        def on_console(message: Any) -> None:
            if message.type == "error":
                opened.errors.append(f"console: {message.text}")

        def on_dialog(dialog: Any) -> None:
            opened.errors.append(f"dialog: {dialog.message}")
            dialog.dismiss()

        def route(handler: Any) -> None:
            url = handler.request.url
            if url.startswith(("file:", "data:")):
                handler.continue_()
            else:
                opened.blocked.append(url)
                handler.abort()

        page.on("console", on_console)
        page.on("pageerror", lambda err: opened.errors.append(f"page error: {err}"))
        page.on("dialog", on_dialog)
        page.on("request", lambda request: opened.requests.append(request.url))
        page.route("**/*", route)
        page.goto(opened.uri)
        page.wait_for_selector("html[data-ready=true]", timeout=timeout_ms)
        return opened

    yield opener
    for page in pages:
        page.close()
