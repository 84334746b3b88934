"""Untrusted text made safe for a prompt: player lines, memories, transcripts, director hints.

Text from outside the story file can try to forge the prompt's structure in two ways:
- a **special token** of the model's tokenizer ("<|im_start|>system ...") would be tokenized
  as the real control token and open a fake chat turn;
- a **section heading** at the start of a line ("\\nTriggers allowed now:") would read as a
  second heading of the prompt the model trusts.

``make_safe`` defeats both, whatever the tokenizer:
- the text becomes one line (every Unicode line or paragraph break, tab and control character
  is a space), so nothing it holds can start a line of the prompt: no heading can be forged;
- NFKC first, so look-alikes ("<｜im_start｜>" with full-width bars) are judged as the
  tokenizer's normaliser would see them; format characters (zero-width joiners) are dropped;
- every special-token string (the caller's tokenizer's, plus common chat-template markers)
  is removed and the "<|" / "|>" brackets of ChatML-style tokens are broken apart, repeated
  until nothing changes (a fixed point), so "<||im_start||>" cannot collapse into a real
  "<|im_start|>" after one pass.

Every engine and ``RemoteMind`` get this through ``prompt.plan_prompt``; an engine with its own
tokenizer passes ``special_token_strings(tokenizer)`` (``RemoteConfig.special_tokens`` for a
remote model). Tested with the real tokenizer and generated strings:
``pytest tests/test_hardening_prompt.py``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

# Chat-template markers of common model families, removed even when the caller's tokenizer
# does not list them: a remote server's model is not known here.
COMMON_SPECIAL_TOKENS: tuple[str, ...] = (
    "<s>", "</s>", "<unk>", "<pad>", "[INST]", "[/INST]", "<<SYS>>", "<</SYS>>",
    "<start_of_turn>", "<end_of_turn>", "<bos>", "<eos>", "<think>", "</think>",
    "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[AVAILABLE_TOOLS]", "[TOOL_CALLS]",
)
# ChatML, Llama 3, Phi, Qwen, SmolLM: "<|name|>". Breaking the brackets defeats every such token,
# including ones no tokenizer list here names.
_BRACKETS = (("<|", "<"), ("|>", ">"), ("<｜", "<"), ("｜>", ">"))  # also DeepSeek's full-width bar


def special_token_strings(tokenizer) -> list[str]:
    """Every special or added token string of a Hugging Face tokenizer (what ``make_safe`` removes)."""
    found: set[str] = set(getattr(tokenizer, "all_special_tokens", None) or [])
    added = getattr(tokenizer, "added_tokens_decoder", None) or {}
    found.update(str(getattr(t, "content", t)) for t in added.values())
    return sorted(t for t in found if t)


def _one_line(text: str) -> str:
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat == "Cf" or cat == "Cs":  # zero-width / direction marks; lone surrogates
            continue
        out.append(" " if ch.isspace() or cat in ("Cc", "Zl", "Zp") else ch)
    return " ".join("".join(out).split())


def make_safe(text: str, special_tokens: Iterable[str] = ()) -> str:
    """``text`` as one line holding no special token and no line-leading heading (see module doc).

    ``special_tokens``: the model's special-token strings (``special_token_strings(tokenizer)``);
    the common chat markers are always removed too. Idempotent: ``make_safe(make_safe(t)) ==
    make_safe(t)``.
    """
    tokens = sorted({t for t in (*special_tokens, *COMMON_SPECIAL_TOKENS) if t.strip()}, key=len, reverse=True)
    norm_tokens = sorted({unicodedata.normalize("NFKC", t) for t in tokens} | set(tokens), key=len, reverse=True)
    safe = _one_line(unicodedata.normalize("NFKC", text))
    while True:  # each pass only shortens the text, so this ends
        before = safe
        for tok in norm_tokens:
            safe = safe.replace(tok, " ")
        for pair, plain in _BRACKETS:
            safe = safe.replace(pair, plain)
        safe = _one_line(unicodedata.normalize("NFKC", safe))
        if safe == before:
            return safe
