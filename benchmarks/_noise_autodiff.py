"""``bench_noise``'s ``auto_diff`` cases beyond a float32 torch A (issue 22, gaps closed):

* ``autodiff-paddle:NAME``: the zoo pair with the paddle model as A (its optimizer copied by
  ``cast_copy_trained``): aligned through 3 steps of SGD, Momentum, Adam and AdamW (floors for
  post-step weights and optimizer states counted), then each injected bug of
  ``benchmarks/_bugs.py`` for the pair, put in A (the culprit named by A's, paddle's, path);
* ``autodiff-16:NAME``: 16-bit models under ``tolerance="auto"``, no tolerance given: torch
  float32 A against its bfloat16 copy (2 Adam steps) and its float16 copy (2 SGD steps), the
  paddle float32 model against the torch bfloat16 one (paddle has no 16-bit CPU kernels: B's
  own rounding is the noise), two bfloat16 copies; then each with a bug injected in B;
* ``autodiff-cost:NAME``: seconds of one SGD step under ``auto_diff`` with a fixed tolerance,
  under ``tolerance="auto"``, and of PaDiff 0.2.0's ``auto_diff`` on the same pair, each
  call copying A's weights into B first (the least CPU time of 15 calls each, alternated: CPU
  time, all threads, depends less on the shared machine's load than wall time, kept too; the
  ratio auto / fixed is the measurement's cost).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from typing import Any

__all__ = ["TORCH_BUGS", "cost_case", "paddle_a_case", "sixteen_bit_case", "tables"]

_FIXED = {"atol": 0.0, "rtol": 1e-7, "compare_mode": "mean"}  # PaDiff's, given explicitly

#: zoo pair -> (module, how) of a bug put in a torch model B (a wrong activation)
TORCH_BUGS: dict[str, tuple[str, Any]] = {
    "mlp": ("act1", lambda m: setattr(m, "act1", _nn("ELU"))),
    "cnn": ("relu2", lambda m: setattr(m, "relu2", _nn("ELU"))),
    "vit": ("blocks.0.mlp.act", lambda m: setattr(m.blocks[0].mlp, "act", _nn("ReLU"))),
}


def _nn(name: str) -> Any:
    import torch

    return getattr(torch.nn, name)()


def _judged(model_a: Any, model_b: Any, inputs: Any, **options: Any) -> dict[str, Any]:
    from padiff_ir.native import auto_diff

    start = time.perf_counter()
    try:
        result = auto_diff(model_a, model_b, inputs, tolerance="auto", **options)
    except Exception as err:
        return {"ok": False, "error": f"{type(err).__name__}: {str(err)[:300]}", "first": None}
    first = result.first_difference
    noise = result.noise
    return {
        "ok": result.ok,
        "first": [first.stage, first.step, first.module_a or first.name_a] if first else None,
        "sentence": noise.sentence if noise else "",
        "method": noise.method if noise else "",
        "dtype": noise.dtype if noise else "",
        "stages": sorted({e.stage for e in noise.entries}) if noise else [],
        "notes": [n for n in result.notes if "tolerance='auto'" in n],
        "seconds": round(time.perf_counter() - start, 3),
    }


def _paddle_optimizers(kind: str, model_a: Any, model_b: Any) -> list[Any]:
    import paddle
    import torch

    lr = 0.01 if kind in ("SGD", "Momentum") else 0.001
    torch_kinds = {
        "SGD": lambda p: torch.optim.SGD(p, lr=lr),
        "Momentum": lambda p: torch.optim.SGD(p, lr=lr, momentum=0.9),
        "Adam": lambda p: torch.optim.Adam(p, lr=lr),
        "AdamW": lambda p: torch.optim.AdamW(p, lr=lr, weight_decay=0.01),
    }
    paddle_opt = getattr(paddle.optimizer, kind)(lr, parameters=model_a.parameters())
    return [paddle_opt, torch_kinds[kind](model_b.parameters())]


def paddle_a_case(name: str) -> dict[str, Any]:
    from benchmarks._bugs import BUGS
    from padiff_ir.zoo import get_pair

    out: dict[str, Any] = {"case": f"autodiff-paddle:{name}"}
    for kind in ("SGD", "Momentum", "Adam", "AdamW"):
        pair = get_pair(name, "tiny")
        optimizer = _paddle_optimizers(kind, pair.paddle_model, pair.torch_model)
        out[kind.lower()] = _judged(
            pair.paddle_model, pair.torch_model, pair.inputs, optimizer=optimizer, steps=3
        )
    bugs = []
    for bug in (b for b in BUGS if b.arch == name):
        pair = get_pair(name, "tiny")
        bug.apply(pair.paddle_model)
        judged = _judged(pair.paddle_model, pair.torch_model, pair.inputs, auto_init=False)
        first = judged.get("first")
        bugs.append({"bug": bug.name, "top1": bool(first) and first[2] == bug.culprit[1], **judged})
    out["bugs"] = bugs
    return out


def torch_in(name: str, dtype: str, bug: bool = False) -> Any:
    """The zoo pair's tiny torch model in ``dtype``, with the bug of :data:`TORCH_BUGS`."""
    import torch

    from padiff_ir.zoo import get_pair

    model = get_pair(name, "tiny").torch_model.to(getattr(torch, dtype))
    if bug:
        TORCH_BUGS[name][1](model)
    return model


def _sixteen_bit_pairs(name: str, bug: bool) -> dict[str, dict[str, Any]]:
    import torch

    from padiff_ir.zoo import get_pair

    pair = get_pair(name, "tiny")
    out = {}
    for label, dtype, kind in (("bf16_adam", "bfloat16", "Adam"), ("fp16_sgd", "float16", "SGD")):
        model_a, model_b = get_pair(name, "tiny").torch_model, torch_in(name, dtype, bug)
        optimizer = [
            getattr(torch.optim, kind)(m.parameters(), lr=1e-3) for m in (model_a, model_b)
        ]
        out[f"torch32_vs_{label}"] = _judged(
            model_a, model_b, pair.inputs, optimizer=optimizer, steps=2, auto_init=False
        )
    out["paddle32_vs_torch_bf16"] = _judged(
        get_pair(name, "tiny").paddle_model,
        torch_in(name, "bfloat16", bug),
        pair.inputs,
        auto_init=False,
    )
    out["both_bf16"] = _judged(
        torch_in(name, "bfloat16"), torch_in(name, "bfloat16", bug), pair.inputs, auto_init=False
    )
    return out


def sixteen_bit_case(name: str) -> dict[str, Any]:
    return {
        "case": f"autodiff-16:{name}",
        "culprit": TORCH_BUGS[name][0],
        "aligned": _sixteen_bit_pairs(name, False),
        "bug": _sixteen_bit_pairs(name, True),
    }


def _padiff_020(pair: Any, optimizers: list[Any]) -> bool:
    """PaDiff 0.2.0's ``auto_diff`` on ``pair``, one step (paddle first, as it takes them)."""
    import paddle
    import torch

    inputs = pair.inputs
    paddle_inputs = {k: paddle.to_tensor(v) for k, v in inputs.items()}
    torch_inputs = {k: torch.from_numpy(v) for k, v in inputs.items()}
    options = {"atol": 0.0, "rtol": 1e-7, "compare_mode": "mean", "diff_phase": "both"}
    import padiff.utils
    from padiff import auto_diff  # sets print options: this case runs in its own process

    # PaDiff writes its logs into diff_log/ beside the script (``sys.path[0]``): a folder of
    # its own here, removed after
    with tempfile.TemporaryDirectory() as folder:
        padiff.utils.diff_log_path = os.path.join(folder, "diff_log")
        return bool(
            auto_diff(
                pair.paddle_model,
                pair.torch_model,
                (paddle_inputs, torch_inputs),
                auto_weights=True,
                options=options,
                optimizer=[optimizers[1], optimizers[0]],
                steps=1,
            )
        )


def cost_case(name: str, repeat: int = 15) -> dict[str, Any]:
    import paddle
    import torch

    from padiff_ir.native import auto_diff
    from padiff_ir.zoo import get_pair

    pair = get_pair(name, "tiny")
    optimizers = [
        torch.optim.SGD(pair.torch_model.parameters(), lr=0.01),
        paddle.optimizer.SGD(0.01, parameters=pair.paddle_model.parameters()),
    ]
    model_a, model_b = pair.torch_model, pair.paddle_model
    runners = {
        "fixed": lambda: bool(
            auto_diff(model_a, model_b, pair.inputs, optimizer=optimizers, **_FIXED)
        ),
        "auto": lambda: bool(
            auto_diff(
                model_a,
                model_b,
                pair.inputs,
                optimizer=optimizers,
                tolerance="auto",
            )
        ),
        "padiff_020": lambda: _padiff_020(pair, optimizers),
    }
    times: dict[str, list[float]] = {k: [] for k in runners}
    cpu: dict[str, list[float]] = {k: [] for k in runners}
    verdicts: dict[str, Any] = {}
    for run in runners.values():  # warm-up: matching, lazy framework set-up
        run()
    for _ in range(repeat):
        for key, run in runners.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            try:
                verdicts[key] = run()
            except Exception as err:
                verdicts[key] = f"{type(err).__name__}: {str(err)[:200]}"
            times[key].append(time.perf_counter() - start)
            cpu[key].append(time.process_time() - start_cpu)
    # the least CPU time of the calls: the cost without the other processes' load
    seconds = {k: round(min(v), 4) for k, v in cpu.items()}
    return {
        "case": f"autodiff-cost:{name}",
        "seconds": seconds,
        "wall_seconds": {k: round(min(v), 4) for k, v in times.items()},
        "median_wall_seconds": {k: round(statistics.median(v), 4) for k, v in times.items()},
        "verdicts": verdicts,
        "auto_over_fixed": round(seconds["auto"] / seconds["fixed"], 2),
        "auto_over_padiff": round(seconds["auto"] / seconds["padiff_020"], 2),
    }


def _cell(judged: dict[str, Any]) -> str:
    if "error" in judged:
        return "error"
    if judged["ok"]:
        return "ok"
    first = judged.get("first") or ["", "", "?"]
    return f"FAIL ({first[2]})"


def tables(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "",
        "| paddle A (zoo pair) | 3 steps SGD / Momentum / Adam / AdamW | weights and "
        "states floored | bugs in A named first | missed |",
        "|---|---|---|---|---|",
    ]
    for row in (r for r in rows if r.get("case", "").startswith("autodiff-paddle:")):
        kinds = ("sgd", "momentum", "adam", "adamw")
        floored = all("weights" in row[k].get("stages", ()) for k in kinds) and all(
            "optimizer_state" in row[k].get("stages", ()) for k in kinds[1:]
        )
        top1 = sum(b["top1"] for b in row["bugs"])
        missed = [
            f"{b['bug']} ({(b.get('first') or ['', '', 'none'])[2]})"
            for b in row["bugs"]
            if not b["top1"]
        ]
        lines.append(
            f"| {row['case'][16:]} | {' / '.join(_cell(row[k]) for k in kinds)} | "
            f"{'yes' if floored else 'NO'} | {top1}/{len(row['bugs'])} | "
            f"{', '.join(missed) or '-'} |"
        )
    lines += [
        "",
        "| 16-bit (zoo pair) | pairing | aligned | bug in B: first | noise method |",
        "|---|---|---|---|---|",
    ]
    for row in (r for r in rows if r.get("case", "").startswith("autodiff-16:")):
        for key, judged in row["aligned"].items():
            bug = row["bug"][key]
            named = (
                "error"
                if "error" in bug
                else ("missed" if bug["ok"] else (bug.get("first") or ["", "", "?"])[2])
            )
            lines.append(
                f"| {row['case'][12:]} | {key} | {_cell(judged)} | {named} "
                f"(injected: {row['culprit']}) | {judged.get('method', '')}, "
                f"{judged.get('dtype', '')} |"
            )
    lines += [
        "",
        "| one SGD step (zoo pair), CPU s, least of 15 | fixed | auto | PaDiff 0.2.0 | "
        "auto / fixed | auto / PaDiff |",
        "|---|---|---|---|---|---|",
    ]
    for row in (r for r in rows if r.get("case", "").startswith("autodiff-cost:")):
        s = row["seconds"]
        lines.append(
            f"| {row['case'][14:]} | {s['fixed']} | {s['auto']} | {s['padiff_020']} | "
            f"{row['auto_over_fixed']} | {row['auto_over_padiff']} |"
        )
    return lines
