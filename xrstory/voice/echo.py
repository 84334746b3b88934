"""Echo guard: the characters' own voices must never be heard as the player.

Three parts, each measured in tests/test_voice_duplex.py and bench.py:
1. ``AcousticPath`` models the leak in headless mode: the mixed output reaches the microphone at a
   configurable gain, after a delay and a few room reflections (so the canceller has real work).
2. ``EchoCanceller`` removes the leak using the reference signal (what the mixer played): a
   partitioned-block frequency-domain NLMS adaptive filter (the classic AEC structure). It learns
   the path, so it works with real speakers too, as long as the acoustic delay fits its taps.
   Adaptation freezes while the player is speaking (double talk) so their voice is not "learned".
3. ``echo_overlap`` compares a transcript with what the characters just said; a transcript that is
   mostly the characters' own words is rejected. This is the backstop for real rooms where the
   canceller's residual can still trip the VAD (long reverb, non-linear speakers).
Why not gating alone (mute the mic while a character talks): it would make barge-in impossible.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from xrstory.voice.events import EAR_RATE


@dataclass(frozen=True)
class AcousticPathConfig:
    gain: float = 0.5  # direct-path gain from the mixed output to the microphone
    delay_ms: float = 6.0  # speaker -> mic flight time plus device latency
    reflections: tuple[tuple[float, float], ...] = ((14.0, 0.35), (29.0, 0.2), (47.0, 0.1))  # (ms, rel. gain)


class AcousticPath:
    """Streams the reference (16 kHz mono mix) through a sparse room impulse response."""

    def __init__(self, config: AcousticPathConfig | None = None) -> None:
        c = self.config = config or AcousticPathConfig()
        taps = [(c.delay_ms, 1.0)] + [(c.delay_ms + ms, g) for ms, g in c.reflections]
        n = int(max(ms for ms, _ in taps) * EAR_RATE / 1000) + 1
        self.impulse = np.zeros(n, np.float32)  # (n,) at 16 kHz
        for ms, g in taps:
            self.impulse[int(ms * EAR_RATE / 1000)] += c.gain * g
        self._tail = np.zeros(n - 1, np.float32)

    def process(self, reference: np.ndarray) -> np.ndarray:
        """(k,) reference -> (k,) echo as the microphone picks it up."""
        full = np.convolve(np.concatenate([self._tail, reference]), self.impulse)[len(self._tail):len(self._tail) + len(reference)]
        self._tail = np.concatenate([self._tail, reference])[-len(self._tail):]
        return full.astype(np.float32)


class EchoCanceller:
    """Partitioned-block frequency-domain NLMS (overlap-save). ``block`` samples per call,
    ``partitions * block`` taps of echo path (default 2 x 512 = 64 ms at 16 kHz; fewer partitions converge
    faster; measured on the default AcousticPath over a 12 s line, first / second half: 15.6 / 33.8 dB
    with espeak-ng, 14.3 / 34.6 dB with the neural voice, and stable under a loud tonal cue)."""

    def __init__(self, block: int = 512, partitions: int = 2, step: float = 0.8, smoothing: float = 0.7,
                 floor: float = 0.3) -> None:
        self.block, self.partitions, self.step, self.smoothing, self.floor = block, partitions, step, smoothing, floor
        bins = block + 1
        self._w = np.zeros((partitions, bins), np.complex128)  # filter spectra, newest partition first
        self._x = np.zeros((partitions, bins), np.complex128)  # reference spectra history
        self._prev_ref = np.zeros(block)
        self._power = np.full(bins, 1e-6)
        self.adapting = True

    def process(self, mic: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """(block,) mic and (block,) reference -> (block,) mic with the echo removed."""
        b = self.block
        x = np.fft.rfft(np.concatenate([self._prev_ref, reference]))  # (b+1,)
        self._prev_ref = np.asarray(reference, float)
        self._x = np.roll(self._x, 1, axis=0)
        self._x[0] = x
        y = np.fft.irfft((self._w * self._x).sum(axis=0))[b:]  # echo estimate (b,)
        e = np.asarray(mic, float) - y
        if self.adapting and np.any(reference):
            self._power = self.smoothing * self._power + (1 - self.smoothing) * np.abs(x) ** 2
            ef = np.fft.rfft(np.concatenate([np.zeros(b), e]))
            # regularised twice. Absolutely: a bin whose reference power is below -60 dBFS white
            # noise (1024 * 1e-6) takes a proportionally smaller step; with 1e-8 the canceller
            # diverged on the neural voice, whose pauses are ~-100 dB noise, not exact zeros (ERLE
            # -3.6 dB where espeak's exact zeros gave 47.6). Relatively (``floor`` x the mean bin
            # power): with a tonal reference (the horn cue of a trigger over a line) the quiet bins
            # got steps so large that the gradient constraint, which spreads each update over
            # neighbouring bins, fed the loud bins' error into them and the filter diverged
            # (residual +175 dB, which the VAD heard as the player barging in); floor 0.3 kept it
            # at -57..-76 dB on that recording (0.1: -30..-58; 0.01 diverged)
            p = self._power * self.partitions
            mu = self.step / (p + max(1e-3, self.floor * float(p.mean())))
            for m in range(self.partitions):
                g = np.fft.irfft(np.conj(self._x[m]) * ef * mu)
                g[b:] = 0.0  # gradient constraint: keep the filter causal and block-long
                self._w[m] += np.fft.rfft(g)
        return e.astype(np.float32)


_WORD = re.compile(r"[a-z0-9']+")


def words_of(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def echo_overlap(heard: str, spoken: list[str]) -> float:
    """Fraction of the heard words that occur in what the characters recently said (0..1)."""
    h = words_of(heard)
    if not h:
        return 0.0
    pool = set(w for s in spoken for w in words_of(s))
    return sum(w in pool for w in h) / len(h)


def erle_db(mic: np.ndarray, residual: np.ndarray) -> float:
    """Echo return loss enhancement: how much quieter the residual is than the mic (dB)."""
    pm = float(np.mean(np.square(mic, dtype=np.float64))) + 1e-12
    pr = float(np.mean(np.square(residual, dtype=np.float64))) + 1e-12
    return 10 * np.log10(pm / pr)
