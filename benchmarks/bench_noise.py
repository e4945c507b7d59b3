"""``tolerance="auto"`` measured: false alarms, injected bugs, the cost of the float64 shadow.

Cases, each in a fresh process:

* **aligned**: every zoo pair (``padiff_ir.zoo``) and every pair of the real-ports corpus
  (``tests/ports``, hand-converted, its true differences undone so the pair computes the same
  thing), plus a ResNet-50 whose BatchNorm statistics are of unit scale (scales in 0.5-1.5,
  activations in the thousands): ``match`` with the fixed default tolerance and with
  ``tolerance="auto"``; a false alarm is a diverged verdict or any culprit (goal under auto: 0);
* **bugs**: the injected bugs of ``bench_ports.bug_cases`` (a BatchNorm epsilon, a conv weight
  x1.5, ReLU -> GELU, a pool's ``ceil_mode``; an RMSNorm epsilon, a projection x1.5 in the
  decoders) under ``auto``: top-1 is the injected module pair named first;
* **epsilon**: a LayerNorm epsilon 1e-5 vs 1e-6 on small-variance inputs, its outputs scaled
  small (a norm weight of 1e-3): the fixed tolerance passes it, ``auto`` must name the norm;
* **half**: 16-bit models (``half:NAME:MODE``): a bfloat16 or float16 copy of a zoo pair's
  torch model against the float32 one, both in bfloat16 (AMP), the zoo's paddle port in a
  16-bit dtype against the float32 torch model; aligned, then a weight x1.5 and a norm's
  epsilon 0.1 injected into B (top-1 under ``auto``); written with ``--output noise_half``;
* **cost**: per aligned pair, A's float64 shadow forward (cast copy, no hooks) over its
  float32 forward, and the measurement's runs as timed in ``result.noise.seconds`` (the
  shadow over A's hooked run; where the measurement reuses ``match``'s own eager runs, over
  that stage, which runs A and B);
* **autodiff**: ``auto_diff(..., tolerance="auto")`` on the zoo pairs (aligned, x1000 weights,
  3 steps of SGD and Adam, the injected bugs); with a paddle A, with 16-bit models, and its
  cost against a fixed tolerance and PaDiff 0.2.0 (``autodiff-paddle:``, ``autodiff-16:``,
  ``autodiff-cost:`` cases, :mod:`benchmarks._noise_autodiff`).

Writes ``benchmarks/results/noise.json`` and prints the tables of ``benchmarks/README.md``
("Measured noise"). Run: ``PADIFF_IR_CACHE_DIR= .venv/bin/python benchmarks/bench_noise.py
[--quick] [--cases zoo:mlp,port:resnet18]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import run_in_subprocess, write_results

logger = logging.getLogger("bench_noise")

ZOO = ("mlp", "cnn", "vit", "vitpose", "bert", "llama")


def _error(err: BaseException) -> str:
    return f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"


def _judged(
    model_a: Any, model_b: Any, inputs: Any, site: str = "", **options: Any
) -> dict[str, Any]:
    import padiff_ir

    start = time.perf_counter()
    result = padiff_ir.match(model_a, model_b, inputs, **options)
    out: dict[str, Any] = {
        "ok": bool(result),
        "path": "module by module" if result.fallback is not None else "graphs",
        "culprits": [[c.module_a, c.module_b] for c in result.culprits][:6],
        "exporter_faults": [f.module for f in result.exporter_faults][:6],
        "seconds": round(time.perf_counter() - start, 2),
    }
    if result.noise is not None:
        out["sentence"] = result.noise.sentence
        out["method"] = result.noise.method
        out["noise_seconds"] = {k: round(v, 3) for k, v in result.noise.seconds}
        out["eager_seconds"] = round(result.timings.get("eager", 0.0), 3)
        module = result.noise.module(site) if site else None
        if module is not None:  # an injected bug's site: its outputs' and own error / bound
            out["site_ratios"] = [f.ratio if f else None for f in (module.output, module.own)]
    elif options.get("tolerance") == "auto":
        out["note"] = result.notes[-1] if result.notes else ""
    return out


def _forward_seconds(model: Any, inputs: Any, dtype: Any, repeat: int = 3) -> float:
    """Median seconds of a plain forward of a torch model, floating inputs in ``dtype``."""
    import torch

    from padiff_ir.frameworks import normalize_inputs

    args, kwargs = normalize_inputs(inputs).to_torch()
    args = tuple(a.to(dtype) if a.is_floating_point() else a for a in args)
    kwargs = {k: v.to(dtype) if v.is_floating_point() else v for k, v in kwargs.items()}
    times = []
    with torch.no_grad():
        model(*args, **kwargs)  # a first call pays the framework's lazy set-up
        for _ in range(repeat):
            start = time.perf_counter()
            model(*args, **kwargs)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def shadow_cost(model: Any, inputs: Any) -> dict[str, float]:
    """A torch model's float64 shadow (the cast copy and its forward) over its float32
    forward (medians of 3)."""
    import torch

    from padiff_ir.frameworks import get_framework

    model.eval()
    float32 = _forward_seconds(model, inputs, torch.float32)
    start = time.perf_counter()
    shadow = get_framework("torch").cast_copy(model, "float64")
    cast = time.perf_counter() - start
    float64 = _forward_seconds(shadow, inputs, torch.float64)
    del shadow
    return {
        "float32_s": round(float32, 4),
        "float64_s": round(float64, 4),
        "cast_s": round(cast, 4),
        "ratio": round((float64 + cast) / float32, 2) if float32 else float("nan"),
    }


def aligned(model_a: Any, model_b: Any, inputs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, options in (("fixed", {"tolerance": "fixed"}), ("auto", {"tolerance": "auto"})):
        try:
            out[label] = _judged(model_a, model_b, inputs, **options)
        except Exception as err:
            out[label] = {"error": _error(err)}
    out["false_alarm"] = {
        label: "error" in out[label] or not out[label]["ok"] or bool(out[label]["culprits"])
        for label in ("fixed", "auto")
    }
    try:
        out["cost"] = shadow_cost(model_a, inputs)
    except Exception as err:
        out["cost"] = {"error": _error(err)}
    return out


# --- cases ---------------------------------------------------------------------------------


def zoo_case(name: str) -> dict[str, Any]:
    from padiff_ir.zoo import get_pair

    pair = get_pair(name)
    return {"case": f"zoo:{name}", **aligned(pair.torch_model, pair.paddle_model, pair.inputs)}


def _port_row(name: str) -> Any:
    from benchmarks.bench_ports import corpus

    return next(r for r in corpus() if r.name.split("/")[-1] == name)


def _converted(row: Any) -> Any:
    from tests.ports import hand_convert

    pair = row.build()
    hand_convert(pair)
    if pair.notes.get("undo"):  # the true differences undone: the pair computes one thing
        pair.notes["undo"](pair.paddle_model)
    return pair


def port_case(name: str) -> dict[str, Any]:
    pair = _converted(_port_row(name))
    return {"case": f"port:{name}", **aligned(pair.torch_model, pair.paddle_model, pair.inputs)}


def _unit_scale_norms(model: Any, seed: int = 0) -> None:
    """BatchNorm statistics of unit scale (scales U(0.5, 1.5)): activations in the
    thousands through fifty layers, as in the issue's ResNet-50."""
    import torch

    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                n = module.num_features
                for key, value in (
                    ("weight", rng.uniform(0.5, 1.5, n)),
                    ("bias", rng.normal(0.0, 0.1, n)),
                    ("running_mean", rng.normal(0.0, 0.1, n)),
                    ("running_var", rng.uniform(0.5, 1.5, n)),
                ):
                    getattr(module, key).copy_(torch.from_numpy(value.astype("float32")))


def hot_case(name: str) -> dict[str, Any]:
    from tests.ports import hand_convert

    pair = _port_row(name).build()
    _unit_scale_norms(pair.torch_model)
    hand_convert(pair)
    import torch

    with torch.no_grad():
        logits = pair.torch_model(*[torch.from_numpy(x) for x in _arrays(pair.inputs)])
    out = aligned(pair.torch_model, pair.paddle_model, pair.inputs)
    return {"case": f"hot:{name}", "max_abs_logit": float(logits.abs().max()), **out}


def _arrays(inputs: Any) -> list[np.ndarray]:
    from padiff_ir.frameworks import normalize_inputs

    return list(normalize_inputs(inputs).arrays)


def bugs_case(name: str) -> dict[str, Any]:
    import padiff_ir
    from benchmarks.bench_ports import bug_cases
    from tests.ports.eager import module_outputs

    row = _port_row(name)
    results = []
    for bug, apply, culprit in bug_cases(row.build()):
        pair = _converted(row)
        apply(pair.paddle_model)
        outs_a, outs_b = module_outputs(pair, {culprit[0]: culprit[1]})
        a, b = outs_a[culprit[0]], outs_b[culprit[1]]
        if a.shape == b.shape and np.allclose(a, b, atol=1e-5, rtol=1e-5):
            results.append({"bug": bug, "site": list(culprit), "effect": False})
            continue
        try:
            result = padiff_ir.match(
                pair.torch_model, pair.paddle_model, pair.inputs, tolerance="auto"
            )
            named = [(c.module_a, c.module_b) for c in result.culprits]
            entry: dict[str, Any] = {"culprits": [list(c) for c in named[:4]]}
            entry["top1"] = bool(named) and named[0] == culprit
            entry["sentence"] = result.noise.sentence if result.noise else ""
        except Exception as err:
            entry = {"error": _error(err), "top1": False}
        results.append({"bug": bug, "site": list(culprit), "effect": True, **entry})
    return {"case": f"bugs:{name}", "bugs": results}


def _norm_pair(eps_b: float) -> tuple[Any, Any, np.ndarray]:
    import paddle
    import torch

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model_a = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.LayerNorm(64, eps=1e-5))
    with torch.no_grad():
        model_a[0].weight.mul_(0.1)  # small-variance inputs of the norm (about 1e-3)
        model_a[0].bias.zero_()
        model_a[1].weight.fill_(5e-4)  # and small outputs: the fixed atol cannot see them
    model_b = paddle.nn.Sequential(paddle.nn.Linear(16, 64), paddle.nn.LayerNorm(64, epsilon=eps_b))
    model_b[0].weight.set_value(model_a[0].weight.detach().numpy().T.copy())
    model_b[0].bias.set_value(model_a[0].bias.detach().numpy())
    model_b[1].weight.set_value(model_a[1].weight.detach().numpy())
    model_b[1].bias.set_value(model_a[1].bias.detach().numpy())
    return model_a, model_b, rng.standard_normal((4, 16)).astype("float32")


def epsilon_case() -> dict[str, Any]:
    model_a, model_b, inputs = _norm_pair(1e-6)
    out: dict[str, Any] = {"case": "epsilon"}
    for label, options in (("fixed", {"tolerance": "fixed"}), ("auto", {"tolerance": "auto"})):
        out[label] = _judged(model_a, model_b, inputs, **options)
    out["found"] = {
        label: not out[label]["ok"] and out[label]["culprits"][:1] == [["1", "1"]]
        for label in ("fixed", "auto")
    }
    same_a, same_b, inputs = _norm_pair(1e-5)  # the same pair without the bug: no alarm
    out["aligned_auto"] = _judged(same_a, same_b, inputs, tolerance="auto")
    return out


def _auto_diff_judged(model_a: Any, model_b: Any, inputs: Any, **options: Any) -> dict[str, Any]:
    from padiff_ir.native import auto_diff

    start = time.perf_counter()
    result = auto_diff(model_a, model_b, inputs, auto_init=False, **options)
    first = result.first_difference
    return {
        "ok": result.ok,
        "culprits": [c.module_a for c in result.culprits],
        "first": [first.stage, first.module_a, first.module_b] if first else None,
        "sentence": result.noise.sentence if result.noise else "",
        "seconds": round(time.perf_counter() - start, 3),
    }


def auto_diff_case(name: str) -> dict[str, Any]:
    """``auto_diff`` under ``tolerance="auto"`` on one zoo pair: aligned as built (and with
    its first layer's weights times 1000: activations in the thousands), then each injected
    bug of ``benchmarks/_bugs.py`` for it (weights already equal: no ``auto_init``)."""
    from benchmarks._bugs import BUGS
    from padiff_ir._paths import within as within_module
    from padiff_ir.zoo import get_pair

    tight = {"atol": 1e-6, "rtol": 1e-6, "compare_mode": "strict"}
    out: dict[str, Any] = {"case": f"autodiff:{name}"}
    for label, hot in (("aligned", False), ("hot", True)):
        pair = get_pair(name, "tiny")
        if hot:
            _hot(pair.torch_model, pair.paddle_model)
        out[label] = {
            "fixed": _auto_diff_judged(pair.torch_model, pair.paddle_model, pair.inputs, **tight),
            "auto": _auto_diff_judged(
                pair.torch_model, pair.paddle_model, pair.inputs, tolerance="auto"
            ),
        }
    for kind in ("SGD", "Adam"):  # three training steps: weights and optimizer states
        pair = get_pair(name, "tiny")
        out[f"steps_{kind.lower()}"] = _auto_diff_judged(
            pair.torch_model,
            pair.paddle_model,
            pair.inputs,
            tolerance="auto",
            optimizer=_optimizers(kind, pair.torch_model, pair.paddle_model),
            steps=3,
        )
    bugs = []
    for bug in (b for b in BUGS if b.arch == name):
        pair = get_pair(name, "tiny")
        bug.apply(pair.paddle_model)
        try:
            judged = _auto_diff_judged(
                pair.torch_model, pair.paddle_model, pair.inputs, tolerance="auto"
            )
        except Exception as err:
            judged = {"error": _error(err), "ok": False, "first": None}
        top1 = judged["first"] is not None and tuple(judged["first"][1:]) == bug.culprit
        within = judged["first"] is not None and within_module(judged["first"][1], bug.culprit[0])
        pair = get_pair(name, "tiny")
        bug.apply(pair.paddle_model)
        single = _auto_diff_judged(
            pair.torch_model, pair.paddle_model, pair.inputs, tolerance="auto", single_step=True
        )
        bugs.append(
            {
                "bug": bug.name,
                "site": list(bug.culprit),
                "top1": top1,
                "within": within,
                "single_step_top1": single["culprits"][:1] == [bug.culprit[0]],
                **judged,
            }
        )
    out["bugs"] = bugs
    return out


def _optimizers(kind: str, model_a: Any, model_b: Any) -> list[Any]:
    import paddle
    import torch

    lr = 0.01 if kind == "SGD" else 0.001
    return [
        getattr(torch.optim, kind)(model_a.parameters(), lr=lr),
        getattr(paddle.optimizer, kind)(lr, parameters=model_b.parameters()),
    ]


def _hot(model_a: Any, model_b: Any) -> None:
    """The first weight of both models times 1000 (the same values on both sides)."""
    import torch

    from padiff_ir.pairing import assign_weight

    with torch.no_grad():
        first = next(p for p in model_a.parameters() if p.dim() > 1)
        first.mul_(1000.0)
    assign_weight(model_b, model_a)


# 16-bit cases: ``half:NAME:MODE``, MODE one of torch-bf16 / torch-fp16 (a port of the zoo's
# float32 torch model in that dtype), amp-bf16 (both models in bfloat16) and paddle-bf16 /
# paddle-fp16 (the zoo's paddle port in that dtype against the float32 torch model)
HALF_MODES = ("torch-bf16", "torch-fp16", "amp-bf16", "paddle-bf16", "paddle-fp16")
HALF_BUGS = {  # (module scaled x1.5, norm given epsilon 0.1) in the torch model
    "mlp": ("fc2", ""),
    "cnn": ("conv2", "bn2"),
    "vit": ("blocks.1.mlp.fc1", "blocks.1.norm1"),
    "vitpose": ("backbone.blocks.1.mlp.fc1", "backbone.blocks.1.norm1"),
    "bert": ("encoder.layer.1.intermediate.dense", "encoder.layer.1.attention.output.LayerNorm"),
    "llama": ("model.layers.1.mlp.up_proj", "model.layers.1.input_layernorm"),
}


def _half_pair(name: str, mode: str, bug: str = "") -> tuple[Any, Any, Any]:
    """Model A, model B and the inputs of one 16-bit case, ``bug`` (``scaled weight`` or
    ``epsilon``) injected into B."""
    import copy

    import torch

    from padiff_ir.zoo import get_pair

    pair = get_pair(name)
    dtype = torch.bfloat16 if mode.endswith("bf16") else torch.float16
    model_a = pair.torch_model.eval()
    if mode.startswith("paddle"):
        model_b = pair.paddle_model
        model_b.to(dtype="bfloat16" if dtype is torch.bfloat16 else "float16")
        return model_a, model_b, pair.inputs
    if mode.startswith("amp"):
        model_a = copy.deepcopy(model_a).to(dtype)
    model_b = copy.deepcopy(model_a).to(dtype)
    scaled, norm = HALF_BUGS[name]
    modules = dict(model_b.named_modules())
    with torch.no_grad():
        if bug == "scaled weight":
            modules[scaled].weight.mul_(1.5)
        elif bug == "epsilon":
            modules[norm].eps = 0.1
    return model_a, model_b, pair.inputs


def half_case(name: str, mode: str) -> dict[str, Any]:
    """A 16-bit pair aligned under the fixed tolerance and ``auto``, then each injected bug
    under ``auto`` (top-1: the injected module named first)."""
    out: dict[str, Any] = {"case": f"half:{name}:{mode}", **_half_judged(*_half_pair(name, mode))}
    scaled, norm = HALF_BUGS[name]
    bugs = []
    for bug, site in (("scaled weight", scaled), ("epsilon", norm)):
        if not site or mode.startswith("paddle"):
            continue
        judged = _half_judged(*_half_pair(name, mode, bug), fixed=False, site=site)["auto"]
        culprits = judged.get("culprits", [])
        top1 = bool(culprits) and culprits[0][0] == site
        bugs.append({"bug": bug, "site": [site, site], "effect": True, "top1": top1, **judged})
    out["half_bugs"] = bugs
    return out


def _half_judged(
    model_a: Any, model_b: Any, inputs: Any, fixed: bool = True, site: str = ""
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    fixed_bounds = {"atol": 1e-5, "rtol": 1e-5}  # explicit bounds: fixed, whatever the default
    for label, options in (("fixed", fixed_bounds), ("auto", {"tolerance": "auto"})):
        if label == "fixed" and not fixed:
            continue
        try:
            out[label] = _judged(model_a, model_b, inputs, site=site, **options)
        except Exception as err:
            out[label] = {"error": _error(err)}
    return out


def cost_case(name: str) -> dict[str, Any]:
    """The shadow's cost alone (``cost:zoo/NAME`` or ``cost:NAME`` of the ports corpus)."""
    if name.startswith("zoo/"):
        from padiff_ir.zoo import get_pair

        pair = get_pair(name[4:])
    else:
        pair = _converted(_port_row(name))
    return {"case": f"cost:{name}", "cost": shadow_cost(pair.torch_model, pair.inputs)}


def run_case(case: str) -> dict[str, Any]:
    kind, _, name = case.partition(":")
    if kind == "cost":
        return cost_case(name)
    if kind == "zoo":
        return zoo_case(name)
    if kind == "port":
        return port_case(name)
    if kind == "hot":
        return hot_case(name)
    if kind == "bugs":
        return bugs_case(name)
    if kind == "autodiff":
        return auto_diff_case(name)
    if kind == "half":
        return half_case(*name.split(":"))
    if kind.startswith("autodiff-"):
        from benchmarks import _noise_autodiff

        run = {
            "autodiff-paddle": _noise_autodiff.paddle_a_case,
            "autodiff-16": _noise_autodiff.sixteen_bit_case,
            "autodiff-cost": _noise_autodiff.cost_case,
        }[kind]
        return run(name)
    return epsilon_case()


# --- the run and the tables ----------------------------------------------------------------


def cases(quick: bool, families: tuple[str, ...]) -> list[str]:
    from benchmarks.bench_ports import corpus

    ports = [r for r in corpus(families) if not (quick and r.slow)]
    names = [r.name.split("/")[-1] for r in ports]
    return [
        *(f"zoo:{n}" for n in ZOO),
        *(f"port:{n}" for n in names),
        "hot:resnet50",
        *(f"bugs:{n}" for n in names),
        "epsilon",
    ]


def half_cases() -> list[str]:
    """The 16-bit cases (``--output noise_half --cases`` them: results/noise_half.json)."""
    return [f"half:{n}:{m}" for n in HALF_BUGS if n != "vitpose" for m in HALF_MODES]


def tables(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| pair | fixed atol | auto | auto's words | fwd64 / fwd32 | cast (s) | auto's runs: "
        "shadow / A |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if "fixed" not in row or row.get("case") == "epsilon" or row["case"].startswith("half:"):
            continue
        fixed, auto, cost = row["fixed"], row["auto"], row.get("cost", {})
        words = auto.get("sentence") or auto.get("note") or auto.get("error", "")
        runs = auto.get("noise_seconds", {})
        # A's hooked run: the measurement's own, or (since it reuses match's) match's eager
        # stage, which runs A and B
        hooked = f"{runs['shadow'] / runs['reference']:.2f}" if runs.get("reference") else "-"
        if not runs.get("reference") and runs.get("shadow") and auto.get("eager_seconds"):
            hooked = f"{runs['shadow'] / auto['eager_seconds']:.2f} (of A and B)"
        forward = f"{cost['float64_s'] / cost['float32_s']:.2f}" if cost.get("float32_s") else "-"
        lines.append(
            f"| {row['case']} | {_verdict(fixed)} | {_verdict(auto)} | {words[:90]} "
            f"| {forward} | {cost.get('cast_s', '-')} | {hooked} |"
        )
    lines += ["", "| model A | float32 forward (s) | float64 forward (s) | ratio | cast (s) |"]
    lines += ["|---|---|---|---|---|"]
    for row in rows:
        if row.get("case", "").startswith("cost:") and "float32_s" in row.get("cost", {}):
            cost = row["cost"]
            lines.append(
                f"| {row['case'][5:]} | {cost['float32_s']} | {cost['float64_s']} "
                f"| {cost['float64_s'] / cost['float32_s']:.2f} | {cost['cast_s']} |"
            )
    lines += ["", "| pair | bugs top-1 under auto | missed |", "|---|---|---|"]
    for row in rows:
        if "bugs" not in row or row["case"].startswith("autodiff"):
            continue
        bugs = [b for b in row["bugs"] if b.get("effect")]
        missed = _missed(bugs)
        top1 = sum(b.get("top1", False) for b in bugs)
        lines.append(
            f"| {row['case'].split(':')[1]} | {top1}/{len(bugs)} | {', '.join(missed) or '-'} |"
        )
    from benchmarks._noise_autodiff import tables as auto_diff_tables

    return "\n".join(lines + _auto_diff_table(rows) + auto_diff_tables(rows) + _half_table(rows))


def _missed(bugs: list[dict[str, Any]]) -> list[str]:
    """The bugs not named top-1, each with the module named first instead."""
    return [
        f"{b['bug']} ({(b.get('culprits') or [['none']])[0][0]})" for b in bugs if not b.get("top1")
    ]


def _ratios(bug: dict[str, Any]) -> str:
    """The injected module's outputs' error over their noise bound (and its own's)."""
    ratios = bug.get("site_ratios") or [None, None]
    words = [f"{r:.2f}x" if isinstance(r, (int, float)) else "-" for r in ratios]
    return f"the site: outputs {words[0]}, own {words[1]}"


def _half_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "",
        "| 16-bit pair | path | fixed atol | auto | auto's words | bugs top-1 under auto | "
        "missed |",
        "|---|---|---|---|---|---|---|",
    ]
    half = [r for r in rows if r.get("case", "").startswith("half:") and "auto" in r]
    order = [f"half:{n}:{m}" for n in HALF_BUGS for m in HALF_MODES]
    for row in sorted(half, key=lambda r: order.index(r["case"]) if r["case"] in order else 99):
        fixed, auto = row["fixed"], row["auto"]
        words = auto.get("sentence") or auto.get("note") or auto.get("error", "")
        bugs = row.get("half_bugs", [])
        top1 = f"{sum(b['top1'] for b in bugs)}/{len(bugs)}" if bugs else "-"
        missed = [
            f"{m} at {_ratios(b)}"
            for m, b in zip(_missed(bugs), (b for b in bugs if not b["top1"]))
        ]
        lines.append(
            f"| {row['case'][5:]} | {auto.get('path', '-')} | {_verdict(fixed)} | "
            f"{_verdict(auto)} | {words[:110]} | {top1} | {', '.join(missed) or '-'} |"
        )
    return lines


def _auto_diff_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "",
        "| auto_diff on zoo pair | aligned: tight fixed / auto | x1000 weights: tight fixed / "
        "auto | 3 steps SGD / Adam, auto | bugs first under auto (inside the culprit) | "
        "single_step culprit top-1 under auto | missed |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if not row.get("case", "").startswith("autodiff:") or "aligned" not in row:
            continue
        cells = [
            " / ".join("ok" if row[k][t]["ok"] else "FAIL" for t in ("fixed", "auto"))
            for k in ("aligned", "hot")
        ]
        bugs = row["bugs"]
        missed = [
            f"{b['bug']} ({(b.get('first') or ['', 'none'])[1]})" for b in bugs if not b["top1"]
        ]
        inside = sum(b["top1"] or b.get("within", False) for b in bugs)
        single = sum(b.get("single_step_top1", False) for b in bugs)
        lines.append(
            f"| {row['case'][9:]} | {cells[0]} | {cells[1]} | {_steps(row)} | "
            f"{sum(b['top1'] for b in bugs)}/"
            f"{len(bugs)} ({inside}/{len(bugs)}) | {single}/{len(bugs)} | "
            f"{', '.join(missed) or '-'} |"
        )
    return lines


def _steps(row: dict[str, Any]) -> str:
    cells = []
    for kind in ("sgd", "adam"):
        judged = row.get(f"steps_{kind}", {})
        words = judged.get("sentence", "")
        worst = words.split("worst ")[1].split("x")[0] + "x" if "worst " in words else ""
        cells.append(("ok " + worst if judged.get("ok") else "FAIL").strip())
    return " / ".join(cells)


def _verdict(judged: dict[str, Any]) -> str:
    if "error" in judged:
        return "error"
    if judged["ok"] and not judged["culprits"]:
        return "aligned"
    return f"{'ALIGNED' if judged['ok'] else 'DIVERGED'}, {len(judged['culprits'])} culprits"


def _previous_rows(output: str) -> list[dict[str, Any]]:
    from benchmarks._common import RESULTS

    path = RESULTS / f"{output}.json"
    return json.loads(path.read_text())["rows"] if path.exists() else []


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="leave the slow port pairs out")
    parser.add_argument("--family", action="append", choices=("vision", "decoders"))
    parser.add_argument(
        "--cases", default="", help="comma-separated cases (zoo:mlp,...; half: the 16-bit ones)"
    )
    parser.add_argument("--case", default="", help="one case in this process")
    parser.add_argument(
        "--merge", action="store_true", help="replace these cases' rows in results/noise.json"
    )
    parser.add_argument("--output", default="noise", help="results/<output>.json")
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(args.case), default=str))
        return
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    chosen = [n for c in args.cases.split(",") if c for n in (half_cases() if c == "half" else [c])]
    chosen = chosen or cases(args.quick, tuple(args.family or ("vision", "decoders")))
    rows = []
    if args.merge:  # the rows of other cases kept, in their order
        rows = [r for r in _previous_rows(args.output) if r.get("case") not in chosen]
    for case in chosen:
        start = time.perf_counter()
        out = run_in_subprocess(__file__, case)
        out.setdefault("case", case)
        logger.info("%s (%.0f s): %s", case, time.perf_counter() - start, json.dumps(out)[:1500])
        rows.append(out)
        path = write_results(args.output, rows)  # after each case: a long run keeps what it has
    logger.info("wrote %s", path)
    print(tables(rows))


if __name__ == "__main__":
    main()
