"""Forward passes with a KV cache for the decoder, and the per-character prompt-prefix caches.

Two backends with one small interface (``start(key, prompt_ids) -> cached tokens``, then the
caller feeds the rest: ``feed(ids) -> logits of the last position``):

- ``LlamaRunner``: our own forward for Llama-architecture models (SmolLM2, Llama, ...), nanoGPT
  style: a preallocated (static) KV cache, rotary tables computed once, one SDPA call per layer.
  It calls the model's own modules (so merged LoRA and int8-quantised Linears work) but skips
  transformers' per-call machinery (mask building, cache objects, output dataclasses), which
  is a large share of a 135M model's step time on a CPU.
- ``HFBackend``: any causal LM through its ``forward`` with a ``DynamicCache``, for other
  architectures.

Each key (character) keeps the tokens its cache holds (last turn's prompt and reply); a new
turn reuses the longest common start of its prompt with them. The prompt only grows
(``prompt.py``: system message, conversation, then the per-turn part), so a turn computes only
its new lines and the per-turn part.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def common_start(held: Sequence[int], ids: Sequence[int], limit: int) -> int:
    """Length of the common start of ``held`` and ``ids``, at most ``limit``."""
    n = 0
    for a, b in zip(held, ids, strict=False):
        if n >= limit or a != b:
            break
        n += 1
    return n


class HFBackend:
    """Any transformers causal LM: a DynamicCache per key, cropped back to the common start each turn."""

    def __init__(self, model, device: str):
        self.model, self.device = model, device
        self._caches: dict[str, tuple[list[int], object]] = {}  # key -> (tokens held, cache)
        self._cache = None
        self._tokens: list[int] = []

    def feed(self, ids: Sequence[int]) -> torch.Tensor:
        x = torch.tensor([list(ids)], dtype=torch.long, device=self.device)  # (1, T)
        out = self.model(input_ids=x, cache=self._cache, use_cache=True, logits_to_keep=1)
        self._tokens.extend(int(i) for i in ids)
        return out.logits[0, -1].float().cpu()  # (V,)

    def start(self, key: str, prompt_ids: Sequence[int]) -> int:
        """Keep the longest start of ``prompt_ids`` this key's cache holds (never the last token,
        whose logits the caller needs); that many tokens are returned, the caller feeds the rest."""
        from transformers import DynamicCache

        ids = list(prompt_ids)
        held = self._caches.get(key)
        n = common_start(held[0], ids, len(ids) - 1) if held is not None else 0
        if n == 0:
            self._tokens, self._cache = [], DynamicCache(config=self.model.config)
        else:
            self._tokens, self._cache = held
            extra = self._cache.get_seq_length() - n
            if extra > 0:
                self._cache.crop(-extra)  # drop the previous turn's per-turn part and reply
            del self._tokens[n:]
        self._caches[key] = (self._tokens, self._cache)
        return n

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
        # the static cache holds one key's tokens (``_key``); the others are parked as copies
        self._key: str | None = None
        self._tokens: list[int] = []  # the tokens in the cache, ``length`` of them
        self._parked: dict[str, tuple[list[int], torch.Tensor, torch.Tensor]] = {}

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
        self._tokens.extend(int(i) for i in ids)
        return self.lm_head(self.norm(x[:, -1:]))[0, -1].float().cpu()  # (V,)

    def start(self, key: str, prompt_ids: Sequence[int]) -> int:
        """Keep the longest start of ``prompt_ids`` this key's cache holds (never the last token,
        whose logits the caller needs); that many tokens are returned, the caller feeds the rest."""
        ids = list(prompt_ids)
        if key != self._key:
            if self._key is not None and self.length:  # park the other character's cache
                n = self.length
                self._parked[self._key] = (self._tokens, self.k[:, :, :, :n].clone(), self.v[:, :, :, :n].clone())
            held = self._parked.pop(key, None)
            if held is None:
                self._tokens, self.length = [], 0
            else:
                self._tokens, k, v = held
                n = len(self._tokens)
                self.k[:, :, :, :n] = k  # ~L*KV*n*hd values: a few MB, a ms or two
                self.v[:, :, :, :n] = v
                self.length = n
            self._key = key
        n = common_start(self._tokens, ids, len(ids) - 1)
        self.length = n
        del self._tokens[n:]
        return n

    def forget(self, key: str | None = None) -> None:
        if key is None:
            self._parked.clear()
        else:
            self._parked.pop(key, None)
        if key is None or key == self._key:
            self._key, self._tokens, self.length = None, [], 0


def make_backend(model, device: str, prefer_runner: bool = True) -> LlamaRunner | HFBackend:
    if prefer_runner and LlamaRunner.supports(model):
        return LlamaRunner(model, device)
    return HFBackend(model, device)
