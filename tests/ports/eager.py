"""Both halves of a built pair run eagerly, with hooks: the ground truth's own check.

Independent of padiff-ir: plain torch forward hooks and paddle forward post-hooks record each
mapped module's output, call by call (``pool#2`` is the second call of ``pool``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tests.ports import BuiltPair

__all__ = ["first_array", "module_outputs", "outputs"]


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


def outputs(pair: BuiltPair) -> tuple[np.ndarray, np.ndarray]:
    """The two models' outputs on the pair's inputs (eval mode)."""
    a, b = module_outputs(pair, {})
    return a[""], b[""]


def module_outputs(
    pair: BuiltPair, modules: dict[str, str] | None = None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Outputs of every module of ``modules`` (default: the pair's map) on both sides, keyed by
    the path as written there (call sites included); ``""`` is the model's output."""
    import paddle
    import torch

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
        with torch.no_grad():
            out_a = pair.torch_model(*[torch.from_numpy(x) for x in pair.inputs])
        out_b = pair.paddle_model(*[paddle.to_tensor(x) for x in pair.inputs])
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
