"""Real ports as the ground truth: padiff-ir measured on pairs nobody here wrote.

The corpus is ``tests/ports``: each family module (``vision``: torchvision vs paddle.vision;
``decoders``: Hugging Face transformers vs PaddleFormers, where present) lists pairs built from
the libraries' own constructors, with a hand-written weight map, module map and true
differences. Per pair, against that truth:

* **modules**: the module pairs ``match`` finds (``MatchResult.layer_map``, call sites named):
  precision and recall, all of them and the parameter-free layers (pooling, dropout,
  activations) apart; a found pair is right when the hand map has it or lists it as holding the
  same computation (``notes["equivalent"]``);
* **assign**: ``assign_weight`` into a fresh paddle model, with and without inputs: ``right``
  (every tensor equals the hand conversion), ``refused`` (a typed error) or ``wrong``;
* **verdict** of ``match`` on the hand-converted pair: aligned pairs aligned with no culprit;
  pairs with true differences diverged, every difference named on both sides, no false culprit;
* **bugs**: injected bugs of ``benchmarks/_bugs.py``'s factories (a BatchNorm epsilon, a scaled
  conv weight, a swapped activation, a pooling setting) in the paddle side of a pair whose true
  differences are undone by hand: top-1 is the injected module pair named first;
* **auto_diff**: ``auto_diff(single_step=True)``, forward and backward, on the hand-converted
  pair: the same verdict as ``match`` expected.

Writes ``benchmarks/results/ports.json`` and prints the markdown table of
``benchmarks/README.md`` ("Real ports"). Run:
``PADIFF_IR_CACHE_DIR= .venv/bin/python benchmarks/bench_ports.py [--family vision]
[--pairs resnet18,squeezenet1_1] [--quick]`` (``--quick`` leaves the slow pairs out).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._bugs import replace, scale, setattr_
from benchmarks._common import run_in_subprocess, write_results
from tests.ports import BuiltPair, Copy, PortPair, hand_convert
from tests.ports.eager import call_counts

logger = logging.getLogger("bench_ports")

FAMILIES = ("vision", "decoders")
#: auto_diff's tolerance: match's default (strict: every element within atol + rtol * |b|)
AUTO_DIFF_TOLERANCE = {"atol": 1e-5, "rtol": 1e-5, "compare_mode": "strict"}


def corpus(families: tuple[str, ...] = FAMILIES) -> list[PortPair]:
    """Every pair of the named families whose module exists (``tests.ports.<family>``)."""
    rows: list[PortPair] = []
    for family in families:
        try:
            module = importlib.import_module(f"tests.ports.{family}")
        except ModuleNotFoundError as err:
            if err.name != f"tests.ports.{family}":
                raise
            logger.info("no %s family in this checkout", family)
            continue
        rows.extend(module.PAIRS)
    return rows


def _error(err: BaseException) -> str:
    return f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"


# --- module pairs --------------------------------------------------------------------------


def _parameter_free(pair: BuiltPair, path: str) -> bool:
    module = pair.torch_model.get_submodule(path.partition("#")[0])
    return not any(True for _ in module.parameters())


def module_scores(pair: BuiltPair, found: list[tuple[str, str]]) -> dict[str, Any]:
    """Precision and recall of the found module pairs against the hand map, overall and for
    the parameter-free layers (by the torch module)."""
    truth = {(a, b) for a, b in pair.modules.items() if a}
    right = truth | set(pair.notes.get("equivalent", ()))
    found_set = {(a, b) for a, b in found if a}
    scores: dict[str, Any] = {}
    for label, keep in (("all", lambda _a: True), ("free", lambda a: _parameter_free(pair, a))):
        t = {p for p in truth if keep(p[0])}
        f = {p for p in found_set if keep(p[0])}
        hits = len(f & right)
        scores[label] = {
            "truth": len(t),
            "found": len(f),
            "recall": round(len(f & t) / len(t), 3) if t else None,
            "precision": round(hits / len(f), 3) if f else None,
            "false": sorted(f - right)[:12],
            "missed": sorted(t - f)[:12],
        }
    return scores


# --- assign_weight -------------------------------------------------------------------------


def _expected(pair: BuiltPair) -> dict[str, np.ndarray]:
    state = pair.torch_model.state_dict()
    expected = {}
    for name_a, (name_b, how) in pair.weights.items():
        value = state[name_a].detach().cpu().numpy()
        expected[name_b] = value.T if how is Copy.TRANSPOSE else value
    return expected


def assign_outcome(row: PortPair, with_inputs: bool) -> dict[str, Any]:
    """``assign_weight`` into a fresh paddle model: right, refused (typed) or wrong."""
    import padiff_ir
    from padiff_ir.errors import PadiffError

    pair = row.build()
    expected = _expected(pair)
    try:
        padiff_ir.assign_weight(
            pair.paddle_model, pair.torch_model, inputs=pair.inputs if with_inputs else None
        )
    except PadiffError as err:
        return {"outcome": "refused", "error": _error(err)}
    except Exception as err:  # an untyped escape is a defect of its own
        return {"outcome": "crash", "error": _error(err)}
    state = pair.paddle_model.state_dict()
    wrong = [n for n, v in expected.items() if not np.array_equal(state[n].numpy(), v)]
    return {"outcome": "wrong" if wrong else "right", "wrong": wrong[:8], "n_wrong": len(wrong)}


# --- verdicts ------------------------------------------------------------------------------


def verdict_scores(pair: BuiltPair, ok: bool, culprits: list[tuple[str, str]]) -> dict[str, Any]:
    truth = {(d.module_a, d.module_b) for d in pair.differences}
    named = sum(1 for d in truth if d in culprits)
    false = [c for c in culprits if c not in truth]
    right = (ok and not culprits) if not truth else (not ok and named == len(truth) and not false)
    return {
        "ok": ok,
        "right": right,
        "named": f"{named}/{len(truth)}",
        "false_culprits": false[:8],
        "n_false": len(false),
    }


def run_match(pair: BuiltPair) -> dict[str, Any]:
    import padiff_ir

    start = time.perf_counter()
    try:
        result = padiff_ir.match(  # auto is measured by bench_noise.py on the same pairs
            pair.torch_model, pair.paddle_model, pair.inputs, tolerance="fixed"
        )
    except Exception as err:
        return {"error": _error(err), "right": False, "seconds": time.perf_counter() - start}
    culprits = [(c.module_a, c.module_b) for c in result.culprits]
    out = verdict_scores(pair, result.ok, culprits)
    out["culprits"] = [
        [c.module_a, c.module_b, "; ".join(c.setting_diffs or c.attribute_diffs)]
        for c in result.culprits
    ][:8]
    out["modules"] = module_scores(pair, [(p.site_a, p.site_b) for p in result.layer_map])
    out["fallback"] = bool(result.fallback)
    out["seconds"] = round(time.perf_counter() - start, 1)
    return out


def run_auto_diff(pair: BuiltPair) -> dict[str, Any]:
    import padiff_ir

    start = time.perf_counter()
    try:
        result = padiff_ir.auto_diff(
            pair.torch_model,
            pair.paddle_model,
            pair.inputs,
            single_step=True,
            auto_init=False,
            **AUTO_DIFF_TOLERANCE,
        )
    except Exception as err:
        return {"error": _error(err), "right": False}
    culprits = [(c.module_a, c.module_b) for c in result.culprits]
    out = verdict_scores(pair, bool(result), culprits)
    out["seconds"] = round(time.perf_counter() - start, 1)
    return out


# --- injected bugs -------------------------------------------------------------------------


def _sites(pair: BuiltPair, kinds: tuple[str, ...]) -> list[tuple[str, str]]:
    """Hand-mapped module pairs whose torch class is one of ``kinds``, run once on each side."""
    calls = call_counts(pair)[0]
    values = list(pair.modules.values())
    return [
        (a, b)
        for a, b in pair.modules.items()
        if a
        and "#" not in a
        and type(pair.torch_model.get_submodule(a)).__name__ in kinds
        and calls.get(a) == 1
        and "#" not in b
        and values.count(b) == 1
        and not any(c.startswith(b + "#") for c in values)
    ]


def _middle(sites: list[tuple[str, str]]) -> tuple[str, str] | None:
    return sites[len(sites) // 2] if sites else None


def _gelu() -> Any:
    import paddle

    return paddle.nn.GELU()


def bug_cases(pair: BuiltPair) -> list[tuple[str, Callable[[Any], None], tuple[str, str]]]:
    """The injected bugs for a pair: (name, apply to paddle, culprit)."""
    cases: list[tuple[str, Callable[[Any], None], tuple[str, str]]] = []
    norm = _middle(_sites(pair, ("BatchNorm2d",)))
    if norm:
        cases.append(("epsilon", setattr_(norm[1], _epsilon=1e-1), norm))
    conv = _middle(_sites(pair, ("Conv2d",)))
    if conv:
        cases.append(("scaled weight", scale(conv[1], "weight", 1.5), conv))
    act = _middle(_sites(pair, ("ReLU", "ReLU6", "Hardswish")))
    if act:
        cases.append(("swapped activation", replace(act[1], _gelu), act))
    pool = _middle(_sites(pair, ("MaxPool2d", "AvgPool2d")))
    if pool:
        cases.append(("pooling setting", setattr_(pool[1], ceil_mode=True), pool))
    # decoders: an RMSNorm epsilon (PaddleFormers' attribute) and a scaled projection weight
    rms = _middle(_sites(pair, _class_names(pair, "RMSNorm")))
    if rms:
        cases.append(("epsilon", setattr_(rms[1], variance_epsilon=1e-2), rms))
    linear = None if conv else _middle(_sites(pair, ("Linear",)))
    if linear:
        cases.append(("scaled weight", scale(linear[1], "weight", 1.5), linear))
    return cases


def _class_names(pair: BuiltPair, ending: str) -> tuple[str, ...]:
    """The torch model's module class names that end with ``ending`` (a library's own norms)."""
    names = {type(m).__name__ for m in pair.torch_model.modules()}
    return tuple(sorted(n for n in names if n.endswith(ending)))


def run_bugs(row: PortPair) -> list[dict[str, Any]]:
    import padiff_ir
    from tests.ports.eager import module_outputs

    results = []
    probe = row.build()
    for name, apply, culprit in bug_cases(probe):
        pair = row.build()
        hand_convert(pair)
        if pair.notes.get("undo"):
            pair.notes["undo"](pair.paddle_model)
        apply(pair.paddle_model)
        outs_a, outs_b = module_outputs(pair, {culprit[0]: culprit[1]})
        a, b = outs_a[culprit[0]], outs_b[culprit[1]]  # the bug shows at its module at least
        if a.shape == b.shape and np.allclose(a, b, atol=1e-5, rtol=1e-5):
            results.append({"bug": name, "site": list(culprit), "effect": False})
            continue
        start = time.perf_counter()
        try:
            result = padiff_ir.match(
                pair.torch_model, pair.paddle_model, pair.inputs, tolerance="fixed"
            )
            named = [(c.module_a, c.module_b) for c in result.culprits]
            entry: dict[str, Any] = {"culprits": [list(c) for c in named[:4]]}
            entry["top1"] = bool(named) and named[0] == culprit
        except Exception as err:
            entry = {"error": _error(err), "top1": False}
        entry |= {"bug": name, "site": list(culprit), "effect": True}
        entry["seconds"] = round(time.perf_counter() - start, 1)
        results.append(entry)
    return results


# --- per pair, and the table -----------------------------------------------------------------


def measure(row: PortPair, parts: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"pair": row.name, "family": row.family, "slow": row.slow}
    if "match" in parts:
        pair = row.build()
        hand_convert(pair)
        out["match"] = run_match(pair)
    if "assign" in parts:
        out["assign_no_inputs"] = assign_outcome(row, with_inputs=False)
        out["assign_inputs"] = assign_outcome(row, with_inputs=True)
    if "auto_diff" in parts:
        pair = row.build()
        hand_convert(pair)
        out["auto_diff"] = run_auto_diff(pair)
    if "bugs" in parts:
        out["bugs"] = run_bugs(row)
    return out


def _ratio(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}"


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| pair | verdict | true diffs named | false culprits | modules P/R | param-free P/R "
        "| assign (no inputs / inputs) | bugs top-1 | auto_diff |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if "crash" in row:  # the process died (a signal): nothing measured
            lines.append(f"| {row['pair'].split('/')[-1]} | process killed |" + " - |" * 7)
            continue
        m = row.get("match", {})
        mods = m.get("modules", {})
        free, every = mods.get("free", {}), mods.get("all", {})
        bugs = [b for b in row.get("bugs", []) if b.get("effect")]
        verdict = "-" if not m else "error" if "error" in m else "right" if m["right"] else "WRONG"
        auto = row.get("auto_diff", {})
        auto_text = (
            "-"
            if not auto
            else "error"
            if "error" in auto
            else "right"
            if auto["right"]
            else "WRONG"
        )
        lines.append(
            f"| {row['pair'].split('/')[-1]} | {verdict} | {m.get('named', '-')} "
            f"| {m.get('n_false', '-')} "
            f"| {_ratio(every.get('precision'))}/{_ratio(every.get('recall'))} "
            f"| {_ratio(free.get('precision'))}/{_ratio(free.get('recall'))} "
            f"| {row.get('assign_no_inputs', {}).get('outcome', '-')} / "
            f"{row.get('assign_inputs', {}).get('outcome', '-')} "
            f"| {sum(b.get('top1', False) for b in bugs)}/{len(bugs)} | {auto_text} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", action="append", choices=FAMILIES)
    parser.add_argument("--pairs", default="", help="comma-separated name parts to keep")
    parser.add_argument("--quick", action="store_true", help="leave the slow pairs out")
    parser.add_argument("--parts", default="match,assign,auto_diff,bugs")
    parser.add_argument("--output", default="ports", help="results/<output>.json")
    parser.add_argument("--case", default="", help="one pair and its parts (a child process)")
    args = parser.parse_args(argv)
    if args.case:  # one pair in this process: its row as the last line of stdout
        name, _, parts_text = args.case.partition("|")
        row = next(r for r in corpus() if r.name == name)
        print(json.dumps(measure(row, set(parts_text.split(","))), default=str))
        return
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    for noisy in ("padiff_ir", "paddle2onnx"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    keep = [p for p in args.pairs.split(",") if p]
    rows = [
        r
        for r in corpus(tuple(args.family or FAMILIES))
        if (not keep or any(k in r.name for k in keep)) and not (args.quick and r.slow)
    ]
    results = []
    for row in rows:  # each pair in a fresh process: a crash costs its row only
        out = run_in_subprocess(__file__, f"{row.name}|{args.parts}")
        if "error" in out and "pair" not in out:
            out = {"pair": row.name, "family": row.family, "slow": row.slow, "crash": out["error"]}
        logger.info("%s: %s", row.name, json.dumps(out, default=str)[:2000])
        results.append(out)
    path = write_results(args.output, results)
    logger.info("wrote %s", path)
    print(table(results))


if __name__ == "__main__":
    main()
