"""The torch half of the paired model zoo.

Each class mirrors one in :mod:`padiff_ir.zoo.paddle_models` attribute for attribute, so both
models have the same parameter names. Reshapes use the static shapes of the config (with ``-1``
for the batch) so that exports are static and the two graphs stay alike. The decoder LLM
``"llama"`` is the exception: it lives in :mod:`padiff_ir.zoo.llm_torch`, and its paddle port
has other names and layouts.

:func:`build` creates a model from a config and gives every normalisation layer non-trivial
affine parameters and running statistics, so that a weight copy that misses or misnames them
changes the output.
"""

from __future__ import annotations

import logging
import math

import torch
from torch import nn

from padiff_ir.zoo.configs import (
    ArchitectureConfig,
    BertConfig,
    CnnConfig,
    MlpConfig,
    VitConfig,
    VitPoseConfig,
)
from padiff_ir.zoo.llm_torch import LlamaForCausalLM, LlamaRMSNorm

__all__ = ["MODELS", "Bert", "Cnn", "Mlp", "Vit", "VitPose", "build"]

logger = logging.getLogger(__name__)


class Mlp(nn.Module):
    """``fc1 -> ReLU -> fc2 -> ReLU -> fc3``."""

    def __init__(self, config: MlpConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(config.in_features, config.hidden)
        self.act1 = nn.ReLU()
        self.fc2 = nn.Linear(config.hidden, config.hidden)
        self.act2 = nn.ReLU()
        self.fc3 = nn.Linear(config.hidden, config.out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(self.act2(self.fc2(self.act1(self.fc1(x)))))


class Cnn(nn.Module):
    """``conv-BN-ReLU-maxpool``, ``conv-BN-ReLU``, global average pool, ``fc``."""

    def __init__(self, config: CnnConfig) -> None:
        super().__init__()
        c = config.channels
        self.conv1 = nn.Conv2d(config.in_channels, c, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu1 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(c, 2 * c, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm2d(2 * c)
        self.relu2 = nn.ReLU()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * c, config.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu1(self.bn1(self.conv1(x))))
        x = self.relu2(self.bn2(self.conv2(x)))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


class Attention(nn.Module):
    """Multi-head self-attention with one fused ``qkv`` projection."""

    def __init__(self, dim: int, heads: int, tokens: int) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.tokens = tokens
        self.dim = dim
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        qkv = self.qkv(x).reshape(-1, self.tokens, 3, self.heads, self.head_dim)
        qkv = qkv.permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = torch.matmul(q, k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        x = torch.matmul(attn, v).transpose(1, 2).reshape(-1, self.tokens, self.dim)
        return self.proj(x)


class FeedForward(nn.Module):
    """``fc1 -> GELU -> fc2``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))`` then ``x + mlp(norm2(x))``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int, tokens: int, eps: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads, tokens)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = FeedForward(dim, dim * mlp_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    """Image to token sequence through a strided convolution ``proj``."""

    def __init__(self, in_channels: int, dim: int, patch: int, padding: int = 0) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch, stride=patch, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Vit(nn.Module):
    """ViT classifier with a cls token and a learned position embedding."""

    def __init__(self, config: VitConfig) -> None:
        super().__init__()
        dim = config.dim
        self.patch_embed = PatchEmbed(config.in_channels, dim, config.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, config.num_tokens, dim))
        self.blocks = nn.ModuleList(
            Block(dim, config.heads, config.mlp_ratio, config.num_tokens, config.eps)
            for _ in range(config.depth)
        )
        self.norm = nn.LayerNorm(dim, eps=config.eps)
        self.head = nn.Linear(dim, config.num_classes)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        cls_token = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat([cls_token, x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return self.head(x[:, 0])


class VitPoseBackbone(nn.Module):
    """mmpose ``ViT`` without cls token; ``forward_features`` returns ``[B, dim, rows, cols]``."""

    def __init__(self, config: VitPoseConfig) -> None:
        super().__init__()
        dim = config.dim
        self.dim = dim
        self.grid = config.grid
        tokens = self.grid[0] * self.grid[1]
        self.patch_embed = PatchEmbed(
            config.in_channels, dim, config.patch_size, config.patch_padding
        )
        # One slot more than there are patches, as in mmpose (the cls slot is added to all).
        self.pos_embed = nn.Parameter(torch.zeros(1, config.num_patches + 1, dim))
        self.blocks = nn.ModuleList(
            Block(dim, config.heads, config.mlp_ratio, tokens, config.eps)
            for _ in range(config.depth)
        )
        self.last_norm = nn.LayerNorm(dim, eps=config.eps)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        x = x + self.pos_embed[:, 1:] + self.pos_embed[:, :1]
        for block in self.blocks:
            x = block(x)
        x = self.last_norm(x)
        return x.permute(0, 2, 1).reshape(-1, self.dim, self.grid[0], self.grid[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)


class TopdownHeatmapSimpleHead(nn.Module):
    """Deconvolution stages (``ConvTranspose2d``-BN-ReLU) and a 1x1 ``final_layer``."""

    def __init__(self, config: VitPoseConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = config.dim
        for _ in range(config.num_deconv_layers):
            layers += [
                nn.ConvTranspose2d(
                    in_channels,
                    config.deconv_filters,
                    kernel_size=config.deconv_kernel,
                    stride=2,
                    padding=1,
                    output_padding=0,
                    bias=False,
                ),
                nn.BatchNorm2d(config.deconv_filters),
                nn.ReLU(),
            ]
            in_channels = config.deconv_filters
        self.deconv_layers = nn.Sequential(*layers)
        self.final_layer = nn.Conv2d(in_channels, config.num_keypoints, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final_layer(self.deconv_layers(x))


class VitPose(nn.Module):
    """ViTPose top-down pose estimator: heatmaps ``[B, keypoints, 4 * rows, 4 * cols]``."""

    def __init__(self, config: VitPoseConfig) -> None:
        super().__init__()
        self.backbone = VitPoseBackbone(config)
        self.head = TopdownHeatmapSimpleHead(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.backbone.forward_features(x)
        return self.head(x)


class BertEmbeddings(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.seq_len = config.seq_len
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden)
        self.LayerNorm = nn.LayerNorm(config.hidden, eps=config.eps)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        position_ids = torch.arange(self.seq_len, dtype=torch.int64).unsqueeze(0)
        x = (
            self.word_embeddings(input_ids)
            + self.position_embeddings(position_ids)
            + self.token_type_embeddings(token_type_ids)
        )
        return self.LayerNorm(x)


class BertSelfAttention(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.heads = config.heads
        self.head_dim = config.hidden // config.heads
        self.hidden = config.hidden
        self.seq_len = config.seq_len
        self.query = nn.Linear(config.hidden, config.hidden)
        self.key = nn.Linear(config.hidden, config.hidden)
        self.value = nn.Linear(config.hidden, config.hidden)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(-1, self.seq_len, self.heads, self.head_dim)
        return x.permute(0, 2, 1, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self._split_heads(self.query(x))
        k = self._split_heads(self.key(x))
        v = self._split_heads(self.value(x))
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.head_dim)
        probs = scores.softmax(dim=-1)
        context = torch.matmul(probs, v).permute(0, 2, 1, 3)
        return context.reshape(-1, self.seq_len, self.hidden)


class BertResidualOutput(nn.Module):
    """``LayerNorm(dense(x) + residual)``: BERT's ``SelfOutput`` and ``Output``."""

    def __init__(self, in_features: int, hidden: int, eps: float) -> None:
        super().__init__()
        self.dense = nn.Linear(in_features, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class BertAttention(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertResidualOutput(config.hidden, config.hidden, config.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(x), x)


class BertIntermediate(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden, config.intermediate)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(x))


class BertLayer(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertResidualOutput(config.intermediate, config.hidden, config.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attention_output = self.attention(x)
        return self.output(self.intermediate(attention_output), attention_output)


class BertEncoder(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(config) for _ in range(config.layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layer:
            x = layer(x)
        return x


class BertPooler(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden, config.hidden)
        self.activation = nn.Tanh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.dense(x[:, 0]))


class Bert(nn.Module):
    """BERT encoder; returns ``(sequence_output, pooled_output)``."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config)

    def forward(
        self, input_ids: torch.Tensor, token_type_ids: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        sequence_output = self.encoder(self.embeddings(input_ids, token_type_ids))
        return sequence_output, self.pooler(sequence_output)


MODELS: dict[str, type[nn.Module]] = {
    "mlp": Mlp,
    "cnn": Cnn,
    "vit": Vit,
    "vitpose": VitPose,
    "bert": Bert,
    "llama": LlamaForCausalLM,
}
"""Architecture name -> torch model class (constructed from the matching config)."""


def _perturb_norms(model: nn.Module) -> None:
    """Give norm layers affine parameters and running statistics away from their defaults."""
    with torch.no_grad():
        for module in model.modules():
            if (
                isinstance(module, nn.BatchNorm2d)
                and module.running_mean is not None
                and module.running_var is not None
            ):
                module.running_mean.normal_(0.0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
            if isinstance(module, (nn.BatchNorm2d, nn.LayerNorm)):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.1)
            if isinstance(module, LlamaRMSNorm):
                module.weight.uniform_(0.5, 1.5)


def build(name: str, config: ArchitectureConfig) -> nn.Module:
    """Build the torch model ``name`` from ``config``, drawing from torch's global RNG.

    The caller seeds and restores the RNG (see :func:`padiff_ir.zoo.get_pair`).
    """
    model = MODELS[name](config)
    _perturb_norms(model)
    logger.debug("built torch %s from %s", type(model).__name__, config)
    return model
