"""The spatial mixer: characters' lines placed by their position relative to the player's head,
trigger cues, and an ambient bed, mixed into stereo at 48 kHz, one chunk per ``render`` call.

Thread model: the TTS worker appends sentences (``append``) while the audio thread renders; a lock
guards the line table. Speaking events are emitted by ``render`` at the audio time the samples
play, so "started", "done" and "interrupted" are exact in audio time (headless and live alike).
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xrstory.voice.audio import resample
from xrstory.voice.cues import ambient_storm, load_cue
from xrstory.voice.events import (
    EAR_RATE,
    CuePlayed,
    SpeakingDone,
    SpeakingInterrupted,
    SpeakingLevel,
    SpeakingStarted,
    VoiceEvent,
)
from xrstory.voice.spatial import Listener, Spatializer, SpatialParams, Vec3, ear_gains
from xrstory.voice.tts import SpokenAudio

MIX_RATE = 48_000  # Hz, output
FADE_S = 0.010  # barge-in fade-out (no click)


@dataclass
class _Line:
    id: int
    character: str
    text: str
    position: Vec3
    spatializer: Spatializer
    audio: list[np.ndarray] = field(default_factory=list)  # (n,) float32 at MIX_RATE, one per sentence
    words: list[tuple[float, str]] = field(default_factory=list)  # (start_s in line, word)
    visemes: list[tuple[float, str]] = field(default_factory=list)
    length: int = 0  # samples appended so far
    played: int = 0  # samples played
    finished: bool = False  # no more sentences will come
    started: bool = False
    stopping: int = -1  # samples of fade left; -1 = not stopping
    turn: int = 0  # the caller's tag (the runtime's turn number), carried by every speaking event
    held: bool = False  # made and filled, but silent until ``Mixer.release`` (a reply thought ahead)


@dataclass
class _OneShot:
    name: str
    audio: np.ndarray
    position: Vec3 | None
    spatializer: Spatializer
    played: int = 0


class Mixer:
    def __init__(self, listener: Listener | None = None, params: SpatialParams | None = None,
                 sounds_dir: str | Path | None = None, ambient: np.ndarray | None = None,
                 ambient_gain: float = 0.0, rate: int = MIX_RATE) -> None:
        self.rate = rate
        self.listener = listener or Listener()
        self.params = params or SpatialParams()
        self.sounds_dir = sounds_dir
        self._lock = threading.Lock()
        self._lines: dict[int, _Line] = {}
        self._cues: list[_OneShot] = []
        self._ids = itertools.count(1)
        self._bed = ambient if ambient is not None else (ambient_storm(rate, np.random.default_rng(7)) if ambient_gain else None)
        self.ambient_gain = ambient_gain
        self._bed_pos = 0

    # ---- called by the Mouth / runtime (any thread) -----------------------------------------
    def add_line(self, character: str, text: str, position: Vec3, turn: int = 0, held: bool = False) -> int:
        """A new line; ``held``: its sentences may be appended, but it plays only once released."""
        with self._lock:
            line = _Line(next(self._ids), character, text, tuple(position), Spatializer(self.rate), turn=turn,
                         held=held)
            self._lines[line.id] = line
            return line.id

    def release(self, line_id: int) -> None:
        """A held line plays from the next sample rendered."""
        with self._lock:
            if line_id in self._lines:
                self._lines[line_id].held = False

    def discard(self, line_id: int) -> None:
        """A held line goes without a sound or an event (what it was made for did not happen)."""
        with self._lock:
            line = self._lines.get(line_id)
            if line is not None and line.held:
                del self._lines[line_id]

    def append(self, line_id: int, spoken: SpokenAudio) -> None:
        """Queue one synthesised sentence at the end of a line (resampled to the mix rate)."""
        audio = resample(spoken.audio, spoken.rate, self.rate)
        with self._lock:
            line = self._lines.get(line_id)
            if line is None or line.stopping >= 0:
                return  # stopped while this sentence was being made
            offset = line.length / self.rate
            line.words += [(offset + w.start_s, w.text) for w in spoken.words]
            if not spoken.words:  # engine gave no timings: spread the words over the audio
                ws = spoken.text.split()
                line.words += [(offset + i * spoken.seconds / max(len(ws), 1), w) for i, w in enumerate(ws)]
            line.visemes += [(offset + v.start_s, v.text) for v in spoken.visemes]
            line.audio.append(audio)
            line.length += len(audio)

    def set_text(self, line_id: int, text: str) -> None:
        with self._lock:
            if line_id in self._lines:
                self._lines[line_id].text = text

    def finish(self, line_id: int) -> None:
        with self._lock:
            if line_id in self._lines:
                self._lines[line_id].finished = True

    def stop(self, line_id: int | None = None, character: str | None = None) -> list[int]:
        """Fade out lines (by id, by character, or all); returns the ids being stopped."""
        with self._lock:
            hit = [ln for ln in self._lines.values()
                   if (line_id is None or ln.id == line_id) and (character is None or ln.character == character)]
            for ln in hit:
                if ln.stopping < 0:
                    ln.stopping = int(FADE_S * self.rate)
            return [ln.id for ln in hit]

    def play_cue(self, name: str, position: Vec3 | None = None, audio: np.ndarray | None = None) -> None:
        """A trigger's sound; ``position`` None plays it centred (non-diegetic)."""
        clip = audio if audio is not None else load_cue(name, self.rate, self.sounds_dir)
        with self._lock:
            self._cues.append(_OneShot(name, clip, position, Spatializer(self.rate)))

    def set_listener(self, listener: Listener) -> None:
        """Where the player's head is now (the duplex loop calls it every frame)."""
        self.listener = listener

    def texts(self) -> dict[int, str]:
        """Line id -> text of every line that has started playing and is not stopped (the
        duplex loop notes them for the ear's echo check while they play)."""
        with self._lock:
            return {ln.id: ln.text for ln in self._lines.values() if ln.started and ln.stopping < 0}

    def set_position(self, character: str, position: Vec3) -> None:
        with self._lock:
            for ln in self._lines.values():
                if ln.character == character:
                    ln.position = tuple(position)

    @property
    def speaking(self) -> list[str]:
        with self._lock:
            return [ln.character for ln in self._lines.values() if ln.started and ln.stopping < 0]

    @property
    def busy(self) -> bool:
        with self._lock:
            return bool(self._lines or self._cues)

    # ---- called by the audio thread ---------------------------------------------------------
    def render(self, n: int, frame: int = 0) -> tuple[np.ndarray, list[VoiceEvent]]:
        """Mix ``n`` samples at the mix rate; ``frame``: 16 kHz audio time of the first sample.
        Returns ((n, 2) float32 stereo, events)."""
        out = np.zeros((n, 2), np.float32)
        events: list[VoiceEvent] = []
        now = time.monotonic()
        to16 = EAR_RATE / self.rate
        with self._lock:
            busy_chars: set[str] = set()
            for line in sorted(self._lines.values(), key=lambda ln: ln.id):
                if line.held:
                    continue
                if line.character in busy_chars:
                    continue  # one line at a time per character, in order
                busy_chars.add(line.character)
                self._render_line(line, out, frame, to16, now, events)
            for ln_id in [i for i, ln in self._lines.items() if ln.stopping == 0 or self._line_done(ln)]:
                ln = self._lines.pop(ln_id)
                if ln.stopping == 0:
                    spoken = [w for t, w in ln.words if t < ln.played / self.rate]
                    unspoken_words = ln.text.split()[len(spoken):]
                    events.append(SpeakingInterrupted(now, frame + int(n * to16), ln.character, ln.id, ln.turn,
                                                      " ".join(spoken), " ".join(unspoken_words)))
                else:
                    events.append(SpeakingDone(now, frame + int(n * to16), ln.character, ln.id, ln.turn, ln.text))
            for cue in list(self._cues):
                if cue.played == 0:
                    events.append(CuePlayed(now, frame, cue.name))
                part = cue.audio[cue.played:cue.played + n]
                cue.played += len(part)
                if cue.position is None:
                    out[: len(part)] += part[:, None] * 0.7
                else:
                    g = ear_gains(cue.position, self.listener, self.params)
                    out[: len(part)] += cue.spatializer.process(part, g)
                if cue.played >= len(cue.audio):
                    self._cues.remove(cue)
        if self._bed is not None and self.ambient_gain > 0:
            idx = (self._bed_pos + np.arange(n)) % len(self._bed)
            out += (self.ambient_gain * self._bed[idx])[:, None]
            self._bed_pos = (self._bed_pos + n) % len(self._bed)
        return out, events

    def _line_done(self, ln: _Line) -> bool:
        return ln.finished and ln.played >= ln.length and ln.stopping < 0

    def _render_line(self, line: _Line, out: np.ndarray, frame: int, to16: float, now: float,
                     events: list[VoiceEvent]) -> None:
        n = len(out)
        avail = line.length - line.played
        if avail <= 0 and line.stopping < 0:
            return  # waiting for the next sentence (underrun) or about to be done
        take = min(n, max(avail, 0))
        mono = np.zeros(n, np.float32)
        if take:
            flat = np.concatenate(line.audio) if len(line.audio) > 1 else line.audio[0]
            line.audio = [flat]  # keep one buffer; sentences are short
            mono[:take] = flat[line.played:line.played + take]
        if line.stopping >= 0:  # barge-in: linear fade over FADE_S, then silence
            fade = np.clip((line.stopping - np.arange(n)) / (FADE_S * self.rate), 0, 1).astype(np.float32)
            mono *= fade
            line.stopping = max(0, line.stopping - n)
        if not line.started and take:
            line.started = True
            events.append(SpeakingStarted(now, frame, line.character, line.id, line.turn, line.text))
        line.played += take
        g = ear_gains(line.position, self.listener, self.params)
        out += line.spatializer.process(mono, g)
        t_line = line.played / self.rate
        vis = next((v for t, v in reversed(line.visemes) if t <= t_line), "")
        level = float(np.sqrt(np.mean(mono[:take] ** 2))) if take else 0.0
        events.append(SpeakingLevel(now, frame, line.character, line.id, line.turn, min(1.0, level * 4), vis))
