"""Full-duplex voice: the mixer's output and the microphone, one chunk at a time, with barge-in.

``HeadlessVoice.step()`` advances the audio clock by one chunk (32 ms): it renders the mixer,
models the speaker-to-microphone leak (``AcousticPath``), adds the player's scripted or recorded
voice, and feeds the result to the ear together with the reference for echo cancellation. When the
ear hears the player start speaking while a character talks, the character is stopped in the same
chunk (barge-in). Deterministic; runs as fast as the CPU allows or paced to real time.

``LiveVoice`` does the same with a real sound card (sounddevice duplex stream): the callback only
moves audio; a worker thread runs the ear.

Run: ``python -m xrstory.voice.duplex OUT.wav`` renders a short headless exchange.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from xrstory.voice.clock import CHUNK, HeadlessClock
from xrstory.voice.ear import Ear
from xrstory.voice.echo import AcousticPath
from xrstory.voice.events import (
    EAR_RATE,
    SpeakingDone,
    SpeakingInterrupted,
    SpeechStarted,
    VoiceEvent,
)
from xrstory.voice.mixer import MIX_RATE, Mixer
from xrstory.voice.mouth import Mouth
from xrstory.voice.spatial import Vec3
from xrstory.voice.tts import TTSBackend, VoiceSettings

MIX_CHUNK = CHUNK * MIX_RATE // EAR_RATE  # 1536 samples at 48 kHz = 32 ms


class _Downsampler:
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


class HeadlessVoice:
    """``with HeadlessVoice(ear, mouth, player=chunks, leak=AcousticPath(), out_wav=...) as v:``"""

    def __init__(self, ear: Ear | None, mouth: Mouth, player: Iterator[np.ndarray] | None = None,
                 leak: AcousticPath | None = None, out_wav: str | Path | None = None,
                 clock: HeadlessClock | None = None, barge_in: bool = True,
                 events: queue.Queue | None = None) -> None:
        self.ear, self.mouth, self.mixer = ear, mouth, mouth.mixer
        self.player = iter(player) if player is not None else None
        self.leak = leak
        self.clock = clock or HeadlessClock()
        self.barge_in = barge_in
        self.events: queue.Queue[VoiceEvent] = events if events is not None else (
            ear.events if ear is not None else queue.Queue())
        self._down = _Downsampler()
        self._out = sf.SoundFile(str(out_wav), "w", MIX_RATE, 2, "PCM_16") if out_wav else None
        self.mic_log: list[np.ndarray] = []  # what the microphone got, (CHUNK,) each (for tests)
        self.ref_log: list[np.ndarray] = []
        self.keep_logs = False

    def __enter__(self) -> HeadlessVoice:
        return self

    def __exit__(self, *exc) -> None:
        if self._out is not None:
            self._out.close()

    def step(self) -> list[VoiceEvent]:
        frame = self.clock.tick()
        stereo, events = self.mixer.render(MIX_CHUNK, frame)  # (1536, 2) float32
        if self._out is not None:
            self._out.write(np.clip(stereo, -1, 1))
        ref = self._down(stereo)  # (512,) float32 at 16 kHz
        player = next(self.player, None) if self.player is not None else None
        mic = np.zeros(CHUNK, np.float32) if player is None else player.astype(np.float32)
        if self.leak is not None:
            mic = mic + self.leak.process(ref)
        if self.keep_logs:
            self.mic_log.append(mic)
            self.ref_log.append(ref)
        for ev in events:
            self.events.put(ev)
            if self.ear is not None and isinstance(ev, SpeakingDone | SpeakingInterrupted):
                self.ear.note_spoken(ev.words_spoken if isinstance(ev, SpeakingInterrupted) else
                                     self._line_text(ev.line), ev.frame)
        if self.ear is not None:
            heard = self.ear.feed(mic, frame, reference=ref if self.leak is not None else None)
            if self.barge_in and any(isinstance(e, SpeechStarted) for e in heard) and self.mixer.speaking:
                self.mouth.interrupt()
            events = events + heard
        return events

    def _line_text(self, line: int) -> str:
        return self.mouth.texts.get(line, "")

    def run(self, seconds: float) -> list[VoiceEvent]:
        out: list[VoiceEvent] = []
        for _ in range(int(np.ceil(seconds * EAR_RATE / CHUNK))):
            out += self.step()
        return out

    def run_until_quiet(self, max_seconds: float = 60.0, tail_s: float = 0.3) -> list[VoiceEvent]:
        """Step until the mixer has nothing left (and the player source is exhausted)."""
        out: list[VoiceEvent] = []
        quiet = 0
        for _ in range(int(max_seconds * EAR_RATE / CHUNK)):
            out += self.step()
            quiet = 0 if self.mixer.busy else quiet + 1
            if quiet * CHUNK >= tail_s * EAR_RATE:
                break
        return out


class LiveVoice:
    """Speakers and microphone through one sounddevice duplex stream at 48 kHz. The callback only
    renders the mixer and queues (mic, reference) chunks; ``worker`` runs the ear and barge-in."""

    def __init__(self, ear: Ear, mouth: Mouth, device=None, barge_in: bool = True) -> None:
        import sounddevice as sd

        from xrstory.voice.audio import AudioError

        try:
            sd.query_devices(device, kind="input")
            sd.query_devices(device, kind="output")
        except (sd.PortAudioError, ValueError) as exc:
            raise AudioError(f"no duplex audio device ({exc}); use HeadlessVoice with a WAV output") from exc
        self._sd, self.device = sd, device
        self.ear, self.mouth, self.mixer, self.barge_in = ear, mouth, mouth.mixer, barge_in
        self._q: queue.Queue = queue.Queue(maxsize=64)
        self._mic_rs = soxr.ResampleStream(MIX_RATE, EAR_RATE, 1, dtype="float32")
        self._down = _Downsampler()
        self._frame = 0
        self._mic_buf = np.zeros(0, np.float32)
        self._stop = threading.Event()

    def __enter__(self) -> LiveVoice:
        self._stream = self._sd.Stream(samplerate=MIX_RATE, blocksize=MIX_CHUNK, channels=(1, 2),
                                       dtype="float32", device=self.device, callback=self._callback)
        self._worker = threading.Thread(target=self._work, name="live-ear", daemon=True)
        self._worker.start()
        self._stream.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stream.stop()
        self._stream.close()
        self._stop.set()
        self._worker.join(timeout=5)

    def _callback(self, indata, outdata, frames, time_info, status) -> None:
        stereo, events = self.mixer.render(frames, self._frame)
        outdata[:] = np.clip(stereo, -1, 1)
        self._frame += frames * EAR_RATE // MIX_RATE
        try:
            self._q.put_nowait((indata[:, 0].copy(), self._down(stereo), events))
        except queue.Full:
            pass  # the worker fell behind; dropping mic audio beats blocking the sound card

    def _work(self) -> None:
        frame = 0
        while not self._stop.is_set():
            try:
                mic48, ref, events = self._q.get(timeout=0.1)
            except queue.Empty:
                continue
            for ev in events:
                self.ear.events.put(ev)
                if isinstance(ev, SpeakingDone):
                    self.ear.note_spoken(self.mouth.texts.get(ev.line, ""), ev.frame)
            self._mic_buf = np.concatenate([self._mic_buf, self._mic_rs.resample_chunk(mic48)])
            while len(self._mic_buf) >= CHUNK:
                mic, self._mic_buf = self._mic_buf[:CHUNK], self._mic_buf[CHUNK:]
                heard = self.ear.feed(mic, frame, reference=ref)
                frame += CHUNK
                if self.barge_in and any(isinstance(e, SpeechStarted) for e in heard) and self.mixer.speaking:
                    self.mouth.interrupt()


def render_lines(tts: TTSBackend, lines: list[tuple[str, str, VoiceSettings, Vec3]], out_wav: str | Path,
                 mixer: Mixer | None = None) -> dict:
    """Speak lines one after another into a stereo WAV (headless, no ear); returns a summary."""
    mixer = mixer or Mixer()
    with Mouth(tts, mixer) as mouth:
        for character, text, voice, position in lines:
            mouth.say(character, text, voice, position)
        mouth.wait_idle()
        with HeadlessVoice(None, mouth, out_wav=out_wav) as hv:
            events = hv.run_until_quiet()
    seconds = hv.clock.seconds
    return {"out": str(out_wav), "seconds": round(seconds, 2),
            "events": sorted({type(e).__name__ for e in events}), "errors": mouth.errors}


if __name__ == "__main__":
    from xrstory.voice.tts import EspeakTTS

    with EspeakTTS() as tts:
        print(render_lines(tts, [("maren", "Aye, friend. The lamp first.", VoiceSettings("en-gb", 150, 30), (-1.3, 0.0, -3.0)),
                                 ("tobias", "Please, the Marigold!", VoiceSettings("en-us", 185, 60), (1.4, 0.0, -2.7))],
                           sys.argv[1] if len(sys.argv) > 1 else "/tmp/duplex.wav"))
