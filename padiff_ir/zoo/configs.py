"""Size configurations of the paired model zoo.

Every architecture of the zoo has one frozen config dataclass; :data:`SIZES` maps an architecture
name to its named sizes (``"tiny"`` for tests, ``"base"`` for the real thing). A config holds the
numbers that *both* the torch and the paddle model are built from, including the static shapes
the forwards use for their reshapes (so exports are static), and the batch size of the example
inputs. It also declares those inputs through :meth:`input_specs`.

Nothing here imports torch or paddle.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, NamedTuple

from padiff_ir.errors import OptionError

__all__ = [
    "ArchitectureConfig",
    "BertConfig",
    "CnnConfig",
    "DESCRIPTIONS",
    "InputSpec",
    "LlamaConfig",
    "MlpConfig",
    "SIZES",
    "VitConfig",
    "VitPoseConfig",
]

logger = logging.getLogger(__name__)


class InputSpec(NamedTuple):
    """One forward argument: its name, static shape and dtype (``"float32"`` or ``"int64"``)."""

    name: str
    shape: tuple[int, ...]
    dtype: str


class ArchitectureConfig:
    """Base of every config of the zoo: declares the forward's inputs."""

    batch: int

    def input_specs(self) -> tuple[InputSpec, ...]:
        """The forward's arguments, in order, with the static shapes of the example inputs."""
        raise NotImplementedError

    def integer_input_bounds(self) -> Mapping[str, int]:
        """Exclusive upper bound of the example values of each integer input (token ids)."""
        return {}


@dataclass(frozen=True)
class MlpConfig(ArchitectureConfig):
    """``Linear-ReLU-Linear-ReLU-Linear`` on ``[batch, in_features]`` inputs."""

    in_features: int = 16
    hidden: int = 32
    out_features: int = 10
    batch: int = 4

    def input_specs(self) -> tuple[InputSpec, ...]:
        return (InputSpec("x", (self.batch, self.in_features), "float32"),)


@dataclass(frozen=True)
class CnnConfig(ArchitectureConfig):
    """Two conv-BN-ReLU stages, global average pooling and a linear classifier.

    ``channels`` is the width of the first stage; the second has twice as many.
    """

    channels: int = 8
    image_size: int = 32
    in_channels: int = 3
    num_classes: int = 10
    batch: int = 2

    def input_specs(self) -> tuple[InputSpec, ...]:
        shape = (self.batch, self.in_channels, self.image_size, self.image_size)
        return (InputSpec("x", shape, "float32"),)


def _check_heads(dim: int, heads: int) -> None:
    if dim % heads:
        raise ValueError(f"embedding dim {dim} is not divisible by the number of heads {heads}")


@dataclass(frozen=True)
class VitConfig(ArchitectureConfig):
    """A ViT classifier: patch embedding, cls token, pre-norm blocks, head on the cls token."""

    image_size: int = 32
    patch_size: int = 8
    in_channels: int = 3
    dim: int = 32
    depth: int = 2
    heads: int = 2
    mlp_ratio: int = 4
    num_classes: int = 10
    eps: float = 1e-6
    batch: int = 2

    def __post_init__(self) -> None:
        _check_heads(self.dim, self.heads)

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def num_tokens(self) -> int:
        """Patches plus the cls token."""
        return self.num_patches + 1

    def input_specs(self) -> tuple[InputSpec, ...]:
        shape = (self.batch, self.in_channels, self.image_size, self.image_size)
        return (InputSpec("x", shape, "float32"),)


@dataclass(frozen=True)
class VitPoseConfig(ArchitectureConfig):
    """mmpose ViTPose: a ViT backbone without cls token and a ``TopdownHeatmapSimpleHead``.

    ``patch_padding`` is mmpose's ``4 + 2 * (ratio // 2 - 1)`` with ``ratio=1``; with a
    256x192 input and 16x16 patches it gives the 16x12 token grid of the original.
    """

    image_height: int = 256
    image_width: int = 192
    patch_size: int = 16
    patch_padding: int = 2
    in_channels: int = 3
    dim: int = 64
    depth: int = 2
    heads: int = 2
    mlp_ratio: int = 4
    eps: float = 1e-6
    num_deconv_layers: int = 2
    deconv_filters: int = 32
    deconv_kernel: int = 4
    num_keypoints: int = 17
    batch: int = 1

    def __post_init__(self) -> None:
        _check_heads(self.dim, self.heads)

    @property
    def grid(self) -> tuple[int, int]:
        """Token grid ``(rows, cols)`` produced by the patch embedding convolution."""
        pad, patch = self.patch_padding, self.patch_size
        rows = (self.image_height + 2 * pad - patch) // patch + 1
        cols = (self.image_width + 2 * pad - patch) // patch + 1
        return rows, cols

    @property
    def num_patches(self) -> int:
        """Position-embedding slots for patches, computed as mmpose does (without padding)."""
        return (self.image_height // self.patch_size) * (self.image_width // self.patch_size)

    def input_specs(self) -> tuple[InputSpec, ...]:
        shape = (self.batch, self.in_channels, self.image_height, self.image_width)
        return (InputSpec("x", shape, "float32"),)


@dataclass(frozen=True)
class BertConfig(ArchitectureConfig):
    """A BERT encoder with post-norm layers and a tanh pooler on the first token."""

    vocab_size: int = 100
    hidden: int = 32
    layers: int = 2
    heads: int = 2
    intermediate: int = 64
    max_position_embeddings: int = 16
    type_vocab_size: int = 2
    eps: float = 1e-12
    seq_len: int = 8
    batch: int = 2

    def __post_init__(self) -> None:
        _check_heads(self.hidden, self.heads)
        if self.seq_len > self.max_position_embeddings:
            raise ValueError(
                f"seq_len {self.seq_len} exceeds max_position_embeddings "
                f"{self.max_position_embeddings}"
            )

    def input_specs(self) -> tuple[InputSpec, ...]:
        shape = (self.batch, self.seq_len)
        return (
            InputSpec("input_ids", shape, "int64"),
            InputSpec("token_type_ids", shape, "int64"),
        )

    def integer_input_bounds(self) -> Mapping[str, int]:
        return {"input_ids": self.vocab_size, "token_type_ids": self.type_vocab_size}


QkvLayout = Literal["concat", "grouped", "interleaved"]
GateUpLayout = Literal["gate_up", "up_gate", "interleaved"]
RopeConvention = Literal["interleaved", "half"]

_LAYOUT_CHOICES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "qkv_layout": ("concat", "grouped", "interleaved"),
        "gate_up_layout": ("gate_up", "up_gate", "interleaved"),
        "rope": ("interleaved", "half"),
    }
)


@dataclass(frozen=True)
class LlamaConfig(ArchitectureConfig):
    """A Llama/Qwen2-style decoder: RMSNorm, rotary embedding, grouped-query attention, SwiGLU.

    The torch model is written like Hugging Face's ``LlamaForCausalLM`` (split ``q_proj``,
    ``k_proj``, ``v_proj``, ``gate_proj``, ``up_proj``; rotate-half RoPE); the paddle model like
    a PaddleNLP port, whose parameter layout the fields below choose (the torch model ignores
    them, except ``tie_embeddings`` and ``qkv_bias``, which both sides follow):

    - ``qkv_layout``: rows of the fused ``qkv_proj`` output. ``"concat"`` is ``[q; k; v]``;
      ``"grouped"`` is per key-value head ``[q heads of group g; k_g; v_g]`` for each group
      (the tensor-parallel layout); ``"interleaved"`` is ``[q_h; k_h; v_h]`` per head and
      needs ``heads == kv_heads``. With ``kv_heads == 1`` grouped equals concat; with
      ``heads == kv_heads`` grouped equals interleaved.
    - ``gate_up_layout``: rows of the fused ``gate_up_fused_proj`` output: ``"gate_up"``
      (``[gate; up]``), ``"up_gate"`` (``[up; gate]``) or ``"interleaved"`` (gate and up rows
      alternate, gate first).
    - ``rope``: the paddle side's rotary convention. ``"interleaved"`` rotates the pairs
      ``(0, 1), (2, 3), ...`` of each head (GPT-J / Meta style), so the q and k rows of each
      head are permuted relative to torch's rotate-half; ``"half"`` is the same as torch.
    - ``norm_offset``: the paddle RMSNorm scales by ``1 + w`` (Gemma style), so its ``w`` is the
      torch weight minus one.
    - ``tie_embeddings``: the output head reuses the token embedding matrix (both sides).
    - ``qkv_bias``: q, k and v carry biases (Qwen2 style); fused into ``qkv_proj`` on paddle.

    Sizes: ``tiny`` has 90,432 parameters (vocab 128, hidden 64, 2 layers, 4 heads, 2 key-value
    heads, intermediate 128); ``base`` has 430,490,624 (0.43 B: vocab 32000, hidden 1024,
    24 layers, 16 heads, 4 key-value heads, intermediate 4096), untied and without biases.
    """

    vocab_size: int = 128
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 128
    rope_base: float = 10000.0
    eps: float = 1e-6
    seq_len: int = 8
    batch: int = 2
    qkv_layout: QkvLayout = "grouped"
    gate_up_layout: GateUpLayout = "up_gate"
    rope: RopeConvention = "interleaved"
    norm_offset: bool = False
    tie_embeddings: bool = False
    qkv_bias: bool = False

    def __post_init__(self) -> None:
        _check_heads(self.hidden, self.heads)
        for field, choices in _LAYOUT_CHOICES.items():
            if getattr(self, field) not in choices:
                raise OptionError(
                    f"LlamaConfig {field}={getattr(self, field)!r} is not a layout; choose one "
                    f"of {', '.join(map(repr, choices))}",
                    option=field,
                )
        if self.kv_heads < 1 or self.heads % self.kv_heads:
            raise OptionError(
                f"LlamaConfig heads={self.heads} is not a multiple of kv_heads={self.kv_heads}; "
                "give a number of key-value heads that divides the number of heads",
                option="kv_heads",
            )
        if self.head_dim % 2:
            raise OptionError(
                f"LlamaConfig head_dim={self.head_dim} is odd; rotary embedding needs an even "
                "head size (hidden / heads)",
                option="hidden",
            )
        if self.qkv_layout == "interleaved" and self.heads != self.kv_heads:
            raise OptionError(
                f"LlamaConfig qkv_layout='interleaved' needs heads == kv_heads, got {self.heads} "
                f"and {self.kv_heads}; use 'grouped' for grouped-query attention",
                option="qkv_layout",
            )

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def groups(self) -> int:
        """Query heads per key-value head."""
        return self.heads // self.kv_heads

    def input_specs(self) -> tuple[InputSpec, ...]:
        return (InputSpec("input_ids", (self.batch, self.seq_len), "int64"),)

    def integer_input_bounds(self) -> Mapping[str, int]:
        return {"input_ids": self.vocab_size}


SIZES: Mapping[str, Mapping[str, ArchitectureConfig]] = MappingProxyType(
    {
        "mlp": MappingProxyType(
            {
                "tiny": MlpConfig(),
                "base": MlpConfig(in_features=784, hidden=512, out_features=10, batch=8),
            }
        ),
        "cnn": MappingProxyType(
            {
                "tiny": CnnConfig(),
                "base": CnnConfig(channels=64, image_size=224, num_classes=1000, batch=1),
            }
        ),
        "vit": MappingProxyType(
            {
                "tiny": VitConfig(),
                "base": VitConfig(
                    image_size=224,
                    patch_size=16,
                    dim=768,
                    depth=12,
                    heads=12,
                    num_classes=1000,
                    batch=1,
                ),
            }
        ),
        "vitpose": MappingProxyType(
            {
                "tiny": VitPoseConfig(),
                "base": VitPoseConfig(dim=768, depth=12, heads=12, deconv_filters=256),
            }
        ),
        "bert": MappingProxyType(
            {
                "tiny": BertConfig(),
                "base": BertConfig(
                    vocab_size=30522,
                    hidden=768,
                    layers=12,
                    heads=12,
                    intermediate=3072,
                    max_position_embeddings=512,
                    seq_len=128,
                    batch=1,
                ),
            }
        ),
        "llama": MappingProxyType(
            {
                "tiny": LlamaConfig(),
                "base": LlamaConfig(
                    vocab_size=32000,
                    hidden=1024,
                    layers=24,
                    heads=16,
                    kv_heads=4,
                    intermediate=4096,
                    seq_len=128,
                    batch=1,
                ),
            }
        ),
    }
)
"""Architecture name -> size name -> config."""

DESCRIPTIONS: Mapping[str, str] = MappingProxyType(
    {
        "mlp": "three Linear layers with ReLU in between",
        "cnn": "two conv-BN-ReLU stages, max pool, global average pool, Linear classifier",
        "vit": "ViT classifier: conv patch embedding, cls token, pre-norm attention blocks",
        "vitpose": "mmpose ViTPose: ViT backbone + TopdownHeatmapSimpleHead (deconv heatmaps)",
        "bert": "BERT encoder: embeddings, post-norm layers, tanh pooler",
        "llama": "Llama/Qwen2 decoder; torch split q/k/v, paddle fused grouped qkv, other RoPE",
    }
)
"""Architecture name -> one-line description."""
