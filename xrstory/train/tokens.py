"""Examples to token ids, with the loss on reply tokens only.

The prompt is tokenized exactly as the runtime feeds it (``mind.prompt.render_prompt`` and
``prompt_token_ids``: prefix and suffix separately); the target is the canonical reply JSON
followed by the end-of-turn token, so an unconstrained model also learns to stop.

The trigger decision is a handful of tokens at the start of a ~40-token reply, so with a plain
mean it is a few percent of the loss; ``trigger_weight`` scales the loss of the tokens of the
``"triggers": [...]`` member (the training loss only; validation loss and perplexity stay
unweighted).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from xrstory.mind.prompt import prompt_token_ids, render_prompt
from xrstory.train.dataset import Example

IGNORE = -100


@dataclass
class Tokenized:
    input_ids: list[int]
    labels: list[int]  # IGNORE on prompt tokens
    weights: list[float] = field(default_factory=list)  # per-token loss weight (0 on prompt); empty: all 1


TRIGGERS_KEY = '"triggers"'


def tokenize_example(tokenizer, ex: Example, trigger_weight: float = 1.0) -> Tokenized:
    prefix, suffix = render_prompt(tokenizer, ex.messages)
    pre, suf = prompt_token_ids(tokenizer, prefix, suffix)
    prompt = pre + suf
    eot = tokenizer.eos_token or ""
    enc = tokenizer(ex.target + eot, add_special_tokens=False, return_offsets_mapping=True)
    target = list(enc["input_ids"])
    start = ex.target.find(TRIGGERS_KEY)
    stop = ex.target.find("]", start) + 1  # trigger ids never hold ']'
    if start < 0 or stop <= 0:
        raise ValueError(f"{ex.source}: target has no {TRIGGERS_KEY} list: {ex.target!r}")
    # a token overlapping [start, stop) carries the trigger decision
    weights = [trigger_weight if b > start and a < stop else 1.0 for a, b in enc["offset_mapping"]]
    return Tokenized(prompt + target, [IGNORE] * len(prompt) + target, [0.0] * len(prompt) + weights)


def collate(batch: list[Tokenized], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded tensors: input_ids, attention_mask, labels (batch, max_len)."""
    n = max(len(b.input_ids) for b in batch)
    ids = torch.full((len(batch), n), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), n), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), n), dtype=torch.long)
    weights = torch.zeros((len(batch), n), dtype=torch.float32)
    for i, b in enumerate(batch):
        k = len(b.input_ids)
        ids[i, :k] = torch.tensor(b.input_ids)
        labels[i, :k] = torch.tensor(b.labels)
        mask[i, :k] = 1
        weights[i, :k] = torch.tensor(b.weights) if b.weights else (labels[i, :k] != IGNORE).float()
    return {"input_ids": ids, "attention_mask": mask, "labels": labels, "weights": weights}


def reply_loss(model, batch: dict[str, torch.Tensor], weighted: bool = False) -> tuple[torch.Tensor, int]:
    """Mean cross-entropy over reply tokens (weighted by ``batch["weights"]`` when ``weighted``),
    and how many reply tokens there were.

    The output head runs only at the positions that predict a reply token (~40 of ~650 per
    example): the full (batch, len, 49k-vocab) logits would cost ~20% of the compute and most
    of the memory of a training step for nothing.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # PEFT wrapper or plain
    hidden = base.get_decoder()(input_ids=batch["input_ids"],
                                attention_mask=batch["attention_mask"]).last_hidden_state  # (B, T, H)
    labels = batch["labels"][:, 1:]  # position t predicts token t+1
    keep = labels != IGNORE  # (B, T-1) bool
    n = int(keep.sum())
    logits = base.get_output_embeddings()(hidden[:, :-1][keep]).float()  # (n, vocab)
    per_token = torch.nn.functional.cross_entropy(logits, labels[keep], reduction="none")  # (n,)
    if weighted and "weights" in batch:
        w = batch["weights"][:, 1:][keep]  # (n,)
        return (per_token * w).sum() / w.sum().clamp(min=1e-9), n
    return per_token.sum() / max(n, 1), n
