"""A decoder block stack in torch and paddle, unsharded and tensor-parallel (column/row-parallel
Linears written with each framework's own collectives), all loading one set of logical weights.

Paths are the same in all four: ``layers.{i}.norm1``, ``layers.{i}.attn.{q,k,v,o}``,
``layers.{i}.norm2``, ``layers.{i}.mlp.{up,act,down}``, ``norm``, ``head``. Injected parallel
bugs (``BUGS``): ``wrong_axis`` (``layers.0.attn.q``'s shard taken on the input axis of its
square weight and transposed into place, as a converter confusing [in, out] with [out, in]
does), ``no_allreduce`` (``layers.1.mlp.down`` leaves out its all-reduce), ``gather_dim``
(``head`` gathers on the sequence axis). Backward-only bugs (``BACKWARD_BUGS``, forward is
right): ``scale_grad`` (``layers.0.mlp.down``'s backward scales its output's gradient by the
tensor-parallel size), ``no_grad_allreduce`` (a data-parallel run leaves
``layers.0.mlp.up``'s parameter gradients out of the gradient all-reduce).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

BUGS = {"wrong_axis": "layers.0.attn.q", "no_allreduce": "layers.1.mlp.down", "gather_dim": "head"}
BACKWARD_BUGS = {"scale_grad": "layers.0.mlp.down", "no_grad_allreduce": "layers.0.mlp.up"}


@dataclass(frozen=True)
class Config:
    hidden: int = 32
    heads: int = 4
    ffn: int = 64
    layers: int = 2
    vocab: int = 16
    batch: int = 4
    seq: int = 8


def config_from(text: str) -> Config:
    """A :class:`Config` with ``name=value,...`` overrides."""
    fields = dict(item.split("=") for item in text.split(",") if item)
    return Config(**{k: int(v) for k, v in fields.items()})


def master_weights(cfg: Config, seed: int = 0) -> dict[str, np.ndarray]:
    """Logical weights, torch layout ([out, in] for Linear)."""
    rng = np.random.default_rng(seed)
    w: dict[str, np.ndarray] = {}

    def lin(name: str, n_in: int, n_out: int) -> None:
        w[f"{name}.weight"] = (rng.standard_normal((n_out, n_in)) / math.sqrt(n_in)).astype("f4")
        w[f"{name}.bias"] = (0.1 * rng.standard_normal(n_out)).astype("f4")

    def norm(name: str) -> None:
        w[f"{name}.weight"] = (1 + 0.1 * rng.standard_normal(cfg.hidden)).astype("f4")
        w[f"{name}.bias"] = (0.1 * rng.standard_normal(cfg.hidden)).astype("f4")

    for i in range(cfg.layers):
        norm(f"layers.{i}.norm1")
        for p in "qkvo":
            lin(f"layers.{i}.attn.{p}", cfg.hidden, cfg.hidden)
        norm(f"layers.{i}.norm2")
        lin(f"layers.{i}.mlp.up", cfg.hidden, cfg.ffn)
        lin(f"layers.{i}.mlp.down", cfg.ffn, cfg.hidden)
    norm("norm")
    lin("head", cfg.hidden, cfg.vocab)
    return w


def batch(cfg: Config, step: int) -> np.ndarray:
    return (
        np.random.default_rng(100 + step)
        .standard_normal((cfg.batch, cfg.seq, cfg.hidden))
        .astype("f4")
    )


def shard_of(
    name: str, full: np.ndarray, style: str, rank: int, world: int, bug: str
) -> np.ndarray:
    """This rank's block of a logical weight (torch layout)."""
    if style == "column":
        if bug == "wrong_axis" and name.startswith(BUGS["wrong_axis"]) and full.ndim == 2:
            return np.ascontiguousarray(np.split(full, world, axis=1)[rank].T)
        return np.split(full, world, axis=0)[rank]
    if style == "row" and full.ndim == 2:
        return np.split(full, world, axis=1)[rank]
    return full


def style_of(path: str) -> str:
    leaf = path.rsplit(".", 1)[-1]
    if leaf in ("q", "k", "v", "up", "head"):
        return "column"
    if leaf in ("o", "down"):
        return "row"
    return ""
