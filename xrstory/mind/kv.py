"""Forward passes with a KV cache for the decoder, and the per-character prompt-prefix caches.

Two backends with one small interface (``start(key, prefix_ids) -> cached tokens``,
``feed(ids) -> logits of the last position``):

- ``LlamaRunner``: our own forward for Llama-architecture models (SmolLM2, Llama, ...), nanoGPT
  style: a preallocated (static) KV cache, rotary tables computed once, one SDPA call per layer.
  It calls the model's own modules (so merged LoRA and int8-quantised Linears work) but skips
  transformers' per-call machinery (mask building, cache objects, output dataclasses), which
  is a large share of a 135M model's step time on a CPU.
- ``HFBackend``: any causal LM through its ``forward`` with a ``DynamicCache``, for other
  architectures.

A stable prefix (a character's system message) is prefilled once per key; a later turn with
the same prefix restores its KV instead of recomputing it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

Prefix = tuple[int, ...]


class HFBackend:
    """Any transformers causal LM: DynamicCache per key, cropped back to the prefix each turn."""

    def __init__(self, model, device: str):
        self.model, self.device = model, device
        self._caches: dict[str, tuple[Prefix, object]] = {}
        self._cache = None

    def feed(self, ids: Sequence[int]) -> torch.Tensor:
        x = torch.tensor([list(ids)], dtype=torch.long, device=self.device)  # (1, T)
        out = self.model(input_ids=x, cache=self._cache, use_cache=True, logits_to_keep=1)
        return out.logits[0, -1].float().cpu()  # (V,)

    def start(self, key: str, prefix_ids: Sequence[int]) -> int:
        from transformers import DynamicCache

        prefix = tuple(prefix_ids)
        held = self._caches.get(key)
        if held is not None and held[0] == prefix:
            self._cache = held[1]
            extra = self._cache.get_seq_length() - len(prefix)
            if extra > 0:
                self._cache.crop(-extra)  # drop the previous turn's suffix and reply
            return len(prefix)
        self._cache = DynamicCache(config=self.model.config)
        if prefix:
            self.feed(prefix)
        self._caches[key] = (prefix, self._cache)
        return 0

    def forget(self, key: str | None = None) -> None:
        if key is None:
            self._caches.clear()
        else:
            self._caches.pop(key, None)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class LlamaRunner:
    """Our forward for Llama-architecture models with a static KV cache (see the module docstring)."""

    @staticmethod
    def supports(model) -> bool:
        cfg = model.config
        rope = getattr(cfg, "rope_parameters", None) or {}
        return (cfg.model_type in ("llama",) and cfg.hidden_act == "silu" and getattr(cfg, "pretraining_tp", 1) == 1
                and rope.get("rope_type", "default") == "default" and hasattr(model, "model")
                and hasattr(model.model, "rotary_emb"))

    def __init__(self, model, device: str, max_len: int = 2048):
        cfg = model.config
        self.model, self.device = model, device
        self.layers = list(model.model.layers)
        self.embed, self.norm, self.lm_head = model.model.embed_tokens, model.model.norm, model.lm_head
        self.n_heads, self.n_kv = cfg.num_attention_heads, cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.max_len = min(max_len, cfg.max_position_embeddings)
        dtype = self.embed.weight.dtype
        shape = (len(self.layers), 1, self.n_kv, self.max_len, self.head_dim)  # (L, B, kv heads, T, hd)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.length = 0  # tokens held in the cache
        # rotary tables for every position, as transformers computes them: (max_len, hd)
        rotary = model.model.rotary_emb
        pos = torch.arange(self.max_len, dtype=torch.float32, device=device)
        freqs = pos[:, None] * rotary.inv_freq.to(device=device, dtype=torch.float32)[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        self.cos = (emb.cos() * rotary.attention_scaling).to(dtype)
        self.sin = (emb.sin() * rotary.attention_scaling).to(dtype)
        self.scaling = self.head_dim ** -0.5
        self._prefixes: dict[str, tuple[Prefix, torch.Tensor, torch.Tensor]] = {}

    def feed(self, ids: Sequence[int]) -> torch.Tensor:
        """Run ``ids`` after the cached tokens; (V,) float32 logits of the last position."""
        n = len(ids)
        p0, p1 = self.length, self.length + n
        if p1 > self.max_len:
            raise ValueError(f"prompt and reply need {p1} tokens, more than the KV cache holds ({self.max_len}); "
                             f"lower PromptBudget.max_tokens or max_new_tokens")
        x = self.embed(torch.tensor([list(ids)], dtype=torch.long, device=self.device))  # (1, n, D)
        cos, sin = self.cos[p0:p1], self.sin[p0:p1]  # (n, hd)
        mask = None
        if n > 1:  # query i (position p0+i) sees keys 0..p0+i
            mask = torch.ones(n, p1, dtype=torch.bool, device=self.device).tril(diagonal=p0)
        for li, layer in enumerate(self.layers):
            attn, mlp = layer.self_attn, layer.mlp
            h = layer.input_layernorm(x)
            q = attn.q_proj(h).view(1, n, self.n_heads, self.head_dim).transpose(1, 2)  # (1, H, n, hd)
            k = attn.k_proj(h).view(1, n, self.n_kv, self.head_dim).transpose(1, 2)  # (1, KV, n, hd)
            v = attn.v_proj(h).view(1, n, self.n_kv, self.head_dim).transpose(1, 2)
            q = q * cos + _rotate_half(q) * sin
            k = k * cos + _rotate_half(k) * sin
            self.k[li, :, :, p0:p1] = k
            self.v[li, :, :, p0:p1] = v
            o = F.scaled_dot_product_attention(q, self.k[li, :, :, :p1], self.v[li, :, :, :p1], attn_mask=mask,
                                               scale=self.scaling, enable_gqa=self.n_kv != self.n_heads)
            x = x + attn.o_proj(o.transpose(1, 2).reshape(1, n, self.n_heads * self.head_dim))
            h = layer.post_attention_layernorm(x)
            x = x + mlp.down_proj(F.silu(mlp.gate_proj(h)) * mlp.up_proj(h))
        self.length = p1
        return self.lm_head(self.norm(x[:, -1:]))[0, -1].float().cpu()  # (V,)

    def start(self, key: str, prefix_ids: Sequence[int]) -> int:
        prefix = tuple(prefix_ids)
        held = self._prefixes.get(key)
        if held is not None and held[0] == prefix:
            n = len(prefix)
            self.k[:, :, :, :n] = held[1]  # ~L*KV*n*hd values: a few MB, a ms or two
            self.v[:, :, :, :n] = held[2]
            self.length = n
            return n
        self.length = 0
        if prefix:
            self.feed(prefix)
        n = len(prefix)
        self._prefixes[key] = (prefix, self.k[:, :, :, :n].clone(), self.v[:, :, :, :n].clone())
        return 0

    def forget(self, key: str | None = None) -> None:
        if key is None:
            self._prefixes.clear()
        else:
            self._prefixes.pop(key, None)


def make_backend(model, device: str, prefer_runner: bool = True) -> LlamaRunner | HFBackend:
    if prefer_runner and LlamaRunner.supports(model):
        return LlamaRunner(model, device)
    return HFBackend(model, device)
