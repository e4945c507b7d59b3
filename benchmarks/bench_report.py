"""Report benchmark: size of the HTML report and its time to interactive in headless Chromium.

Cases, each in a fresh process: ViTPose-tiny (the demo's pair), ViTPose-B, a synthetic pair of
4,000 data ops per side (each with a LayerNorm epsilon changed in B, so there is a culprit),
and the decoder-LLM pair of the zoo (llama) with ``match(..., assign_weights=True)``: tiny (2
layers), tiny with 24 layers, and "base" (0.43 B parameters, 24 layers); paddle's LLM cannot
export, so these are native-fallback results drawn as module outputs. Each report is opened
from disk in Debian's chromium (Playwright, network blocked) five times: the time from
navigation to the page's ``data-ready`` mark (``performance.now()`` inside the page, and the
wall time seen by the driver), plus the time to "Expand all". Writes
``benchmarks/results/report.json``, prints a markdown table, and exits 1 when the ViTPose-B
report takes 1 s or more to become interactive, an LLM report 3 s or more, or a report
reaches 20 MB.

Run: ``.venv/bin/python benchmarks/bench_report.py`` (about 5 minutes on 2 cores; needs
``apt-get install -y chromium`` and ``pip install playwright``); ``--case NAME`` runs one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import peak_rss_mib, run_in_subprocess, timed, write_results

CASES = (
    "vitpose-tiny",
    "vitpose-base",
    "synthetic-4000",
    "llama-tiny",
    "llama-tiny-24",
    "llama-base",
)
LOADS = 5
#: Time-to-interactive limits (seconds, the slowest of the loads) by case.
INTERACTIVE_LIMITS_S = {"vitpose-base": 1.0, "llama-tiny-24": 3.0, "llama-base": 3.0}
SIZE_LIMIT_MB = 20.0
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _llama_result(size: str, layers: int | None = None) -> dict:
    from padiff_ir import match
    from padiff_ir.zoo import get_pair

    pair = get_pair("llama", size, overrides={"layers": layers} if layers else None)
    result = match(
        pair.torch_model, pair.paddle_model, pair.inputs, assign_weights=True, tolerance="fixed"
    )
    return result.to_dict()


def _result(case: str) -> dict:
    from tests.report._results import synthetic_result, vitpose_result

    if case.startswith("llama-"):
        return _llama_result(case.split("-")[1], 24 if case.endswith("-24") else None)
    if case == "vitpose-tiny":
        return vitpose_result("tiny", culprit="backbone.blocks.1.norm2")
    if case == "vitpose-base":
        return vitpose_result("base", culprit="backbone.blocks.5.norm2")
    return synthetic_result(100, 40)


def _load_times(path: Path) -> dict:
    from playwright.sync_api import sync_playwright

    in_page, wall, expand, errors, requests = [], [], [], [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for _ in range(LOADS):
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.route(
                "**/*",
                lambda r: (
                    r.continue_() if r.request.url.startswith(("file:", "data:")) else r.abort()
                ),
            )
            start = time.perf_counter()
            page.goto(path.resolve().as_uri())
            page.wait_for_selector("html[data-ready=true]", timeout=60_000)
            wall.append(time.perf_counter() - start)
            in_page.append(page.evaluate("window.__padiffReadyMs") / 1000.0)
            start = time.perf_counter()
            page.click("[data-action='Expand all']")
            page.evaluate("new Promise(r => requestAnimationFrame(() => r(0)))")
            expand.append(time.perf_counter() - start)
            page.close()
        browser.close()
    uri = path.resolve().as_uri()
    return {
        "interactive_s": statistics.median(in_page),
        "interactive_max_s": max(in_page),
        "load_wall_s": statistics.median(wall),
        "expand_all_s": statistics.median(expand),
        "console_errors": len(errors),
        "other_requests": sorted({u for u in requests if u != uri and not u.startswith("data:")}),
    }


def run_case(case: str) -> dict:
    from padiff_ir.report import build_view, render_html

    data, build_s = timed(_result, case)
    with tempfile.TemporaryDirectory() as tmp:
        path, render_s = timed(render_html, data, Path(tmp) / f"{case}.html")
        size_mb = path.stat().st_size / 1e6
        loads = _load_times(path)
    graphs = build_view(data).payload.get("graphs") or {}  # a fallback's: module outputs
    return {
        "case": case,
        "nodes_a": len(graphs["a"]["nodes"]),
        "nodes_b": len(graphs["b"]["nodes"]),
        "fallback": bool(data.get("fallback")),
        "pairs": len(data["pairs"]),
        "build_result_s": build_s,
        "render_s": render_s,
        "size_mb": size_mb,
        **loads,
        "peak_rss_mib": peak_rss_mib(),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--case")
    parser.add_argument("--cases", help="comma-separated cases to run (default: all)")
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case)))
        return 0
    rows = []
    for case in args.cases.split(",") if args.cases else CASES:
        row = run_in_subprocess(__file__, case)
        rows.append(row)
        print(row, file=sys.stderr)
    path = write_results("report", rows)
    print(f"results: {path}\n")
    print(
        "| case | nodes A | nodes B | pairs | size MB | render s | interactive s (median of "
        f"{LOADS}) | max s | expand all s | console errors | other requests |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    failed = False
    for r in rows:
        if "error" in r:
            print(f"| {r['case']} | error: {r['error'][:60]} |")
            failed = True
            continue
        print(
            f"| {r['case']} | {r['nodes_a']} | {r['nodes_b']} | {r['pairs']} | "
            f"{r['size_mb']:.2f} | {r['render_s']:.2f} | {r['interactive_s']:.2f} | "
            f"{r['interactive_max_s']:.2f} | {r['expand_all_s']:.2f} | {r['console_errors']} | "
            f"{len(r['other_requests'])} |"
        )
        failed |= r["size_mb"] >= SIZE_LIMIT_MB or bool(r["console_errors"] or r["other_requests"])
        failed |= r["interactive_max_s"] >= INTERACTIVE_LIMITS_S.get(r["case"], float("inf"))
    if failed:
        print(
            f"\nFAIL: a report has errors, requests, >= {SIZE_LIMIT_MB} MB, or takes longer to "
            f"become interactive than its limit {INTERACTIVE_LIMITS_S}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
