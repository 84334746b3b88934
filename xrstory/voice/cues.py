"""Trigger sound cues and the ambient bed, synthesised with numpy (deterministic, no files to ship),
or read from ``assets/sounds/<name>.wav`` when an author provides one.

The demo scene names: crackle, pour, creak, thud, whoosh, static, flare, horn, bell.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from xrstory.voice.audio import read_audio


def _t(seconds: float, rate: int) -> np.ndarray:
    return np.arange(int(seconds * rate)) / rate


def _env(n: int, attack: float, rate: int, decay: float) -> np.ndarray:
    t = np.arange(n) / rate
    return np.minimum(1.0, t / max(attack, 1e-4)) * np.exp(-t / decay)


def _lowpass(x: np.ndarray, alpha: float) -> np.ndarray:
    from scipy.signal import lfilter

    return lfilter([alpha], [1, alpha - 1], x)


def crackle(rate: int, rng: np.random.Generator) -> np.ndarray:
    n = int(2.0 * rate)
    x = _lowpass(rng.normal(0, 0.03, n), 0.2)
    pops = rng.choice(n - 400, 60, replace=False)
    for p in pops:
        x[p:p + 400] += rng.uniform(0.2, 0.6) * np.exp(-np.arange(400) / 40) * rng.choice([-1, 1])
    return x * np.minimum(1, np.arange(n) / (0.2 * rate))


def pour(rate: int, rng: np.random.Generator) -> np.ndarray:
    t = _t(1.5, rate)
    f = 400 + 500 * t / t[-1]  # rising pitch as the cup fills
    bubbles = np.sin(2 * np.pi * np.cumsum(f) / rate) * (rng.random(len(t)) > 0.7)
    return 0.3 * _lowpass(bubbles + rng.normal(0, 0.3, len(t)), 0.1) * np.hanning(len(t))


def creak(rate: int, rng: np.random.Generator) -> np.ndarray:
    t = _t(1.2, rate)
    f0 = 90 + 40 * np.sin(2 * np.pi * 0.8 * t)
    pulses = (np.sin(2 * np.pi * np.cumsum(f0) / rate) > 0.95).astype(float)
    return 0.6 * _lowpass(pulses, 0.3) * np.hanning(len(t))


def thud(rate: int, rng: np.random.Generator) -> np.ndarray:
    t = _t(0.6, rate)
    return 0.8 * np.sin(2 * np.pi * (60 * t - 30 * t**2)) * _env(len(t), 0.003, rate, 0.09)


def whoosh(rate: int, rng: np.random.Generator) -> np.ndarray:
    t = _t(1.4, rate)
    sweep = np.hanning(len(t))
    noise = rng.normal(0, 1, len(t))
    # brightness follows loudness: crossfade a dark and a bright filtering of the same noise
    return 0.5 * ((1 - sweep) * _lowpass(noise, 0.05) + sweep * _lowpass(noise, 0.25)) * sweep


def static(rate: int, rng: np.random.Generator) -> np.ndarray:
    t = _t(1.5, rate)
    gate = np.repeat(rng.random(len(t) // 400 + 1) > 0.4, 400)[: len(t)]
    return 0.25 * rng.normal(0, 1, len(t)) * (0.4 + 0.6 * gate) * np.hanning(len(t)) ** 0.3


def flare(rate: int, rng: np.random.Generator) -> np.ndarray:
    hiss = 0.4 * _lowpass(rng.normal(0, 1, int(2.0 * rate)), 0.4) * np.exp(-_t(2.0, rate) / 0.9)
    hiss[: int(0.05 * rate)] += 0.8 * np.exp(-_t(0.05, rate) / 0.01) * rng.normal(0, 1, int(0.05 * rate))
    return hiss


def horn(rate: int, rng: np.random.Generator) -> np.ndarray:
    t = _t(2.5, rate)
    tone = sum(np.sin(2 * np.pi * 110 * k * t) / k for k in range(1, 7))
    return 0.25 * tone * np.minimum(1, t / 0.15) * np.minimum(1, (t[-1] - t) / 0.4)


def bell(rate: int, rng: np.random.Generator) -> np.ndarray:
    t = _t(3.0, rate)
    partials = ((1.0, 1.0), (2.76, 0.5), (5.4, 0.25), (8.93, 0.12))  # inharmonic bell partials
    return 0.3 * sum(a * np.sin(2 * np.pi * 440 * r * t) * np.exp(-t * (0.8 + r * 0.3)) for r, a in partials)


def ambient_storm(rate: int, rng: np.random.Generator, seconds: float = 8.0) -> np.ndarray:
    """A loopable wind-and-rain bed (ends fade into starts)."""
    n = int(seconds * rate)
    wind = _lowpass(rng.normal(0, 1, n), 0.01) * (0.6 + 0.4 * np.sin(2 * np.pi * _t(seconds, rate) / seconds))
    rain = 0.15 * _lowpass(rng.normal(0, 1, n), 0.5)
    x = 0.1 * wind + 0.05 * rain
    fade = int(0.5 * rate)
    x[:fade] = x[:fade] * np.linspace(0, 1, fade) + x[-fade:] * np.linspace(1, 0, fade)
    return x[:-fade]


CUES: dict[str, Callable[[int, np.random.Generator], np.ndarray]] = {
    f.__name__: f for f in (crackle, pour, creak, thud, whoosh, static, flare, horn, bell)
}


def load_cue(name: str, rate: int, sounds_dir: str | Path | None = None) -> np.ndarray:
    """(n,) float32 at ``rate``: ``sounds_dir/<name>.wav`` if present, else the synthesised cue."""
    if sounds_dir is not None:
        path = Path(sounds_dir) / f"{name}.wav"
        if path.is_file():
            return read_audio(path, rate)
    if name not in CUES:
        raise KeyError(f"unknown sound cue '{name}': no {name}.wav in {sounds_dir} and none synthesised "
                       f"(known: {', '.join(sorted(CUES))})")
    # seeded per name: the same cue sounds the same every run
    rng = np.random.default_rng(sum(map(ord, name)))
    x = np.asarray(CUES[name](rate, rng), np.float32)
    return x / max(1.0, float(np.abs(x).max()) / 0.9)
