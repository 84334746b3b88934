"""Pure metric functions for evaluation (no model here, so they are easy to test)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def trigger_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, float]:
    """Micro precision, recall, F1 over trigger ids, and exact-set accuracy (percent, 0..100).

    A turn where both gold and prediction are empty counts as an exact match; it adds no true
    positives, so precision/recall are about the triggers that should (or should not) fire.
    """
    if len(gold) != len(pred):
        raise ValueError(f"gold has {len(gold)} turns, prediction {len(pred)}")
    tp = fp = fn = exact = 0
    for g, p in zip(gold, pred, strict=True):
        g, p = set(g), set(p)
        tp += len(g & p)
        fp += len(p - g)
        fn += len(g - p)
        exact += g == p
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    n = max(len(gold), 1)
    return {"trigger_precision": 100 * precision, "trigger_recall": 100 * recall,
            "trigger_f1": 100 * f1, "trigger_exact": 100 * exact / n}


def perplexity(mean_loss: float) -> float:
    return float(math.exp(min(mean_loss, 50.0)))


def persona_similarity(embeddings: np.ndarray, centroid: np.ndarray) -> float:
    """Mean cosine similarity of reply embeddings (n, d) to a character's centroid (d,)."""
    if embeddings.size == 0:
        return float("nan")
    e = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True).clip(1e-9)
    c = centroid / max(np.linalg.norm(centroid), 1e-9)
    return float((e @ c).mean())
