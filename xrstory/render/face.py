"""A speaking face on a glTF character's morph targets: visemes, blinks, and the voice envelope.

The TTS gives viseme classes with start times (``xrstory/voice/tts.py``: espeak's phonemes ->
PP FF TH DD kk CH SS RR aa E I O U rest); the mixer reports the class under the playhead with
the voice's envelope. ``Face`` maps each class to weights of the character's morph targets
(the scene file's ``appearance.visemes``: class -> {target: weight}), eases between mouth
shapes so they blend rather than snap, scales them by the envelope, and adds blinks at
irregular intervals (seeded per character: renders are reproducible). No GL, no per-vertex work.
"""

from __future__ import annotations

import math
import random

import numpy as np

VISEME_CLASSES = ("PP", "FF", "TH", "DD", "kk", "CH", "SS", "RR", "aa", "E", "I", "O", "U", "rest")
MOUTH_RATE = 28.0  # 1/s: how fast the mouth moves towards the current shape
BLINK_S = 0.16  # one blink, closing and opening


class Face:
    """``targets``: morph target name -> list of (node, index) where it lives (a character may
    carry the same target on several meshes). ``visemes``: class -> {target: weight}."""

    def __init__(self, targets: dict[str, list[tuple[int, int]]], visemes: dict[str, dict[str, float]],
                 blink: str | None, seed: str, open_target: str | None = None):
        self.targets = targets
        names = sorted({t for shape in visemes.values() for t in shape if t in targets})
        self.names = names
        self.shapes = {cls: np.array([shape.get(n, 0.0) for n in names], np.float32) for cls, shape in visemes.items()}
        # with no viseme known (a voice without phoneme timings), the envelope opens the jaw
        fallback = open_target if open_target in targets else (names[0] if names else None)
        self.envelope_shape = (np.array([1.0 if n == fallback else 0.0 for n in names], np.float32)
                               if "aa" not in self.shapes else self.shapes["aa"])
        self.mouth = np.zeros(len(names), np.float32)
        self.blink = blink if blink in targets else None
        self._rng = random.Random(seed)
        self._next_blink = self._rng.uniform(1.0, 3.5)
        self._blink_t = -1.0
        self.time = 0.0

    def update(self, dt: float, level: float, viseme: str) -> None:
        self.time += dt
        if viseme in self.shapes:
            target = self.shapes[viseme] * min(1.0, 0.35 + 1.3 * level) if level > 0.02 else self.mouth * 0.0
        else:
            target = self.envelope_shape * min(1.0, level * 1.4)
        k = 1.0 - math.exp(-MOUTH_RATE * dt) if dt > 0 else 1.0
        self.mouth += (target - self.mouth) * k
        if self._blink_t < 0 and self.time >= self._next_blink:
            self._blink_t = 0.0
        elif self._blink_t >= 0:
            self._blink_t += dt
            if self._blink_t > BLINK_S:
                self._blink_t = -1.0
                self._next_blink = self.time + self._rng.uniform(2.0, 5.5)

    @property
    def blink_weight(self) -> float:
        if self._blink_t < 0:
            return 0.0
        return 1.0 - abs(2.0 * self._blink_t / BLINK_S - 1.0)

    def apply(self, weights: dict[int, np.ndarray]) -> None:
        """Write the face over the pose's morph weights (code wins over a clip's face keys)."""
        for name, w in zip(self.names, self.mouth, strict=True):
            for node, i in self.targets[name]:
                weights[node][i] = max(float(w), 0.0)
        if self.blink:
            for node, i in self.targets[self.blink]:
                weights[node][i] = max(weights[node][i], self.blink_weight)
