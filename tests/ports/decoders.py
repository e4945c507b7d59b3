"""Decoder family of the real-ports corpus: Hugging Face ``transformers`` against PaddleFormers.

Llama, Qwen2, Qwen3, Phi-3 and three mixture-of-experts families (Qwen3-MoE: routed experts;
Qwen2-MoE: routed plus a gated shared expert; DeepSeek-V3: multi-head latent attention, a
dense first layer, then routed experts with a sigmoid router and its correction bias beside a
shared expert), each in PaddleFormers' eager (non-fleet) class.

Tiny configs (2 layers, hidden 64, 4 heads over 2 KV heads, vocabulary 128), random init, no
download. The ground truth below is written from the two libraries' sources, not from padiff-ir:

- PaddleFormers fuses q/k/v into one ``qkv_proj`` whose columns are grouped **per KV head**
  (``[q heads of group g, k_g, v_g]`` for each group g, ``Qwen2Attention.forward`` reshapes to
  ``[..., kv_heads, (groups + 2) * head_dim]`` and splits), and gate/up into ``up_gate_proj``
  (gate first: ``MLP.forward`` chunks it in two);
- HF stacks MoE experts in 3-d tensors (``gate_up_proj`` [experts, 2 * inter, hidden], gate
  first; ``down_proj`` [experts, hidden, inter]), PaddleFormers keeps one MLP per expert;
- Phi-3 fuses q/k/v (plain ``[q; k; v]``) and gate/up the same way on both sides;
- DeepSeek-V3 keeps every projection apart on both sides (``q_a_proj``, ``q_a_layernorm``,
  ``q_b_proj``, ``kv_a_proj_with_mqa``, ``kv_a_layernorm``, ``kv_b_proj``), PaddleFormers
  defining the norms after the projections; its experts are one MLP each with ``gate_proj``
  and ``up_proj`` apart, HF's a 3-d ``gate_up_proj`` (gate rows first) and ``down_proj``;
  the router's ``e_score_correction_bias`` (a buffer on both sides) only chooses experts;
  its router returns ``(logits, weights, indices)`` in HF, ``(indices, weights)`` in
  PaddleFormers. PaddleFormers reads a YaRN ``factor`` whatever the RoPE type (given 1.0).
  Read by hand, the two differ only where this config cannot show it (experts of unchosen
  groups masked with 0 in PaddleFormers, ``-inf`` in HF: ``n_group`` is 1), so no true
  difference is left after the hand conversion, as for the other families;
- paddle Linear weights are [in, out]; the LM head is [vocab, hidden] on both sides.

Torch modules whose computation is one part of a fused paddle module (``q_proj``, ``gate_proj``,
the stacked experts) have no counterpart and are not in ``modules``; ``notes["unpaired"]`` names
them. PaddleFormers needs its training-only ``gpt_provider`` module (which imports paddlefleet)
and the GPU-only ``paddlefleet_ops`` replaced on a CPU machine: :func:`paddleformers_modeling`.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from tests.ports import BuiltPair, Copy, Derive, PortPair

VOCAB = 128
HIDDEN = 64
HEADS = 4
KV_HEADS = 2
HEAD_DIM = HIDDEN // HEADS
INTER = 96
MOE_INTER = 24
#: DeepSeek-V3's multi-head latent attention: LoRA-style ranks and head parts
Q_LORA, KV_LORA, ROPE_DIM, NOPE_DIM = 32, 16, 8, 16
EXPERTS = 4
LAYERS = 2
SEED = 0

__all__ = ["PAIRS", "paddleformers_modeling", "token_ids"]


def _stub_training_only_modules() -> None:
    """Put the modules PaddleFormers imports for training on GPUs, and cannot import on a CPU
    machine, in ``sys.modules`` (only where the real ones are missing); shim the one Hub helper
    that ``huggingface_hub`` 2.x dropped and PaddleFormers imports (used only to upload)."""
    name = "paddleformers.transformers.gpt_provider"
    if name not in sys.modules:
        provider = types.ModuleType(name)

        class GPTModelProvider:  # base of the fleet model providers, never built here
            transform_rules: ClassVar[dict[str, str]] = {}

        provider.GPTModelProvider = GPTModelProvider  # type: ignore[attr-defined]
        sys.modules[name] = provider
    if "paddlefleet_ops" not in sys.modules and importlib.util.find_spec("paddlefleet_ops") is None:
        ops = types.ModuleType("paddlefleet_ops")
        ops.is_deep_ep_available = lambda: False  # type: ignore[attr-defined]
        sys.modules["paddlefleet_ops"] = ops
    import huggingface_hub

    if not hasattr(huggingface_hub, "repo_type_and_id_from_hf_id"):

        def repo_type_and_id_from_hf_id(*args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError("uploading to the Hub is not part of these tests")

        huggingface_hub.repo_type_and_id_from_hf_id = repo_type_and_id_from_hf_id  # type: ignore[attr-defined]


def paddleformers_modeling(family: str) -> Any:
    """PaddleFormers' ``{family}.modeling`` module (``transformers`` and torch imported first:
    PaddleFormers hides torch from ``transformers`` when it is imported before them)."""
    import pytest

    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    import transformers.modeling_utils  # noqa: F401  (torch-backed transformers, before paddleformers)

    if importlib.util.find_spec("paddleformers") is None:
        pytest.skip("paddleformers is not installed (the [ports] extra)")
    # PaddleFormers otherwise replaces paddle.to_tensor, Tensor.numpy and Tensor.set_value for
    # the whole process (bfloat16 helpers): the other tests would run on patched paddle
    os.environ.setdefault("FLAGS_enable_paddleformers_monkey_patch", "0")
    _stub_training_only_modules()
    return importlib.import_module(f"paddleformers.transformers.{family}.modeling")


def token_ids(batch: int = 2, length: int = 8, seed: int = 1) -> np.ndarray:
    """Token ids within the tiny vocabulary, as the models take them (int64)."""
    return np.random.default_rng(seed).integers(1, VOCAB, size=(batch, length), dtype=np.int64)


@dataclass(frozen=True)
class _Family:
    """How one decoder family is built on both sides and how its tensors go across."""

    hf: str  # transformers' class prefix: Qwen2 -> Qwen2Config, Qwen2ForCausalLM
    pf: str  # paddleformers' module: qwen2
    pf_class: str  # the eager (non-fleet) causal LM class
    config: dict[str, Any] = field(default_factory=dict)
    fused_qkv: bool = True
    qkv_bias: bool = False
    qk_norm: bool = False
    fused_mlp: bool = True
    moe: str = ""  # "" | "qwen3" (routed) | "qwen2" (+ gated shared expert) | "deepseek"
    dense_layers: int = 0  # the first layers with a dense MLP in an MoE family (DeepSeek-V3)
    mla: bool = False  # multi-head latent attention (DeepSeek-V3)
    fused_alike: bool = False  # fused q/k/v and gate/up on both sides, in the same order (Phi-3)
    dropouts: tuple[str, ...] = ()  # a decoder layer's own Dropout modules (same names)
    act_a: str = "act_fn"  # the activation module's name on the torch side


def _fuse_qkv(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """torch q/k/v ([out, in] or [out]) -> PaddleFormers' qkv_proj ([in, out] or [out]), its
    output columns grouped per KV head: q heads of the group, then k, then v."""
    groups = HEADS // KV_HEADS
    rest = q.shape[1:]
    q = q.reshape(KV_HEADS, groups * HEAD_DIM, *rest)
    k = k.reshape(KV_HEADS, HEAD_DIM, *rest)
    v = v.reshape(KV_HEADS, HEAD_DIM, *rest)
    fused = np.concatenate([q, k, v], axis=1).reshape(-1, *rest)
    return fused.T if fused.ndim == 2 else fused


def _fuse_gate_up(gate: np.ndarray, up: np.ndarray) -> np.ndarray:
    """torch gate_proj, up_proj ([inter, hidden]) -> up_gate_proj ([hidden, 2 * inter]),
    gate first."""
    return np.concatenate([gate.T, up.T], axis=1)


def _expert(index: int, rows: slice = slice(None)) -> Callable[[np.ndarray], np.ndarray]:
    """One expert's matrix out of HF's 3-d stack (its ``rows`` of it: the gate or the up half
    of ``gate_up_proj``), as a paddle Linear weight."""
    return lambda stack: stack[index, rows].T


def _layer_truth(fam: _Family, layer: int, pair: BuiltPair, unpaired: list[str]) -> None:
    a = b = f"model.layers.{layer}"
    weights, derived, modules = pair.weights, pair.derived, pair.modules
    assert isinstance(weights, dict) and isinstance(derived, dict) and isinstance(modules, dict)
    for norm in ("input_layernorm", "post_attention_layernorm"):
        weights[f"{a}.{norm}.weight"] = (f"{b}.{norm}.weight", Copy.SAME)
        modules[f"{a}.{norm}"] = f"{b}.{norm}"
    modules[a] = b
    for dropout in fam.dropouts:
        modules[f"{a}.{dropout}"] = f"{b}.{dropout}"
    modules[f"{a}.self_attn"] = f"{b}.self_attn"
    modules[f"{a}.self_attn.o_proj"] = f"{b}.self_attn.o_proj"
    weights[f"{a}.self_attn.o_proj.weight"] = (f"{b}.self_attn.o_proj.weight", Copy.TRANSPOSE)
    proj = [f"{a}.self_attn.{p}_proj" for p in "qkv"]
    if fam.mla:
        _mla_truth(f"{a}.self_attn", pair)
    elif fam.fused_alike:
        weights[f"{a}.self_attn.qkv_proj.weight"] = (
            f"{b}.self_attn.qkv_proj.weight",
            Copy.TRANSPOSE,
        )
        modules[f"{a}.self_attn.qkv_proj"] = f"{b}.self_attn.qkv_proj"
    elif fam.fused_qkv:
        derived[f"{b}.self_attn.qkv_proj.weight"] = Derive(
            tuple(f"{p}.weight" for p in proj), _fuse_qkv
        )
        if fam.qkv_bias:
            derived[f"{b}.self_attn.qkv_proj.bias"] = Derive(
                tuple(f"{p}.bias" for p in proj), _fuse_qkv
            )
        unpaired.extend(proj)
    else:
        for p in proj:
            weights[f"{p}.weight"] = (p.replace(a, b) + ".weight", Copy.TRANSPOSE)
            modules[p] = p.replace(a, b)
    if fam.qk_norm:
        for norm in ("q_norm", "k_norm"):
            weights[f"{a}.self_attn.{norm}.weight"] = (f"{b}.self_attn.{norm}.weight", Copy.SAME)
            modules[f"{a}.self_attn.{norm}"] = f"{b}.self_attn.{norm}"
    modules[f"{a}.mlp"] = f"{b}.mlp"
    if fam.moe and layer >= fam.dense_layers:
        _moe_truth(fam, f"{a}.mlp", f"{b}.mlp", pair, unpaired)
    else:
        _mlp_truth(fam, f"{a}.mlp", f"{b}.mlp", pair, unpaired)


def _mla_truth(attention: str, pair: BuiltPair) -> None:
    """Multi-head latent attention: the same names on both sides, Linear weights transposed."""
    weights, modules = pair.weights, pair.modules
    assert isinstance(weights, dict) and isinstance(modules, dict)
    for proj in ("q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj"):
        weights[f"{attention}.{proj}.weight"] = (f"{attention}.{proj}.weight", Copy.TRANSPOSE)
        modules[f"{attention}.{proj}"] = f"{attention}.{proj}"
    for norm in ("q_a_layernorm", "kv_a_layernorm"):
        weights[f"{attention}.{norm}.weight"] = (f"{attention}.{norm}.weight", Copy.SAME)
        modules[f"{attention}.{norm}"] = f"{attention}.{norm}"


def _mlp_truth(fam: _Family, a: str, b: str, pair: BuiltPair, unpaired: list[str]) -> None:
    weights, derived, modules = pair.weights, pair.derived, pair.modules
    assert isinstance(weights, dict) and isinstance(derived, dict) and isinstance(modules, dict)
    weights[f"{a}.down_proj.weight"] = (f"{b}.down_proj.weight", Copy.TRANSPOSE)
    modules[f"{a}.down_proj"] = f"{b}.down_proj"
    modules[f"{a}.{fam.act_a}"] = f"{b}.act_fn"
    if fam.fused_alike:
        weights[f"{a}.gate_up_proj.weight"] = (f"{b}.gate_up_proj.weight", Copy.TRANSPOSE)
        modules[f"{a}.gate_up_proj"] = f"{b}.gate_up_proj"
    elif fam.fused_mlp:
        derived[f"{b}.up_gate_proj.weight"] = Derive(
            (f"{a}.gate_proj.weight", f"{a}.up_proj.weight"), _fuse_gate_up
        )
        unpaired.extend([f"{a}.gate_proj", f"{a}.up_proj"])
    else:
        for p in ("gate_proj", "up_proj"):
            weights[f"{a}.{p}.weight"] = (f"{b}.{p}.weight", Copy.TRANSPOSE)
            modules[f"{a}.{p}"] = f"{b}.{p}"


def _moe_truth(fam: _Family, a: str, b: str, pair: BuiltPair, unpaired: list[str]) -> None:
    weights, derived, modules = pair.weights, pair.derived, pair.modules
    assert isinstance(weights, dict) and isinstance(derived, dict) and isinstance(modules, dict)
    weights[f"{a}.gate.weight"] = (f"{b}.gate.weight", Copy.TRANSPOSE)  # router: [experts, hidden]
    modules[f"{a}.gate"] = (
        f"{b}.gate"  # HF's router returns (logits, scores, indices): logits agree
    )
    if fam.moe == "deepseek":
        _deepseek_experts(fam, a, b, pair, unpaired)
        return
    for e in range(EXPERTS):
        derived[f"{b}.experts.{e}.up_gate_proj.weight"] = Derive(
            (f"{a}.experts.gate_up_proj",), _expert(e)
        )
        derived[f"{b}.experts.{e}.down_proj.weight"] = Derive(
            (f"{a}.experts.down_proj",), _expert(e)
        )
    unpaired.extend([f"{a}.experts", f"{a}.experts.act_fn"])
    if fam.moe == "qwen2":
        _mlp_truth(fam, f"{a}.shared_expert", f"{b}.shared_expert", pair, unpaired)
        modules[f"{a}.shared_expert"] = f"{b}.shared_expert"
        weights[f"{a}.shared_expert_gate.weight"] = (
            f"{b}.shared_expert_gate.weight",
            Copy.TRANSPOSE,
        )
        modules[f"{a}.shared_expert_gate"] = f"{b}.shared_expert_gate"


def _deepseek_experts(fam: _Family, a: str, b: str, pair: BuiltPair, unpaired: list[str]) -> None:
    """DeepSeek-V3's routed experts (gate and up apart on the paddle side) and shared one."""
    weights, derived, modules = pair.weights, pair.derived, pair.modules
    assert isinstance(weights, dict) and isinstance(derived, dict) and isinstance(modules, dict)
    bias = "gate.e_score_correction_bias"
    weights[f"{a}.{bias}"] = (f"{b}.{bias}", Copy.SAME)
    halves = {"gate_proj": slice(0, MOE_INTER), "up_proj": slice(MOE_INTER, 2 * MOE_INTER)}
    for e in range(EXPERTS):
        for proj, rows in halves.items():
            derived[f"{b}.experts.{e}.{proj}.weight"] = Derive(
                (f"{a}.experts.gate_up_proj",), _expert(e, rows)
            )
        derived[f"{b}.experts.{e}.down_proj.weight"] = Derive(
            (f"{a}.experts.down_proj",), _expert(e)
        )
    unpaired.extend([f"{a}.experts", f"{a}.experts.act_fn"])
    _mlp_truth(fam, f"{a}.shared_experts", f"{b}.shared_experts", pair, unpaired)
    modules[f"{a}.shared_experts"] = f"{b}.shared_experts"


def _configs(fam: _Family) -> tuple[Any, Any]:
    import transformers

    common: dict[str, Any] = dict(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        intermediate_size=INTER,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS,
        head_dim=HEAD_DIM,
        rms_norm_eps=1e-6,
        rope_theta=10000.0,
        tie_word_embeddings=False,
    )
    common.update(fam.config)
    modeling = paddleformers_modeling(fam.pf)
    configuration = importlib.import_module(f"paddleformers.transformers.{fam.pf}.configuration")
    pf_config = getattr(configuration, f"{fam.hf}Config")(**common, fuse_rms_norm=False)
    if fam.mla:  # PaddleFormers' MLA reads a YaRN factor whatever the RoPE type (1: none)
        pf_config.rope_parameters = dict(pf_config.rope_parameters, factor=1.0)
    del modeling
    return getattr(transformers, f"{fam.hf}Config")(**common), pf_config


def _draw_away(torch_model: Any) -> None:
    """Norm weights away from 1 and biases away from 0 (the router's correction bias, a
    buffer, too), so that a wrong mapping shows."""
    import torch

    generator = torch.Generator().manual_seed(SEED + 1)
    with torch.no_grad():
        for name, param in torch_model.state_dict().items():
            if name.endswith("norm.weight"):
                param.copy_(1.0 + 0.5 * torch.rand(param.shape, generator=generator) - 0.25)
            elif name.endswith((".bias", "correction_bias")):
                param.copy_(0.1 * torch.randn(param.shape, generator=generator))


def _build(fam: _Family) -> BuiltPair:
    import paddle
    import torch
    import transformers

    hf_config, pf_config = _configs(fam)
    with torch.random.fork_rng():
        torch.manual_seed(SEED)
        torch_model = getattr(transformers, f"{fam.hf}ForCausalLM")(hf_config).eval()
    _draw_away(torch_model)
    state = paddle.get_rng_state()
    try:
        paddle.seed(SEED)
        paddle_model = getattr(paddleformers_modeling(fam.pf), fam.pf_class)(pf_config)
    finally:
        paddle.set_rng_state(state)
    paddle_model.eval()
    pair = BuiltPair(torch_model, paddle_model, {"input_ids": token_ids()}, {}, {})
    unpaired: list[str] = []
    weights, modules = pair.weights, pair.modules
    assert isinstance(weights, dict) and isinstance(modules, dict)
    for name in ("model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"):
        weights[name] = (name, Copy.SAME)
    for path in ("", "model", "model.embed_tokens", "model.norm", "model.rotary_emb", "lm_head"):
        modules[path] = path
    for layer in range(LAYERS):
        _layer_truth(fam, layer, pair, unpaired)
    pair.notes["unpaired"] = tuple(unpaired)
    return pair


_MOE = dict(
    num_experts=EXPERTS, num_experts_per_tok=2, moe_intermediate_size=MOE_INTER, norm_topk_prob=True
)

_FAMILIES = (
    _Family("Llama", "llama", "LlamaForCausalLM", fused_qkv=False, fused_mlp=False),
    _Family("Qwen2", "qwen2", "Qwen2ForCausalLMDeprecated", qkv_bias=True),
    _Family("Qwen3", "qwen3", "Qwen3ForCausalLMDeprecated", qk_norm=True),
    _Family(
        "Qwen3Moe",
        "qwen3_moe",
        "Qwen3MoeForCausalLMDeprecated",
        dict(_MOE),
        qk_norm=True,
        moe="qwen3",
    ),
    _Family(
        "Qwen2Moe",
        "qwen2_moe",
        "Qwen2MoeForCausalLMDeprecated",
        dict(_MOE, shared_expert_intermediate_size=INTER),
        qkv_bias=True,
        moe="qwen2",
    ),
    _Family(
        "DeepseekV3",
        "deepseek_v3",
        "DeepseekV3ForCausalLM",
        dict(
            _MOE,
            num_key_value_heads=HEADS,
            head_dim=ROPE_DIM,
            n_routed_experts=EXPERTS,
            n_shared_experts=1,
            n_group=1,
            topk_group=1,
            first_k_dense_replace=1,
            routed_scaling_factor=2.5,
            q_lora_rank=Q_LORA,
            kv_lora_rank=KV_LORA,
            qk_nope_head_dim=NOPE_DIM,
            qk_rope_head_dim=ROPE_DIM,
            v_head_dim=HEAD_DIM,
        ),
        fused_mlp=False,
        moe="deepseek",
        dense_layers=1,
        mla=True,
    ),
    _Family(
        "Phi3",
        "phi3",
        "Phi3ForCausalLM",
        dict(pad_token_id=0, bos_token_id=1, eos_token_id=2),
        fused_alike=True,
        dropouts=("resid_attn_dropout", "resid_mlp_dropout"),
        act_a="activation_fn",
    ),
)

PAIRS = tuple(
    PortPair(f"transformers/{fam.hf}", "decoders", lambda fam=fam: _build(fam)) for fam in _FAMILIES
)
