"""Small statistics for benchmark figures: median and spread over repeats, percentiles over
samples. Values are rounded for reports; None in, None out (a figure that could not be measured)."""

from __future__ import annotations

import statistics

import numpy as np


def spread(values: list[float], digits: int = 2) -> dict[str, float | int | None]:
    """Median, min, max and count of repeated measurements."""
    if not values:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": round(statistics.median(values), digits), "min": round(min(values), digits),
            "max": round(max(values), digits), "n": len(values)}


def percentiles(values: list[float], qs: tuple[int, ...] = (50, 95), digits: int = 2) -> dict[str, float | int | None]:
    """{"p50": ..., "p95": ..., "n": ...} over samples; None for each percentile when empty."""
    out: dict[str, float | int | None] = {f"p{q}": None for q in qs}
    if values:
        a = np.asarray(values, np.float64)
        out.update({f"p{q}": round(float(np.percentile(a, q)), digits) for q in qs})
    out["n"] = len(values)
    return out


def ratio(a: float | None, b: float | None, digits: int = 3) -> float | None:
    return round(a / b, digits) if a is not None and b else None
