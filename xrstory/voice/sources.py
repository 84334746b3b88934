"""Where the player's voice comes from: a microphone, an audio file, or scripted speech.

Every source yields (512,) float32 chunks at 16 kHz (``CHUNK`` at ``EAR_RATE``), at real-time
pace (``pace=True``) or as fast as they are consumed. Scripted speech is text spoken by the
player's voice (TTS) into audio that then takes exactly the microphone's path: VAD, ASR, echo
guard. Nothing is injected as text.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xrstory.voice.audio import AudioError, read_audio, resample
from xrstory.voice.clock import CHUNK
from xrstory.voice.events import EAR_RATE
from xrstory.voice.tts import TTSBackend, VoiceSettings

_SOUND = 10 ** (-50 / 20)  # the threshold of duplex.last_sound (end-of-speech marks)


def chunked(audio: np.ndarray, pace: bool = False) -> Iterator[np.ndarray]:
    """(n,) float32 -> (512,) chunks, the last one zero-padded; optionally paced to real time."""
    t0 = time.monotonic()
    for k, i in enumerate(range(0, len(audio), CHUNK)):
        c = audio[i:i + CHUNK]
        if len(c) < CHUNK:
            c = np.pad(c, (0, CHUNK - len(c)))
        if pace:
            ahead = (k + 1) * CHUNK / EAR_RATE - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
        yield c.astype(np.float32, copy=False)


@dataclass
class ArraySource:
    """Audio already in memory: (n,) float32 at 16 kHz."""

    audio: np.ndarray
    pace: bool = False

    def chunks(self) -> Iterator[np.ndarray]:
        return chunked(self.audio, self.pace)


@dataclass
class FileSource:
    """A WAV/FLAC/OGG file at any rate and channel count, resampled to 16 kHz mono with soxr."""

    path: str | Path
    pace: bool = False
    audio: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.audio = read_audio(self.path, EAR_RATE)

    def chunks(self) -> Iterator[np.ndarray]:
        return chunked(self.audio, self.pace)


@dataclass(frozen=True)
class ScriptedLine:
    text: str
    pause_before_s: float = 0.8  # silence before the line (the player thinking)


class ScriptedSpeech:
    """Text spoken by the player's voice into 16 kHz audio; also a streaming source with the
    line boundaries known (``spans``: (start_frame, end_frame, text) of each line: from its first
    to just after its last sample above -50 dBFS, so a voice's own pauses around a line, such as
    the neural voice's pause after each sentence, are not counted as speech)."""

    def __init__(self, tts: TTSBackend, voice: VoiceSettings, lines: list[ScriptedLine | str],
                 tail_s: float = 1.0, pace: bool = False) -> None:
        parts: list[np.ndarray] = []
        self.spans: list[tuple[int, int, str]] = []
        pos = 0
        for line in lines:
            line = ScriptedLine(line) if isinstance(line, str) else line
            gap = np.zeros(int(line.pause_before_s * EAR_RATE), np.float32)
            spoken = tts.synthesize(line.text, voice)
            speech = resample(spoken.audio, spoken.rate, EAR_RATE)
            parts += [gap, speech]
            pos += len(gap)
            sound = np.flatnonzero(np.abs(speech) > _SOUND)
            first, last = (int(sound[0]), int(sound[-1]) + 1) if sound.size else (0, len(speech))
            self.spans.append((pos + first, pos + last, line.text))
            pos += len(speech)
        parts.append(np.zeros(int(tail_s * EAR_RATE), np.float32))
        self.audio = np.concatenate(parts)  # (n,) float32 at 16 kHz
        self.pace = pace

    def chunks(self) -> Iterator[np.ndarray]:
        return chunked(self.audio, self.pace)


class MicSource:
    """The default (or named) input device through sounddevice, resampled to 16 kHz mono.
    A context manager: the input stream is open between __enter__ and __exit__."""

    def __init__(self, device: int | str | None = None, rate: int | None = None) -> None:
        import sounddevice as sd

        self._sd = sd
        try:
            info = sd.query_devices(device, kind="input")
        except (sd.PortAudioError, ValueError) as exc:
            raise AudioError(f"no audio input device{f' {device!r}' if device is not None else ''}: {exc}. "
                             f"Use a WAV file or scripted speech instead (headless mode).") from exc
        self.device = device
        self.rate = int(rate or info["default_samplerate"])
        self._q: queue.Queue[np.ndarray] = queue.Queue()
        self._stream = None
        self._buf = np.zeros(0, np.float32)

    def __enter__(self) -> MicSource:
        import soxr

        self._resampler = soxr.ResampleStream(self.rate, EAR_RATE, 1, dtype="float32")
        self._stream = self._sd.InputStream(device=self.device, channels=1, samplerate=self.rate,
                                            dtype="float32", callback=self._callback)
        self._stream.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None

    def _callback(self, indata, frames, time_info, status) -> None:
        self._q.put(indata[:, 0].copy())

    def chunks(self) -> Iterator[np.ndarray]:
        """Blocks on the sound card: real time by nature."""
        if self._stream is None:
            raise RuntimeError("MicSource.chunks() outside 'with MicSource() as mic:'")
        while self._stream is not None:
            block = self._q.get()
            self._buf = np.concatenate([self._buf, self._resampler.resample_chunk(block)])
            while len(self._buf) >= CHUNK:
                yield self._buf[:CHUNK]
                self._buf = self._buf[CHUNK:]
