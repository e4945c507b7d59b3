"""Localisation benchmark: is the culprit named, on both sides, and nothing else?

Every kind of injected porting bug of :mod:`benchmarks._bugs` goes into the paddle half of a
zoo pair (mlp, cnn, vit, vitpose, bert, tiny; weights copied from the torch half) or of issue
11's pair with a shared pooling layer and a dropout (``tests/compare/call_site_pairs.py``).
Each model is compared by ``padiff_ir.match`` and by ``padiff_ir.auto_diff(single_step=True)``
(forward phase). Measured, for each path:

* **top-1**: single bugs whose first culprit is the injected module pair, both sides named
  (the call site for a shared layer);
* **exact**: single bugs whose culprits are that pair and nothing else;
* **recall**: with 2-3 bugs in one model at once, the injected pairs found among the culprits;
* **false culprits**: culprits named on the aligned pairs (no bug) and on deep chaotic stacks
  (tanh-linear layers with gain 3: each layer agrees to rounding, the outputs drift apart by
  accumulation alone), where every culprit is false.

Writes ``benchmarks/results/localisation.json`` and prints the markdown tables of
``benchmarks/README.md``. Run: ``.venv/bin/python benchmarks/bench_localisation.py`` (a few
minutes on 2 cores: every case exports both models).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._bugs import BUGS, COMBINATIONS, Bug, combination
from benchmarks._common import write_results

logger = logging.getLogger("bench_localisation")

#: auto_diff's tolerance: match's default (strict: every element within atol + rtol * |b|)
AUTO_DIFF_TOLERANCE = {"atol": 1e-5, "rtol": 1e-5, "compare_mode": "strict"}

Sites = list[tuple[str, str]]


def _pair(arch: str) -> tuple[Any, Any, Any]:
    """Torch model A, paddle model B (A's weights), inputs."""
    if arch == "shared-pool":
        from tests.compare.call_site_pairs import example_input, pair

        model_a, model_b = pair()
        return model_a, model_b, example_input()
    if arch == "chaotic":
        return _chaotic_pair()
    from padiff_ir.zoo import get_pair

    found = get_pair(arch)
    return found.torch_model, found.paddle_model, found.inputs


def _chaotic_pair(depth: int = 24, width: int = 32) -> tuple[Any, Any, Any]:
    """Tanh-linear stacks with orthogonal weights of gain 3, the same in torch and paddle."""
    import paddle
    import torch

    generator = np.random.default_rng(0)
    layers_a: list[Any] = []
    layers_b: list[Any] = []
    for _ in range(depth):
        q, _ = np.linalg.qr(generator.standard_normal((width, width)))
        weight = (3.0 * q).astype("float32")
        bias = (0.1 * generator.standard_normal(width)).astype("float32")
        linear_a, linear_b = torch.nn.Linear(width, width), paddle.nn.Linear(width, width)
        with torch.no_grad():
            linear_a.weight.copy_(torch.from_numpy(weight))
            linear_a.bias.copy_(torch.from_numpy(bias))
        linear_b.weight.set_value(weight.T.copy())
        linear_b.bias.set_value(bias)
        layers_a += [linear_a, torch.nn.Tanh()]
        layers_b += [linear_b, paddle.nn.Tanh()]
    inputs = generator.standard_normal((4, width)).astype("float32")
    return torch.nn.Sequential(*layers_a).eval(), paddle.nn.Sequential(*layers_b).eval(), inputs


def _match_culprits(model_a: Any, model_b: Any, inputs: Any) -> tuple[Sites, bool]:
    import padiff_ir

    result = padiff_ir.match(model_a, model_b, inputs, tolerance="fixed")  # as recorded
    return [(c.module_a, c.module_b) for c in result.culprits], result.ok


def _auto_diff_culprits(model_a: Any, model_b: Any, inputs: Any) -> tuple[Sites, bool]:
    import padiff_ir

    result = padiff_ir.auto_diff(
        model_a,
        model_b,
        inputs,
        single_step=True,
        diff_phase="forward",
        auto_init=False,
        **AUTO_DIFF_TOLERANCE,
    )
    return [(c.module_a, c.module_b) for c in result.culprits], result.ok


PATHS: dict[str, Callable[[Any, Any, Any], tuple[Sites, bool]]] = {
    "match": _match_culprits,
    "auto_diff": _auto_diff_culprits,
}


def _case(arch: str, bugs: list[Bug], name: str) -> dict[str, Any]:
    row: dict[str, Any] = {
        "case": name,
        "arch": arch,
        "kinds": [b.kind for b in bugs],
        "expected": [list(b.culprit) for b in bugs],
    }
    for path, run in PATHS.items():
        model_a, model_b, inputs = _pair(arch)
        for bug in bugs:
            bug.apply(model_b)
        start = time.perf_counter()
        try:
            found, ok = run(model_a, model_b, inputs)
            row[path] = {"culprits": [list(c) for c in found], "ok": ok}
        except Exception as err:  # a failure is a result too: nothing named
            logger.exception("%s on %s failed", path, name)
            row[path] = {"culprits": [], "ok": None, "error": f"{type(err).__name__}: {err}"}
        row[path]["seconds"] = round(time.perf_counter() - start, 2)
        expected = {tuple(c) for c in row["expected"]}
        named = [tuple(c) for c in row[path]["culprits"]]
        row[path]["top1"] = bool(named) and named[0] in expected
        row[path]["found"] = sum(1 for c in expected if c in named)
        row[path]["false"] = sum(1 for c in named if c not in expected)
        logger.info("%-40s %-9s %s", name, path, named)
    return row


def _summary(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    for path in PATHS:
        single = [r for r in rows if r["group"] == "single"]
        multi = [r for r in rows if r["group"] == "multi"]
        aligned = [r for r in rows if r["group"] == "aligned"]
        drift = [r for r in rows if r["group"] == "drift"]
        table[path] = {
            "top1": f"{sum(r[path]['top1'] for r in single)}/{len(single)}",
            "exact": (
                f"{sum(r[path]['top1'] and r[path]['false'] == 0 for r in single)}/{len(single)}"
            ),
            "recall": (
                f"{sum(r[path]['found'] for r in multi)}/{sum(len(r['expected']) for r in multi)}"
            ),
            "multi_false": sum(r[path]["false"] for r in multi),
            "aligned_false": sum(r[path]["false"] for r in aligned),
            "drift_false": sum(r[path]["false"] for r in drift),
            "seconds": round(sum(r[path]["seconds"] for r in rows), 1),
        }
    return table


def _markdown(rows: list[dict[str, Any]], table: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| path | top-1 (single bug) | exact (only the culprit) | recall (2-3 bugs) | "
        "false culprits with 2-3 bugs | false culprits, aligned pairs | "
        "false culprits, chaotic drift | s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for path, t in table.items():
        lines.append(
            f"| `{path}` | {t['top1']} | {t['exact']} | {t['recall']} | {t['multi_false']} | "
            f"{t['aligned_false']} | {t['drift_false']} | {t['seconds']} |"
        )
    lines += ["", "| case | kind | expected | match | auto_diff |", "|---|---|---|---|---|"]
    for r in rows:
        expected = ", ".join(f"{a} / {b}" if a != b else a for a, b in r["expected"]) or "-"

        def named(path: str, r: dict[str, Any] = r) -> str:
            found = r[path]["culprits"]
            text = ", ".join(f"{a} / {b}" if a != b else a for a, b in found) or "none"
            return text if len(text) < 60 else text[:57] + "..."

        lines.append(
            f"| {r['case']} | {', '.join(dict.fromkeys(r['kinds'])) or '-'} | {expected} | "
            f"{named('match')} | {named('auto_diff')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("padiff_ir", "paddle", "torch"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    cases: list[tuple[str, str, list[Bug], str]] = []
    cases += [("single", b.arch, [b], b.name) for b in BUGS]
    for names in COMBINATIONS:
        bugs = combination(names)
        cases.append(("multi", bugs[0].arch, bugs, " + ".join(names)))
    archs = sorted({b.arch for b in BUGS})
    cases += [("aligned", arch, [], f"{arch} (aligned)") for arch in archs]
    cases.append(("drift", "chaotic", [], "chaotic tanh-linear x24 (drift)"))
    rows = []
    for group, arch, bugs, name in cases:
        if args.only and args.only not in name:
            continue
        row = _case(arch, bugs, name)
        row["group"] = group
        rows.append(row)
    table = _summary(rows)
    kinds = sorted({b.kind for b in BUGS})
    write_results(
        "localisation",
        [{"summary": table, "bug_kinds": len(BUGS), "kind_families": kinds}, *rows],
    )
    print(f"{len(BUGS)} bug kinds ({len(kinds)} families) over {len(archs)} pairs")
    print(_markdown(rows, table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
