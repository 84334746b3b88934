"""Audio clocks: time measured in samples, advanced by fixed chunks.

``HeadlessClock`` advances only when asked (deterministic, as fast as the CPU allows, or paced to
real time with ``pace=True``); ``RealtimeClock`` is driven by a sound card's callbacks. Both count
frames at the 16 kHz listening rate (``EAR_RATE``) so events from the ear and the mouth compare.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from xrstory.voice.events import EAR_RATE

CHUNK = 512  # samples at 16 kHz = 32 ms; Silero VAD's window size at this rate


@dataclass
class SampleClock:
    """Counts samples at ``EAR_RATE`` in chunks of ``chunk``; ``tick`` advances one chunk."""

    chunk: int = CHUNK  # samples at EAR_RATE per tick
    frame: int = 0  # samples at EAR_RATE since start

    @property
    def seconds(self) -> float:
        return self.frame / EAR_RATE

    def tick(self) -> int:
        """Advance one chunk; returns the frame at the start of the chunk."""
        start = self.frame
        self.frame += self.chunk
        return start


@dataclass
class HeadlessClock(SampleClock):
    """Advances only when asked: deterministic, as fast as the CPU allows, or paced to wall time."""

    pace: bool = field(default=False, kw_only=True)  # sleep so audio time never runs ahead of wall time
    _t0: float = field(default_factory=time.monotonic, kw_only=True)

    def tick(self) -> int:
        start = super().tick()
        if self.pace:
            ahead = self.frame / EAR_RATE - (time.monotonic() - self._t0)
            if ahead > 0:
                time.sleep(ahead)
        return start


@dataclass
class RealtimeClock(SampleClock):
    """Ticked by the audio device's callback thread; ``seconds`` may be read from any thread."""
