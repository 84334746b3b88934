"""The speaking pipeline: lines -> sentences -> TTS worker -> mixer.

``Mouth.say(character, text, voice, position)`` returns at once with a line id; a worker thread
synthesises sentence by sentence and hands each to the mixer, so the first sentence plays while
the rest is made. Sentences streamed from the model can be added with ``add_sentence`` /
``end_line``. A line carries its ``turn`` (the caller's tag) from the moment it is made: every
speaking event of it says which turn it belongs to. ``interrupt`` stops lines (barge-in); the mixer
then reports SpeakingInterrupted with the words the player actually heard.

The runtime's one speaker; ``xrstory say`` (``xrstory/cli/voice.py``) renders lines with it.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field

from xrstory.voice.mixer import Mixer
from xrstory.voice.spatial import Vec3
from xrstory.voice.tts import TTSBackend, VoiceSettings, split_sentences


@dataclass
class LineTimings:
    """Wall-clock seconds (time.monotonic) of one line, for latency reports."""

    t_requested: float
    t_first_audio: float | None = None  # first sentence synthesised and queued in the mixer
    sentences: int = 0
    synth_s: list[float] = field(default_factory=list)


class Mouth:
    """``with Mouth(tts, mixer) as mouth: line = mouth.say(...)``."""

    def __init__(self, tts: TTSBackend, mixer: Mixer) -> None:
        self.tts = tts
        self.mixer = mixer
        self.timings: dict[int, LineTimings] = {}
        self.texts: dict[int, str] = {}  # line id -> full text (the echo guard compares against it)
        self._jobs: queue.Queue = queue.Queue()
        self._cancelled: set[int] = set()
        self._voices: dict[int, VoiceSettings] = {}
        self._says_whole: dict[int, bool] = {}
        self._worker = threading.Thread(target=self._work, name="mouth-tts", daemon=True)
        self._worker.start()
        self.errors: list[str] = []

    @property
    def thread(self) -> threading.Thread:
        """The synthesis thread (the session lowers its scheduling priority)."""
        return self._worker

    @property
    def busy(self) -> bool:
        """Sentences queued or being synthesised."""
        return self._jobs.unfinished_tasks > 0

    def __enter__(self) -> Mouth:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._jobs.put(None)
        self._worker.join(timeout=10)

    def begin_line(self, character: str, voice: VoiceSettings, position: Vec3, text: str = "",
                   turn: int = 0, held: bool = False) -> int:
        """A new line; ``held``: synthesised as its sentences come, silent until ``release``."""
        line = self.mixer.add_line(character, text, position, turn, held)
        self._voices[line] = voice
        self.texts[line] = text
        self._says_whole[line] = bool(text)
        self.timings[line] = LineTimings(time.monotonic())
        return line

    def add_sentence(self, line: int, text: str) -> None:
        if not self._says_whole.get(line):  # streamed sentences: the line's text grows
            self.texts[line] = f"{self.texts.get(line, '')} {text}".strip()
            self.mixer.set_text(line, self.texts[line])
        self._jobs.put(("sentence", line, text))

    def end_line(self, line: int) -> None:
        self._jobs.put(("end", line, ""))

    def say(self, character: str, text: str, voice: VoiceSettings, position: Vec3, turn: int = 0) -> int:
        """Speak a whole line (split into sentences); returns the line id at once."""
        line = self.begin_line(character, voice, position, text, turn)
        for sentence in split_sentences(text):
            self.add_sentence(line, sentence)
        self.end_line(line)
        return line

    def release(self, line: int) -> None:
        """A held line plays now (its synthesised sentences are already in the mixer)."""
        self.mixer.release(line)

    def discard(self, line: int) -> None:
        """A held line is never played; sentences still queued for it are not synthesised."""
        self._cancelled.add(line)
        self.mixer.discard(line)

    def interrupt(self, character: str | None = None) -> list[int]:
        """Stop what is playing (all characters, or one); pending sentences are dropped."""
        stopped = self.mixer.stop(character=character)
        self._cancelled.update(stopped)
        return stopped

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Block until every queued sentence is synthesised (tests, offline rendering)."""
        done = threading.Event()
        self._jobs.put(("flag", done, ""))
        done.wait(timeout)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                self._do(*job)
            finally:
                self._jobs.task_done()
        self._jobs.task_done()

    def _do(self, kind: str, line, text: str) -> None:
        if kind == "flag":
            line.set()
            return
        if line in self._cancelled:
            return
        if kind == "end":
            self.mixer.finish(line)
            return
        self._synthesise(line, text)

    def _synthesise(self, line: int, text: str) -> None:
        t0 = time.monotonic()
        try:
            spoken = self.tts.synthesize(text, self._voices[line])
        except Exception as exc:  # noqa: BLE001 - a bad voice must not kill the worker
            self.errors.append(f"line {line}: {type(exc).__name__}: {exc}")
            self.mixer.finish(line)
            return
        self.mixer.append(line, spoken)
        tm = self.timings[line]
        tm.synth_s.append(time.monotonic() - t0)
        tm.sentences += 1
        if tm.t_first_audio is None:
            tm.t_first_audio = time.monotonic()

