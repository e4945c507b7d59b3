"""Both halves of a built pair run eagerly, with hooks: the ground truth's own check.

Independent of padiff-ir: plain torch forward hooks and paddle forward post-hooks record each
mapped module's output, call by call (``pool#2`` is the second call of ``pool``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tests.ports import BuiltPair

__all__ = ["call_counts", "first_array", "module_outputs", "outputs", "with_call_sites"]


def first_array(value: Any) -> np.ndarray | None:
    """The first tensor of a module's output, as numpy (a tuple's first, a dict's first)."""
    while isinstance(value, (tuple, list)) and value:
        value = value[0]
    if isinstance(value, dict) and value:
        value = next(iter(value.values()))
    if hasattr(value, "detach"):
        value = value.detach()
    if hasattr(value, "numpy"):
        return np.array(value.numpy(), copy=True)  # an in-place ReLU changes it later
    return None


def _call(path: str) -> tuple[str, int]:
    name, _, number = path.partition("#")
    return name, int(number) - 1 if number else 0


def run_both(pair: BuiltPair) -> tuple[Any, Any]:
    """One eval forward of each model on the pair's inputs: positional arrays, or keyword
    arrays (a decoder's ``input_ids``)."""
    import paddle
    import torch

    inputs = pair.inputs
    if isinstance(inputs, dict):
        with torch.no_grad():
            out_a = pair.torch_model(**{k: torch.from_numpy(v) for k, v in inputs.items()})
        return out_a, pair.paddle_model(**{k: paddle.to_tensor(v) for k, v in inputs.items()})
    with torch.no_grad():
        out_a = pair.torch_model(*[torch.from_numpy(x) for x in inputs])
    return out_a, pair.paddle_model(*[paddle.to_tensor(x) for x in inputs])


def outputs(pair: BuiltPair) -> tuple[np.ndarray, np.ndarray]:
    """The two models' outputs on the pair's inputs (eval mode)."""
    a, b = module_outputs(pair, {})
    return a[""], b[""]


def module_outputs(
    pair: BuiltPair, modules: dict[str, str] | None = None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Outputs of every module of ``modules`` (default: the pair's map) on both sides, keyed by
    the path as written there (call sites included); ``""`` is the model's output."""

    modules = pair.modules if modules is None else modules
    calls_a: dict[str, list[np.ndarray | None]] = {}
    calls_b: dict[str, list[np.ndarray | None]] = {}
    handles = []
    for path in {_call(p)[0] for p in modules}:
        if path:
            module = pair.torch_model.get_submodule(path)
            handles.append(
                module.register_forward_hook(
                    lambda _m, _i, out, p=path: calls_a.setdefault(p, []).append(first_array(out))
                )
            )
    layers = dict(pair.paddle_model.named_sublayers())
    for path in {_call(p)[0] for p in modules.values()}:
        if path:
            handles.append(
                layers[path].register_forward_post_hook(
                    lambda _m, _i, out, p=path: calls_b.setdefault(p, []).append(first_array(out))
                )
            )
    try:
        out_a, out_b = run_both(pair)
    finally:
        for handle in handles:
            handle.remove()
    result_a = {"": first_array(out_a)}
    result_b = {"": first_array(out_b)}
    for recorded, result, paths in (
        (calls_a, result_a, modules),
        (calls_b, result_b, modules.values()),
    ):
        for written in paths:
            name, index = _call(written)
            if name and index < len(recorded.get(name, [])):
                result[written] = recorded[name][index]
    return result_a, result_b  # type: ignore[return-value]


def call_counts(pair: BuiltPair) -> tuple[dict[str, int], dict[str, int]]:
    """How often each module of either side runs in one forward."""

    counts_a: dict[str, int] = {}
    counts_b: dict[str, int] = {}
    handles = [
        module.register_forward_hook(
            lambda *_a, p=path: counts_a.__setitem__(p, counts_a.get(p, 0) + 1)
        )
        for path, module in pair.torch_model.named_modules()
        if path
    ]
    handles += [
        layer.register_forward_post_hook(
            lambda *_a, p=path: counts_b.__setitem__(p, counts_b.get(p, 0) + 1)
        )
        for path, layer in pair.paddle_model.named_sublayers()
    ]
    try:
        run_both(pair)
    finally:
        for handle in handles:
            handle.remove()
    return counts_a, counts_b


def with_call_sites(pair: BuiltPair) -> dict[str, str]:
    """The pair's module map with a module run k > 1 times on both sides (a ReLU shared by a
    residual block) written as k pairs of calls, ``relu#1`` -> ``relu#1``..."""
    counts_a, counts_b = call_counts(pair)
    modules: dict[str, str] = {}
    for a, b in pair.modules.items():
        k = counts_a.get(a, 1)
        if "#" not in a and "#" not in b and k > 1 and counts_b.get(b) == k:
            modules |= {f"{a}#{i}": f"{b}#{i}" for i in range(1, k + 1)}
        else:
            modules[a] = b
    return modules
