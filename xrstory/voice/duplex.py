"""The one full-duplex voice loop: speakers out and microphone in, one 32 ms chunk per ``step``.

``Duplex.step(head, inputs)`` does, in this order, for one chunk of audio time:
  1. places the listener at the head pose (``Mixer.set_listener``): voices stay where the
     characters stand when the player turns;
  2. push-to-talk edges from the controller (``DuplexInputs.push_to_talk``) gate the microphone;
  3. renders the mixer (lines, cues, ambience: (1536, 2) float32 at 48 kHz) and resamples its
     mono sum to the 16 kHz reference (soxr, streaming);
  4. takes the next microphone chunk (queued by ``queue_mic`` from any thread; silence when
     none) and, headless, adds the room's echo of our own output (``AcousticPath``);
  5. notes every line that is playing or just ended with the ear (``Ear.note_spoken``), so a
     transcript that repeats a character's words is rejected as echo;
  6. feeds the ear (echo canceller, VAD inline); a player speech onset while a character talks
     stops the characters in the same chunk (barge-in);
  7. returns every voice event of the chunk: the mixer's (speaking started / level / done /
     interrupted, cue played) and the ear's (speech started / ended, transcripts, rejections, the
     latter from the ASR thread, drained without waiting).
Deterministic headless (the caller owns the clock); the live microphone is just another
``queue_mic`` producer. The runtime's session calls ``step`` once per 32 ms of frame time.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from xrstory.voice.clock import CHUNK
from xrstory.voice.ear import Ear, drain
from xrstory.voice.echo import AcousticPath
from xrstory.voice.events import (
    EAR_RATE,
    SpeakingDone,
    SpeakingInterrupted,
    SpeakingStarted,
    SpeechStarted,
    VoiceEvent,
)
from xrstory.voice.mixer import MIX_RATE, Mixer
from xrstory.voice.mouth import Mouth
from xrstory.voice.spatial import Listener, Vec3
from xrstory.voice.tts import TTSBackend, VoiceSettings

MIX_CHUNK = CHUNK * MIX_RATE // EAR_RATE  # 1536 samples at 48 kHz = 32 ms
SILENT = 10 ** (-50 / 20)  # |sample| below -50 dBFS: not part of the speech (end-of-speech marks)


def last_sound(audio: np.ndarray) -> int | None:
    """Index just after the last sample louder than -50 dBFS, or None when all is silent."""
    loud = np.flatnonzero(np.abs(audio) > SILENT)
    return int(loud[-1]) + 1 if loud.size else None


class Downsampler:
    """Streaming 48 kHz stereo -> 16 kHz mono reference, exactly CHUNK samples per call."""

    def __init__(self) -> None:
        self._rs = soxr.ResampleStream(MIX_RATE, EAR_RATE, 1, dtype="float32", quality="HQ")
        self._buf = np.zeros(0, np.float32)

    def __call__(self, stereo: np.ndarray) -> np.ndarray:
        self._buf = np.concatenate([self._buf, self._rs.resample_chunk(stereo.mean(axis=1))])
        if len(self._buf) < CHUNK:  # resampler start-up latency: a fixed delay, zeros first
            self._buf = np.concatenate([np.zeros(CHUNK - len(self._buf), np.float32), self._buf])
        out, self._buf = self._buf[:CHUNK], self._buf[CHUNK:]
        return out


@dataclass(frozen=True)
class DuplexInputs:
    """What the frame brings for the voice loop besides the head pose."""

    push_to_talk: tuple[bool, ...] = ()  # talk-button edges this frame, in order (True = down)


@dataclass(frozen=True)
class DuplexConfig:
    barge_in: bool = True  # player speech while a character talks stops the character
    keep_mix: bool = False  # keep every rendered chunk (``mix()``: what the player heard)


class Duplex:
    """``Duplex(ear, mouth, leak=AcousticPath())``; ``step`` once per 32 ms chunk."""

    def __init__(self, ear: Ear | None, mouth: Mouth, leak: AcousticPath | None = None,
                 config: DuplexConfig | None = None, out_wav: str | Path | None = None) -> None:
        self.ear, self.mouth, self.mixer = ear, mouth, mouth.mixer
        self.leak = leak
        self.config = config or DuplexConfig()
        self.frame = 0  # audio time: 16 kHz samples since start
        self._mic: deque[tuple[np.ndarray, int | None]] = deque()  # (chunk, speech ends at this offset)
        self._down = Downsampler()
        self._mix: list[np.ndarray] = []
        self._out = sf.SoundFile(str(out_wav), "w", MIX_RATE, 2, "PCM_16") if out_wav else None
        self.mic_log: list[np.ndarray] = []  # what the microphone got, (CHUNK,) each (tests, benches)
        self.ref_log: list[np.ndarray] = []
        self.keep_logs = False

    def __enter__(self) -> Duplex:
        return self

    def __exit__(self, *exc) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    @property
    def seconds(self) -> float:
        return self.frame / EAR_RATE

    # ---- inputs (any thread) ------------------------------------------------------------------
    def queue_mic(self, audio16: np.ndarray, speech_end: bool = False) -> None:
        """Player audio (16 kHz mono, any length) that enters the microphone from the next step on.
        ``speech_end``: the clip is one whole utterance (scripted): when its last non-silent sample
        is fed, the ear is told the exact end of speech (``Ear.mark_speech_end``)."""
        audio16 = np.asarray(audio16, np.float32)
        end = last_sound(audio16) if speech_end else None
        for i in range(0, len(audio16), CHUNK):
            part = audio16[i:i + CHUNK]
            mark = end - i if end is not None and i < end <= i + CHUNK else None
            self._mic.append((np.pad(part, (0, CHUNK - len(part))) if len(part) < CHUNK else part, mark))

    @property
    def mic_pending(self) -> bool:
        return bool(self._mic)

    @property
    def hearing(self) -> bool:
        """Player audio on its way: queued, inside an open speech segment, or being transcribed."""
        return self.mic_pending or (self.ear is not None and (self.ear.segmenter.in_speech or self.ear.pending > 0))

    # ---- the chunk ----------------------------------------------------------------------------
    def step(self, head: Listener | None = None, inputs: DuplexInputs = DuplexInputs()) -> list[VoiceEvent]:
        frame = self.frame
        if head is not None:
            self.mixer.set_listener(head)
        events: list[VoiceEvent] = []
        if self.ear is not None:
            for pressed in inputs.push_to_talk:
                started = self.ear.push_to_talk(pressed, frame)
                if any(isinstance(e, SpeechStarted) for e in started):
                    self._barge_in()
        stereo, mixed = self.mixer.render(MIX_CHUNK, frame)  # (1536, 2) float32
        events += mixed
        if self._out is not None:
            self._out.write(np.clip(stereo, -1, 1))
        if self.config.keep_mix:
            self._mix.append(stereo)
        ref = self._down(stereo)  # (512,) float32 at 16 kHz
        mic, mark = self._mic.popleft() if self._mic else (np.zeros(CHUNK, np.float32), None)
        if self.leak is not None:
            mic = mic + self.leak.process(ref)
        if self.keep_logs:
            self.mic_log.append(mic)
            self.ref_log.append(ref)
        if self.ear is not None:
            self._note_spoken(mixed, frame)
            if mark is not None:
                self.ear.mark_speech_end(frame + mark)
            heard = self.ear.feed(mic, frame, reference=ref)
            if any(isinstance(e, SpeechStarted) for e in heard):
                self._barge_in()
            events += drain(self.ear.events)  # what feed returned, and the ASR thread's results
        self.frame += CHUNK
        return events

    def _note_spoken(self, mixed: list[VoiceEvent], frame: int) -> None:
        """Every playing line's text counts as echo now; an ended line's final text from its end."""
        for line, text in self.mixer.texts().items():
            self.ear.note_spoken(text, frame, key=line)
        for e in mixed:
            if isinstance(e, SpeakingStarted):
                self.ear.note_spoken(e.text, frame, key=e.line)
            elif isinstance(e, SpeakingDone):
                self.ear.note_spoken(e.text, e.frame, key=e.line)
            elif isinstance(e, SpeakingInterrupted):
                self.ear.note_spoken(e.words_spoken, e.frame, key=e.line)

    def _barge_in(self) -> None:
        if self.config.barge_in and self.mixer.speaking:
            self.mouth.interrupt()

    def mix(self) -> np.ndarray:
        """(n, 2) float32 at 48 kHz: everything rendered so far (with ``keep_mix``)."""
        return np.concatenate(self._mix) if self._mix else np.zeros((0, 2), np.float32)

    # ---- headless helpers ---------------------------------------------------------------------
    def run(self, seconds: float, head: Listener | None = None) -> list[VoiceEvent]:
        out: list[VoiceEvent] = []
        for _ in range(int(np.ceil(seconds * EAR_RATE / CHUNK))):
            out += self.step(head)
        return out

    def run_until_quiet(self, max_seconds: float = 60.0, tail_s: float = 0.3) -> list[VoiceEvent]:
        """Step until the mixer has nothing left for ``tail_s`` (and no player audio is queued)."""
        out: list[VoiceEvent] = []
        quiet = 0
        for _ in range(int(max_seconds * EAR_RATE / CHUNK)):
            out += self.step()
            quiet = 0 if self.mixer.busy or self._mic else quiet + 1
            if quiet * CHUNK >= tail_s * EAR_RATE:
                break
        return out


def render_lines(tts: TTSBackend, lines: list[tuple[str, str, VoiceSettings, Vec3]], out_wav: str | Path,
                 mixer: Mixer | None = None) -> dict:
    """Speak lines one after another into a stereo WAV (headless, no ear); returns a summary."""
    mixer = mixer or Mixer()
    with Mouth(tts, mixer) as mouth:
        for character, text, voice, position in lines:
            mouth.say(character, text, voice, position)
        mouth.wait_idle()
        with Duplex(None, mouth, out_wav=out_wav) as voice:
            events = voice.run_until_quiet()
    kinds = sorted({e.__class__.__qualname__ for e in events})
    return {"out": str(out_wav), "seconds": round(voice.seconds, 2), "events": kinds, "errors": mouth.errors}

