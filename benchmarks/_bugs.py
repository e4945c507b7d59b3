"""Injected porting bugs for the localisation benchmark, as a table.

Each :class:`Bug` changes one thing of the paddle half (model B) of a pair: an attribute, an op
missing or added, an activation, a transposed or permuted weight, a constant, an axis, a
dropout or normalisation convention, a shared layer's call, a fused-layout slip. ``culprit`` is
the module pair a perfect localiser names (A's call site, B's). The bugs are made from a few
small factories (:func:`scale`, :func:`permute`, :func:`setattr_`, :func:`replace`,
:func:`swap_class`), so adding a kind is one row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["BUGS", "COMBINATIONS", "Bug", "sublayer"]

Apply = Callable[[Any], None]


@dataclass(frozen=True)
class Bug:
    """One injected bug: its kind, the pair it goes in, what it does, who is to blame."""

    name: str
    kind: str
    arch: str
    apply: Apply
    culprit: tuple[str, str]


def sublayer(model: Any, path: str) -> Any:
    """The sublayer at ``path`` of a paddle model."""
    return dict(model.named_sublayers())[path] if path else model


def scale(path: str, name: str, factor: float, offset: float = 0.0) -> Apply:
    """Parameter ``name`` of ``path`` times ``factor`` plus ``offset`` (a wrong constant)."""

    def apply(model: Any) -> None:
        tensor = getattr(sublayer(model, path), name)
        tensor.set_value((tensor.numpy() * factor + offset).astype(tensor.numpy().dtype))

    return apply


def permute(path: str, name: str, axis: int, how: str = "reverse") -> Apply:
    """Parameter ``name`` of ``path`` permuted along ``axis``: reversed, transposed (square
    2-d only), or its three fused thirds rotated (``qkv`` read as ``kvq``)."""

    def apply(model: Any) -> None:
        tensor = getattr(sublayer(model, path), name)
        value = tensor.numpy()
        if how == "transpose":
            value = value.T.copy()
        elif how == "thirds":
            value = np.concatenate(np.split(value, 3, axis=axis)[::-1], axis=axis)
        else:
            value = np.flip(value, axis=axis).copy()
        tensor.set_value(value)

    return apply


def setattr_(path: str, **values: Any) -> Apply:
    """Attributes of the sublayer at ``path`` set (an epsilon, a ceil_mode, a dropout mode)."""

    def apply(model: Any) -> None:
        layer = sublayer(model, path)
        for key, value in values.items():
            setattr(layer, key, value)

    return apply


def replace(path: str, factory: Callable[[], Any]) -> Apply:
    """The sublayer at ``path`` replaced by ``factory()`` (a wrong activation, a wrong op)."""

    def apply(model: Any) -> None:
        parent_path, _, name = path.rpartition(".")
        setattr(sublayer(model, parent_path), name, factory())

    return apply


def swap_class(path: str, cls_name: str) -> Apply:
    """The sublayer at ``path`` given a class of ``tests/compare/bugs.py`` (its forward
    changed: an axis, a missing residual, an extra scale); weights untouched."""

    def apply(model: Any) -> None:
        from tests.compare import bugs

        sublayer(model, path).__class__ = getattr(bugs, cls_name)

    return apply


def _paddle() -> Any:
    import paddle

    return paddle


def _row(name: str, kind: str, arch: str, apply: Apply, a: str, b: str | None = None) -> Bug:
    return Bug(name, kind, arch, apply, (a, a if b is None else b))


def _nn(name: str, *args: Any, **kwargs: Any) -> Callable[[], Any]:
    return lambda: getattr(_paddle().nn, name)(*args, **kwargs)


BUGS: tuple[Bug, ...] = (
    # mlp
    _row("mlp-relu-as-gelu", "wrong activation", "mlp", replace("act1", _nn("GELU")), "act1"),
    _row(
        "mlp-relu-as-leaky", "wrong constant", "mlp", replace("act2", _nn("LeakyReLU", 0.2)), "act2"
    ),
    _row(
        "mlp-fc2-transposed",
        "transposed weight",
        "mlp",
        permute("fc2", "weight", 0, "transpose"),
        "fc2",
    ),
    _row("mlp-fc1-bias-zero", "weight not copied", "mlp", scale("fc1", "bias", 0.0), "fc1"),
    _row("mlp-fc3-scaled", "wrong constant", "mlp", scale("fc3", "weight", 1.1), "fc3"),
    # cnn
    _row("cnn-bn-epsilon", "norm epsilon", "cnn", setattr_("bn1", _epsilon=1e-1), "bn1"),
    _row(
        "cnn-bn-variance",
        "norm convention (biased variance)",
        "cnn",
        scale("bn2", "_variance", 1.5),
        "bn2",
    ),
    _row(
        "cnn-conv-padding",
        "attribute (padding)",
        "cnn",
        setattr_("conv2", _padding=[2, 2], _updated_padding=[2, 2]),
        "conv2",
    ),
    _row(
        "cnn-conv-channels-permuted",
        "permuted weight",
        "cnn",
        permute("conv1", "weight", 0),
        "conv1",
    ),
    _row(
        "cnn-conv-kernel-flipped", "permuted weight", "cnn", permute("conv2", "weight", 2), "conv2"
    ),
    _row("cnn-maxpool-as-avgpool", "wrong op", "cnn", replace("pool", _nn("AvgPool2D", 2)), "pool"),
    _row("cnn-relu-as-elu", "wrong activation", "cnn", replace("relu2", _nn("ELU")), "relu2"),
    _row(
        "cnn-avgpool-as-maxpool",
        "wrong op",
        "cnn",
        replace("avgpool", _nn("AdaptiveMaxPool2D", 1)),
        "avgpool",
    ),
    _row("cnn-fc-zero", "weight not copied", "cnn", scale("fc", "weight", 0.0), "fc"),
    _row(
        "cnn-bn-mean-offset",
        "norm convention (running mean)",
        "cnn",
        scale("bn1", "_mean", 1.0, 0.5),
        "bn1",
    ),
    # vit
    _row(
        "vit-layernorm-epsilon",
        "norm epsilon",
        "vit",
        setattr_("blocks.1.norm1", _epsilon=1e-3),
        "blocks.1.norm1",
    ),
    _row(
        "vit-softmax-axis",
        "wrong axis",
        "vit",
        swap_class("blocks.0.attn", "WrongSoftmaxAttention"),
        "blocks.0.attn",
    ),
    _row(
        "vit-attention-scale",
        "wrong constant",
        "vit",
        swap_class("blocks.1.attn", "ExtraScaleAttention"),
        "blocks.1.attn",
    ),
    _row(
        "vit-missing-residual",
        "missing op",
        "vit",
        swap_class("blocks.1", "NoResidualBlock"),
        "blocks.1",
    ),
    _row(
        "vit-gelu-tanh",
        "GELU approximation",
        "vit",
        replace("blocks.0.mlp.act", _nn("GELU", approximate=True)),
        "blocks.0.mlp.act",
    ),
    _row(
        "vit-qkv-thirds-rotated",
        "fused-layout slip",
        "vit",
        permute("blocks.0.attn.qkv", "weight", 1, "thirds"),
        "blocks.0.attn.qkv",
    ),
    _row(
        "vit-proj-bias",
        "wrong constant",
        "vit",
        scale("blocks.1.attn.proj", "bias", 1.0, 0.1),
        "blocks.1.attn.proj",
    ),
    _row("vit-norm-gamma", "weight not copied", "vit", scale("norm", "weight", 0.5), "norm"),
    _row(
        "vit-patch-kernel-flipped",
        "permuted weight",
        "vit",
        permute("patch_embed.proj", "weight", 3),
        "patch_embed.proj",
    ),
    _row(
        "vit-fc1-transposed-rows",
        "permuted weight",
        "vit",
        permute("blocks.1.mlp.fc1", "weight", 0),
        "blocks.1.mlp.fc1",
    ),
    _row("vit-head-scaled", "wrong constant", "vit", scale("head", "weight", 2.0), "head"),
    # vitpose
    _row(
        "vitpose-last-norm-epsilon",
        "norm epsilon",
        "vitpose",
        setattr_("backbone.last_norm", _epsilon=1e-3),
        "backbone.last_norm",
    ),
    _row(
        "vitpose-deconv-bn-epsilon",
        "norm epsilon",
        "vitpose",
        setattr_("head.deconv_layers.1", _epsilon=1e-1),
        "head.deconv_layers.1",
    ),
    _row(
        "vitpose-final-bias",
        "wrong constant",
        "vitpose",
        scale("head.final_layer", "bias", 1.0, 0.1),
        "head.final_layer",
    ),
    _row(
        "vitpose-relu-as-sigmoid",
        "wrong activation",
        "vitpose",
        replace("head.deconv_layers.2", _nn("Sigmoid")),
        "head.deconv_layers.2",
    ),
    _row(
        "vitpose-fc2-scaled",
        "wrong constant",
        "vitpose",
        scale("backbone.blocks.0.mlp.fc2", "weight", 1.2),
        "backbone.blocks.0.mlp.fc2",
    ),
    # bert
    _row(
        "bert-embedding-layernorm-epsilon",
        "norm epsilon",
        "bert",
        setattr_("embeddings.LayerNorm", _epsilon=1e-3),
        "embeddings.LayerNorm",
    ),
    _row(
        "bert-intermediate-gelu-as-relu",
        "wrong activation",
        "bert",
        replace("encoder.layer.0.intermediate.act", _nn("ReLU")),
        "encoder.layer.0.intermediate.act",
    ),
    _row(
        "bert-pooler-tanh-as-sigmoid",
        "wrong activation",
        "bert",
        replace("pooler.activation", _nn("Sigmoid")),
        "pooler.activation",
    ),
    _row(
        "bert-word-embedding-rows",
        "permuted weight",
        "bert",
        permute("embeddings.word_embeddings", "weight", 0),
        "embeddings.word_embeddings",
    ),
    _row(
        "bert-query-scaled",
        "wrong constant",
        "bert",
        scale("encoder.layer.1.attention.self.query", "weight", 1.5),
        "encoder.layer.1.attention.self.query",
    ),
    _row(
        "bert-output-dense-transposed",
        "transposed weight",
        "bert",
        permute("encoder.layer.0.attention.output.dense", "weight", 0, "transpose"),
        "encoder.layer.0.attention.output.dense",
    ),
    # issue 11's pair (tests/compare/call_site_pairs.py): a shared layer and a dropout
    _row(
        "shared-pool-call-ceil-mode",
        "shared-layer call",
        "shared-pool",
        setattr_("pool2", ceil_mode=True),
        "pool#2",
        "pool2",
    ),
    _row(
        "shared-pool-dropout-mode",
        "dropout convention",
        "shared-pool",
        setattr_("drop", mode="downscale_in_infer"),
        "drop",
    ),
)
"""Every bug kind, one per row."""

_BY_NAME = {bug.name: bug for bug in BUGS}

COMBINATIONS: tuple[tuple[str, ...], ...] = (
    ("mlp-relu-as-gelu", "mlp-fc3-scaled"),
    ("cnn-bn-epsilon", "cnn-relu-as-elu", "cnn-fc-zero"),
    ("cnn-conv-channels-permuted", "cnn-avgpool-as-maxpool"),
    ("vit-softmax-axis", "vit-layernorm-epsilon"),
    ("vit-qkv-thirds-rotated", "vit-fc1-transposed-rows", "vit-head-scaled"),
    ("vitpose-last-norm-epsilon", "vitpose-final-bias"),
    ("bert-embedding-layernorm-epsilon", "bert-pooler-tanh-as-sigmoid"),
    ("bert-intermediate-gelu-as-relu", "bert-query-scaled", "bert-output-dense-transposed"),
    ("shared-pool-call-ceil-mode", "shared-pool-dropout-mode"),
)
"""Several bugs in one model at once (2-3, independent modules), by name."""


def combination(names: tuple[str, ...]) -> list[Bug]:
    """The bugs of one combination."""
    return [_BY_NAME[name] for name in names]
