"""Voice activity: Silero VAD (from the ``silero-vad`` package) run chunk by chunk, turned into
speech segments with an onset, a closing silence, a minimum length and a maximum length.

``Segmenter.process(chunk)`` is synchronous and cheap (~1 ms per 32 ms chunk on a CPU core), so
the listening worker calls it inline; that is what lets barge-in react within a chunk or two.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace

import numpy as np

from xrstory.voice.clock import CHUNK
from xrstory.voice.events import EAR_RATE


@dataclass(frozen=True)
class VADConfig:
    threshold: float = 0.5  # speech probability that counts as speech
    release: float = 0.35  # probability below which a chunk counts as silence (hysteresis)
    onset_ms: int = 64  # this much consecutive speech opens a segment (barge-in reacts after it)
    # this much silence closes a segment; it closes after early_silence_ms instead when the
    # transcript of the speech so far looks finished (the Ear decides: ``voice.endpoint``; None:
    # only min_silence_ms). Chosen with ``python -m xrstory.bench.ear_endpoint`` (2026-12-01, load
    # 3-7): 450 ms (no early close) cut 5 of 6 lines with a 0.4-0.6 s mid-sentence pause, and the
    # final transcript came p50 1512 ms after the player stopped. 700/224 cut none and had it at
    # p50 252 ms, but closed between sentences of one turn (espeak leaves 320-416 ms between them:
    # full_arc's "Maren, Tobias is freezing. Please light the iron stove." became two turns; the
    # monologue: 11 closes). 700/480: no cut-off, monologue 1 close, final transcript p50 496 ms.
    # With the neural player voice (issue 17, 2026-12-01, load 4.5-7.6; the bench now also speaks 4
    # two-sentence turns in one go): 700/320 and 700/384 split 3-4 of the 4 turns at the voice's pause
    # between sentences; 700/448 and 700/480 split none but cut "Please open the ... (0.55 s) cellar
    # door" (the tail is heard as "Please open there.", confidence 0.77, which reads as finished);
    # 700/576: no cut-off, no split, monologue 1 close, endpoint p50 572 ms (480: 481 ms).
    # Going lower needs a turn that can be taken back when the player goes on (not built yet).
    min_silence_ms: int = 700
    early_silence_ms: int | None = 576
    min_speech_ms: int = 250  # segments shorter than this are dropped (coughs, clicks)
    pad_ms: int = 160  # audio kept before the onset and after the last speech chunk
    max_segment_s: float = 8.0  # longer speech is split so ASR latency stays bounded
    energy_floor_db: float = -55.0  # chunks quieter than this are never speech (dBFS)

    def __post_init__(self) -> None:
        if not 0 < self.release <= self.threshold < 1:
            raise ValueError(f"VADConfig: need 0 < release ({self.release}) <= threshold ({self.threshold}) < 1")
        if self.early_silence_ms is not None and not 0 < self.early_silence_ms <= self.min_silence_ms:
            raise ValueError(f"VADConfig.early_silence_ms ({self.early_silence_ms}) must be in "
                             f"(0, min_silence_ms={self.min_silence_ms}]")
        if self.max_segment_s < 1.0:
            raise ValueError(f"VADConfig.max_segment_s must be >= 1 s, got {self.max_segment_s}")


@dataclass(frozen=True)
class SegmentStart:
    frame: int  # onset, samples at 16 kHz


@dataclass(frozen=True)
class Segment:
    start_frame: int
    end_frame: int
    audio: np.ndarray = field(repr=False)  # (n,) float32, 16 kHz, with padding
    forced_split: bool = False
    too_short: bool = False
    voiced_end_frame: int = 0  # end of the last chunk that was speech (the player stopped here)
    early: bool = False  # closed by ``close_early``, before min_silence_ms


def load_silero():
    """The Silero VAD model shipped inside the silero-vad package (TorchScript, CPU)."""
    from silero_vad import load_silero_vad

    return load_silero_vad()


class Segmenter:
    """Streams 512-sample chunks at 16 kHz through Silero and yields SegmentStart / Segment."""

    def __init__(self, model, config: VADConfig | None = None) -> None:
        import torch

        self._torch = torch
        self.model = model
        self.config = config or VADConfig()
        ms_per_chunk = 1000 * CHUNK / EAR_RATE
        c = self.config
        self._onset_chunks = max(1, round(c.onset_ms / ms_per_chunk))
        self._silence_chunks = max(1, round(c.min_silence_ms / ms_per_chunk))
        self._pad_chunks = max(0, round(c.pad_ms / ms_per_chunk))
        self._max_chunks = int(c.max_segment_s * 1000 / ms_per_chunk)
        self._floor = 10 ** (c.energy_floor_db / 20)
        self.reset()

    def reset(self) -> None:
        self.model.reset_states()
        self._pre: deque[np.ndarray] = deque(maxlen=self._pad_chunks + self._onset_chunks)
        self._seg: list[np.ndarray] = []  # chunks of the open segment
        self._probs: list[float] = []
        self._seg_start = 0
        self._run = 0  # consecutive speech chunks (before onset)
        self._quiet = 0  # consecutive silent chunks (inside a segment)
        self.voiced_end_frame = 0  # end of the open segment's latest speech chunk
        self.in_speech = False
        self.last_prob = 0.0

    def probability(self, chunk: np.ndarray) -> float:
        """Silero's speech probability of one (512,) float32 chunk (energy-gated)."""
        with self._torch.no_grad():
            p = float(self.model(self._torch.from_numpy(chunk), EAR_RATE).item())
        rms = float(np.sqrt(np.mean(np.square(chunk))))
        return p if rms >= self._floor else 0.0

    def process(self, chunk: np.ndarray, frame: int) -> list[SegmentStart | Segment]:
        """Feed one (512,) float32 chunk that starts at ``frame``; returns what happened."""
        if chunk.shape != (CHUNK,):
            raise ValueError(f"VAD chunk must be ({CHUNK},) float32 at 16 kHz, got {chunk.shape}")
        chunk = chunk.astype(np.float32, copy=False)
        p = self.last_prob = self.probability(chunk)
        out: list[SegmentStart | Segment] = []
        if not self.in_speech:
            self._pre.append(chunk)
            self._run = self._run + 1 if p >= self.config.threshold else 0
            if self._run >= self._onset_chunks:
                self.in_speech = True
                self._seg = list(self._pre)
                self._probs = [1.0] * len(self._seg)
                self._seg_start = frame + CHUNK - len(self._seg) * CHUNK
                self._quiet = 0
                self.voiced_end_frame = frame + CHUNK
                onset = frame + CHUNK - self._onset_chunks * CHUNK
                out.append(SegmentStart(onset))
            return out
        self._seg.append(chunk)
        self._probs.append(p)
        self._quiet = self._quiet + 1 if p < self.config.release else 0
        if not self._quiet:
            self.voiced_end_frame = frame + CHUNK
        if self._quiet >= self._silence_chunks:
            keep = len(self._seg) - self._quiet + self._pad_chunks  # trailing pad only
            out.append(self._close(keep, forced=False))
        elif len(self._seg) >= self._max_chunks:
            out.append(self._split())
        return out

    @property
    def quiet_ms(self) -> float:
        """Silence since the open segment's last speech chunk, ms (0 outside speech)."""
        return 1000.0 * self._quiet * CHUNK / EAR_RATE if self.in_speech else 0.0

    @property
    def audio(self) -> np.ndarray:
        """The open segment's audio so far (for transcripts while the player speaks)."""
        return np.concatenate(self._seg) if self._seg else np.zeros(0, np.float32)

    def close_early(self) -> Segment:
        """Close the open segment now, as ``min_silence_ms`` would have (the caller judged the
        speech finished); its trailing pad is what silence there is, up to ``pad_ms``."""
        keep = len(self._seg) - self._quiet + min(self._pad_chunks, self._quiet)
        return replace(self._close(keep, forced=False), early=True)

    def flush(self) -> list[Segment]:
        """End of stream: close an open segment."""
        if not self.in_speech:
            return []
        return [self._close(len(self._seg), forced=False)]

    def _close(self, keep: int, forced: bool) -> Segment:
        audio = np.concatenate(self._seg[:keep])
        start = self._seg_start
        speech_chunks = keep - self._pad_chunks * 2
        too_short = speech_chunks * CHUNK < self.config.min_speech_ms * EAR_RATE / 1000
        voiced_end = min(self.voiced_end_frame, start + len(audio))
        self.in_speech, self._run, self._seg, self._probs, self._quiet = False, 0, [], [], 0
        self._pre.clear()
        return Segment(start, start + len(audio), audio, forced_split=forced, too_short=too_short,
                       voiced_end_frame=voiced_end)

    def _split(self) -> Segment:
        # cut at the least speech-like chunk of the last third, so words are not cut in half
        n = len(self._seg)
        lo = n - n // 3
        cut = lo + int(np.argmin(self._probs[lo:])) + 1
        audio = np.concatenate(self._seg[:cut])
        seg = Segment(self._seg_start, self._seg_start + len(audio), audio, forced_split=True,
                      voiced_end_frame=self._seg_start + len(audio))
        self._seg_start += len(audio)
        self._seg, self._probs = self._seg[cut:], self._probs[cut:]
        return seg
