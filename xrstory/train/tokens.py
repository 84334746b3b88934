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
    trigger_span: tuple[int, int] = (0, 0)  # [start, stop) of the trigger-list tokens in input_ids


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
    in_span = [b > start and a < stop for a, b in enc["offset_mapping"]]
    weights = [trigger_weight if inside else 1.0 for inside in in_span]
    first = len(prompt) + in_span.index(True)
    span = (first, first + sum(in_span))
    return Tokenized(prompt + target, [IGNORE] * len(prompt) + target, [0.0] * len(prompt) + weights, span)


def collate(batch: list[Tokenized], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded tensors: input_ids, attention_mask, labels (batch, max_len)."""
    n = max(len(b.input_ids) for b in batch)
    ids = torch.full((len(batch), n), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), n), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), n), dtype=torch.long)
    weights = torch.zeros((len(batch), n), dtype=torch.float32)
    span = torch.zeros((len(batch), n), dtype=torch.bool)
    for i, b in enumerate(batch):
        k = len(b.input_ids)
        ids[i, :k] = torch.tensor(b.input_ids)
        labels[i, :k] = torch.tensor(b.labels)
        mask[i, :k] = 1
        weights[i, :k] = torch.tensor(b.weights) if b.weights else (labels[i, :k] != IGNORE).float()
        span[i, b.trigger_span[0]:b.trigger_span[1]] = True
    return {"input_ids": ids, "attention_mask": mask, "labels": labels, "weights": weights, "trigger_span": span}


def _reply_logits(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits at the positions that predict a reply token, their labels, and the (B, T-1) mask of them."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # PEFT wrapper or plain
    hidden = base.get_decoder()(input_ids=batch["input_ids"],
                                attention_mask=batch["attention_mask"]).last_hidden_state  # (B, T, H)
    labels = batch["labels"][:, 1:]  # position t predicts token t+1
    keep = labels != IGNORE  # (B, T-1) bool
    return base.get_output_embeddings()(hidden[:, :-1][keep]).float(), labels[keep], keep


def reply_loss(model, batch: dict[str, torch.Tensor], weighted: bool = False) -> tuple[torch.Tensor, int]:
    """Mean cross-entropy over reply tokens (weighted by ``batch["weights"]`` when ``weighted``),
    and how many reply tokens there were.

    The output head runs only at the positions that predict a reply token (~40 of ~650 per
    example): the full (batch, len, 49k-vocab) logits would cost ~20% of the compute and most
    of the memory of a training step for nothing.
    """
    logits, labels, keep = _reply_logits(model, batch)  # (n, vocab), (n,)
    n = int(keep.sum())
    per_token = torch.nn.functional.cross_entropy(logits, labels, reduction="none")  # (n,)
    if weighted and "weights" in batch:
        w = batch["weights"][:, 1:][keep]  # (n,)
        return (per_token * w).sum() / w.sum().clamp(min=1e-9), n
    return per_token.sum() / max(n, 1), n


@dataclass(frozen=True)
class ReplyScores:
    """Validation sums for one batch (add them up over batches, divide at the end)."""

    loss: float  # reply-token cross-entropy, summed over tokens
    weighted_loss: float  # the same, each token times its training weight
    weight: float  # sum of those weights
    tokens: int  # reply tokens scored
    trigger_exact: int  # examples with every trigger-list token right under teacher forcing
    exact_rows: tuple[bool, ...] = ()  # the same, per example of the batch


@torch.no_grad()
def reply_scores(model, batch: dict[str, torch.Tensor]) -> ReplyScores:
    """Teacher-forced sums for one batch; an example counts as ``trigger_exact`` when greedy
    decoding would name exactly its gold triggers."""
    logits, labels, keep = _reply_logits(model, batch)
    per_token = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    w = batch["weights"][:, 1:][keep]
    right = logits.argmax(-1) == labels  # (n,)
    span = batch["trigger_span"][:, 1:][keep]  # (n,) the positions that predict a trigger-list token
    rows = keep.nonzero()[:, 0]  # example index of each reply position
    wrong_rows = set(rows[span & ~right].tolist())
    return ReplyScores(float(per_token.sum()), float((per_token * w).sum()), float(w.sum()), int(keep.sum()),
                       keep.shape[0] - len(wrong_rows), tuple(i not in wrong_rows for i in range(keep.shape[0])))
