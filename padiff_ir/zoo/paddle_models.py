"""The paddle half of the paired model zoo.

Each class mirrors one in :mod:`padiff_ir.zoo.torch_models` attribute for attribute, so both
models have the same parameter names (paddle's ``BatchNorm2D`` keeps its running statistics in
``_mean`` / ``_variance`` where torch uses ``running_mean`` / ``running_var``).

The forwards are written for dy2static and paddle2onnx: the first argument is named ``self``,
reshapes use the static shapes of the config (``-1`` for the batch) instead of ``x.shape``,
transposes and flattens name their axes, and there is no data-dependent control flow. The
decoder LLM ``"llama"`` is the exception: :mod:`padiff_ir.zoo.llm_paddle` is a PaddleNLP-style
port with other names and layouts, and a forward that runs only eagerly.
"""

from __future__ import annotations

import logging
import math

import paddle
from paddle import nn
from paddle.nn import functional

from padiff_ir.zoo.configs import (
    ArchitectureConfig,
    BertConfig,
    CnnConfig,
    MlpConfig,
    VitConfig,
    VitPoseConfig,
)
from padiff_ir.zoo.llm_paddle import LlamaForCausalLM

__all__ = ["MODELS", "Bert", "Cnn", "Mlp", "Vit", "VitPose", "build"]

logger = logging.getLogger(__name__)


def _trunc_normal_parameter(layer: nn.Layer, shape: list[int]) -> paddle.Tensor:
    return layer.create_parameter(
        shape=shape, default_initializer=nn.initializer.TruncatedNormal(std=0.02)
    )


class Mlp(nn.Layer):
    """``fc1 -> ReLU -> fc2 -> ReLU -> fc3``."""

    def __init__(self, config: MlpConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(config.in_features, config.hidden)
        self.act1 = nn.ReLU()
        self.fc2 = nn.Linear(config.hidden, config.hidden)
        self.act2 = nn.ReLU()
        self.fc3 = nn.Linear(config.hidden, config.out_features)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.fc3(self.act2(self.fc2(self.act1(self.fc1(x)))))


class Cnn(nn.Layer):
    """``conv-BN-ReLU-maxpool``, ``conv-BN-ReLU``, global average pool, ``fc``."""

    def __init__(self, config: CnnConfig) -> None:
        super().__init__()
        c = config.channels
        self.conv1 = nn.Conv2D(config.in_channels, c, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2D(c)
        self.relu1 = nn.ReLU()
        self.pool = nn.MaxPool2D(2)
        self.conv2 = nn.Conv2D(c, 2 * c, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm2D(2 * c)
        self.relu2 = nn.ReLU()
        self.avgpool = nn.AdaptiveAvgPool2D(1)
        self.fc = nn.Linear(2 * c, config.num_classes)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.pool(self.relu1(self.bn1(self.conv1(x))))
        x = self.relu2(self.bn2(self.conv2(x)))
        x = paddle.flatten(self.avgpool(x), start_axis=1)
        return self.fc(x)


class Attention(nn.Layer):
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

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        qkv = self.qkv(x).reshape([-1, self.tokens, 3, self.heads, self.head_dim])
        qkv = paddle.transpose(qkv, perm=[2, 0, 3, 1, 4])
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = paddle.matmul(q, paddle.transpose(k, perm=[0, 1, 3, 2])) * self.scale
        attn = functional.softmax(attn, axis=-1)
        x = paddle.transpose(paddle.matmul(attn, v), perm=[0, 2, 1, 3])
        return self.proj(x.reshape([-1, self.tokens, self.dim]))


class FeedForward(nn.Layer):
    """``fc1 -> GELU -> fc2``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Layer):
    """Pre-norm transformer block: ``x + attn(norm1(x))`` then ``x + mlp(norm2(x))``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int, tokens: int, eps: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, epsilon=eps)
        self.attn = Attention(dim, heads, tokens)
        self.norm2 = nn.LayerNorm(dim, epsilon=eps)
        self.mlp = FeedForward(dim, dim * mlp_ratio)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Layer):
    """Image to token sequence through a strided convolution ``proj``."""

    def __init__(self, in_channels: int, dim: int, patch: int, padding: int = 0) -> None:
        super().__init__()
        self.proj = nn.Conv2D(in_channels, dim, kernel_size=patch, stride=patch, padding=padding)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = paddle.flatten(self.proj(x), start_axis=2)
        return paddle.transpose(x, perm=[0, 2, 1])


class Vit(nn.Layer):
    """ViT classifier with a cls token and a learned position embedding."""

    def __init__(self, config: VitConfig) -> None:
        super().__init__()
        dim = config.dim
        self.patch_embed = PatchEmbed(config.in_channels, dim, config.patch_size)
        self.cls_token = _trunc_normal_parameter(self, [1, 1, dim])
        self.pos_embed = _trunc_normal_parameter(self, [1, config.num_tokens, dim])
        self.blocks = nn.LayerList(
            [
                Block(dim, config.heads, config.mlp_ratio, config.num_tokens, config.eps)
                for _ in range(config.depth)
            ]
        )
        self.norm = nn.LayerNorm(dim, epsilon=config.eps)
        self.head = nn.Linear(dim, config.num_classes)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.patch_embed(x)
        cls_token = paddle.expand(self.cls_token, shape=[x.shape[0], -1, -1])
        x = paddle.concat([cls_token, x], axis=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return self.head(x[:, 0])


class VitPoseBackbone(nn.Layer):
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
        self.pos_embed = _trunc_normal_parameter(self, [1, config.num_patches + 1, dim])
        self.blocks = nn.LayerList(
            [
                Block(dim, config.heads, config.mlp_ratio, tokens, config.eps)
                for _ in range(config.depth)
            ]
        )
        self.last_norm = nn.LayerNorm(dim, epsilon=config.eps)

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.patch_embed(x)
        x = x + self.pos_embed[:, 1:] + self.pos_embed[:, :1]
        for block in self.blocks:
            x = block(x)
        x = self.last_norm(x)
        x = paddle.transpose(x, perm=[0, 2, 1])
        return x.reshape([-1, self.dim, self.grid[0], self.grid[1]])

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.forward_features(x)


class TopdownHeatmapSimpleHead(nn.Layer):
    """Deconvolution stages (``Conv2DTranspose``-BN-ReLU) and a 1x1 ``final_layer``."""

    def __init__(self, config: VitPoseConfig) -> None:
        super().__init__()
        layers: list[nn.Layer] = []
        in_channels = config.dim
        for _ in range(config.num_deconv_layers):
            layers += [
                nn.Conv2DTranspose(
                    in_channels,
                    config.deconv_filters,
                    kernel_size=config.deconv_kernel,
                    stride=2,
                    padding=1,
                    output_padding=0,
                    bias_attr=False,
                ),
                nn.BatchNorm2D(config.deconv_filters),
                nn.ReLU(),
            ]
            in_channels = config.deconv_filters
        self.deconv_layers = nn.Sequential(*layers)
        self.final_layer = nn.Conv2D(in_channels, config.num_keypoints, kernel_size=1)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.final_layer(self.deconv_layers(x))


class VitPose(nn.Layer):
    """ViTPose top-down pose estimator: heatmaps ``[B, keypoints, 4 * rows, 4 * cols]``."""

    def __init__(self, config: VitPoseConfig) -> None:
        super().__init__()
        self.backbone = VitPoseBackbone(config)
        self.head = TopdownHeatmapSimpleHead(config)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.backbone.forward_features(x)
        return self.head(x)


class BertEmbeddings(nn.Layer):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.seq_len = config.seq_len
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden)
        self.LayerNorm = nn.LayerNorm(config.hidden, epsilon=config.eps)

    def forward(self, input_ids: paddle.Tensor, token_type_ids: paddle.Tensor) -> paddle.Tensor:
        position_ids = paddle.arange(self.seq_len, dtype="int64").unsqueeze(0)
        x = (
            self.word_embeddings(input_ids)
            + self.position_embeddings(position_ids)
            + self.token_type_embeddings(token_type_ids)
        )
        return self.LayerNorm(x)


class BertSelfAttention(nn.Layer):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.heads = config.heads
        self.head_dim = config.hidden // config.heads
        self.hidden = config.hidden
        self.seq_len = config.seq_len
        self.query = nn.Linear(config.hidden, config.hidden)
        self.key = nn.Linear(config.hidden, config.hidden)
        self.value = nn.Linear(config.hidden, config.hidden)

    def _split_heads(self, x: paddle.Tensor) -> paddle.Tensor:
        x = x.reshape([-1, self.seq_len, self.heads, self.head_dim])
        return paddle.transpose(x, perm=[0, 2, 1, 3])

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        q = self._split_heads(self.query(x))
        k = self._split_heads(self.key(x))
        v = self._split_heads(self.value(x))
        scores = paddle.matmul(q, paddle.transpose(k, perm=[0, 1, 3, 2]))
        probs = functional.softmax(scores / math.sqrt(self.head_dim), axis=-1)
        context = paddle.transpose(paddle.matmul(probs, v), perm=[0, 2, 1, 3])
        return context.reshape([-1, self.seq_len, self.hidden])


class BertResidualOutput(nn.Layer):
    """``LayerNorm(dense(x) + residual)``: BERT's ``SelfOutput`` and ``Output``."""

    def __init__(self, in_features: int, hidden: int, eps: float) -> None:
        super().__init__()
        self.dense = nn.Linear(in_features, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, epsilon=eps)

    def forward(self, x: paddle.Tensor, residual: paddle.Tensor) -> paddle.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class BertAttention(nn.Layer):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertResidualOutput(config.hidden, config.hidden, config.eps)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.output(self.self(x), x)


class BertIntermediate(nn.Layer):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden, config.intermediate)
        self.act = nn.GELU()

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.act(self.dense(x))


class BertLayer(nn.Layer):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertResidualOutput(config.intermediate, config.hidden, config.eps)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        attention_output = self.attention(x)
        return self.output(self.intermediate(attention_output), attention_output)


class BertEncoder(nn.Layer):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.layer = nn.LayerList([BertLayer(config) for _ in range(config.layers)])

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        for layer in self.layer:
            x = layer(x)
        return x


class BertPooler(nn.Layer):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden, config.hidden)
        self.activation = nn.Tanh()

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.activation(self.dense(x[:, 0]))


class Bert(nn.Layer):
    """BERT encoder; returns ``(sequence_output, pooled_output)``."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config)

    def forward(
        self, input_ids: paddle.Tensor, token_type_ids: paddle.Tensor
    ) -> tuple[paddle.Tensor, paddle.Tensor]:
        sequence_output = self.encoder(self.embeddings(input_ids, token_type_ids))
        return sequence_output, self.pooler(sequence_output)


MODELS: dict[str, type[nn.Layer]] = {
    "mlp": Mlp,
    "cnn": Cnn,
    "vit": Vit,
    "vitpose": VitPose,
    "bert": Bert,
    "llama": LlamaForCausalLM,
}
"""Architecture name -> paddle layer class (constructed from the matching config)."""


def build(name: str, config: ArchitectureConfig) -> nn.Layer:
    """Build the paddle model ``name`` from ``config``, drawing from paddle's global RNG.

    Its weights are placeholders until :func:`padiff_ir.zoo.get_pair` overwrites them with
    the torch model's (:func:`padiff_ir.zoo.copy_torch_to_paddle`, or the architecture's own
    converter); the caller saves and restores the RNG (see :func:`padiff_ir.zoo.get_pair`).
    """
    model = MODELS[name](config)  # type: ignore[arg-type]
    logger.debug("built paddle %s from %s", type(model).__name__, config)
    return model
