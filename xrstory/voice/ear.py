"""The listening pipeline: microphone chunks -> (echo canceller) -> VAD -> ASR worker -> events.

``Ear.feed(chunk, frame, reference)`` runs the echo canceller and the VAD inline (about 1 ms per
32 ms chunk) and returns SpeechStarted / SpeechEnded at once, so a caller can react to barge-in in
the same chunk; transcription happens on a worker thread that posts PartialTranscript and Heard to
``ear.events`` (a ``queue.Queue`` the runtime drains each frame, never blocking).

Modes: hands-free (the VAD decides) and push-to-talk (``ear.push_to_talk(True/False)`` brackets
the utterance; the VAD is bypassed and the microphone is gated: only audio while the button is held
is heard). A press switches the ear to push-to-talk for good (the player chose it).

End of turn: the VAD closes a segment after ``VADConfig.min_silence_ms`` of silence. Sooner, after
``tail_after_ms`` of silence the speech so far is transcribed (the "tail" job); when that
transcript looks finished (``voice.endpoint.looks_finished``) and ``VADConfig.early_silence_ms``
of silence have passed, the segment closes early. Either way, while no speech came after it, that
transcript is the final one: the audio it covered is the whole utterance, so nothing is decoded
again after the decision. Thinking ahead: once that transcript is back and looks finished, an
``EndLikely`` carries it at once (the early silence has not passed yet); the turn then closes on it,
or the player speaks on and ``EndRevoked`` says so.

The clock: every chunk's feed time is kept, so an audio frame maps to the monotonic time it was
heard (``time_of``); ``SpeechEnded.t_speech_end`` is when the player really stopped: a mark set
by whoever knows it exactly (``mark_speech_end``: the scripted player's audio), else the end of
the segment's last voiced chunk, never the VAD's decision.

Driven by ``voice.duplex.Duplex`` in a session; ``xrstory hear FILE`` runs it on a file.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from xrstory.voice.asr import ASRBackend
from xrstory.voice.clock import CHUNK
from xrstory.voice.echo import EchoCanceller, echo_overlap
from xrstory.voice.endpoint import looks_finished
from xrstory.voice.events import (
    EAR_RATE,
    EndLikely,
    EndRevoked,
    Heard,
    PartialTranscript,
    Rejected,
    SpeechEnded,
    SpeechStarted,
    VoiceEvent,
)
from xrstory.voice.vad import Segment, Segmenter, SegmentStart, VADConfig


@dataclass(frozen=True)
class EarConfig:
    partial_every_s: float | None = 1.0  # partial transcripts while speaking; None: off
    echo_overlap_reject: float = 0.7  # reject transcripts whose words are mostly the characters' own
    echo_window_s: float = 6.0  # how long after a character's line its words count as echo
    echo_dominance: float = 0.55  # during playback, residual/mic RMS below this = echo, not player
    echo_margin_db: float = 4.0  # during playback, the mic must be this much above the learned echo level
    push_to_talk: bool = False
    # silence after which the speech so far is transcribed (early end of turn, final transcript
    # without a second decode); None: off (the final pass transcribes the segment after the decision)
    tail_after_ms: float | None = 96.0
    # announce EndLikely as soon as that transcript is back and looks finished (before the early
    # silence has passed), so the runtime can think ahead; EndRevoked if the player speaks on
    think_ahead: bool = True


class Ear:
    """``with Ear(asr, vad_model) as ear: ear.feed(...)``; events arrive on ``ear.events``."""

    def __init__(self, asr: ASRBackend, vad_model, vad: VADConfig | None = None,
                 config: EarConfig | None = None, events: queue.Queue | None = None,
                 echo_canceller: EchoCanceller | None = None) -> None:
        self.asr = asr
        self.config = config or EarConfig()
        self.segmenter = Segmenter(vad_model, vad)
        self.events: queue.Queue[VoiceEvent] = events if events is not None else queue.Queue()
        self.aec = echo_canceller
        self._jobs: queue.Queue = queue.Queue()
        self._worker = threading.Thread(target=self._work, name="ear-asr", daemon=True)
        self._utterance = 0
        self._partial_due = 0
        self._spoken: dict[object, tuple[int, str]] = {}  # key -> (frame last heard playing, text)
        self._ptt_on = False
        self._ptt_audio: list[np.ndarray] = []
        self._ptt_start = 0
        self._pending = 0  # jobs not yet finished (for wait_idle)
        self._idle = threading.Condition()
        self._started = False
        self._echo_gain: float | None = None  # learned mic power / reference power while only echo plays
        self._ref_powers: deque[float] = deque(maxlen=4)
        self._fed: deque[tuple[int, float]] = deque(maxlen=512)  # (chunk frame, monotonic feed time)
        self._marks: deque[int] = deque(maxlen=8)  # frames where scripted speech ended exactly
        self._tail_key: tuple[int, int] | None = None  # (utterance, voiced end) of the tail job sent
        self._tail: tuple[tuple[int, int], object] | None = None  # its result: (key, Transcript)
        self._likely: tuple[int, int] | None = None  # the key an EndLikely was announced for

    # ---- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> Ear:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._worker.start()

    @property
    def thread(self) -> threading.Thread:
        """The transcription thread (the session lowers its scheduling priority)."""
        return self._worker

    def close(self) -> None:
        if self._started:
            self._jobs.put(None)
            self._worker.join(timeout=30)
            self._started = False

    @property
    def pending(self) -> int:
        """Transcription jobs queued or running (their events are posted before this drops)."""
        return self._pending

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Block until every queued transcription is done (tests and offline transcription)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    # ---- the clock --------------------------------------------------------------------------
    def mark_speech_end(self, frame: int) -> None:
        """The player's speech ends exactly at ``frame`` (scripted audio: its last non-silent
        sample + 1). The segment that contains it reports it as its end of speech."""
        self._marks.append(frame)

    def time_of(self, frame: int) -> float:
        """Monotonic time audio ``frame`` was heard: its chunk's feed time less the audio after
        it in the chunk (a chunk is complete, as from a microphone, when it is fed)."""
        for start, t in reversed(self._fed):
            if start <= frame <= start + CHUNK:
                return t - (start + CHUNK - frame) / EAR_RATE
        if not self._fed:
            return time.monotonic()
        start, t = self._fed[-1] if frame > self._fed[-1][0] else self._fed[0]
        return t - (start + CHUNK - frame) / EAR_RATE  # outside the kept chunks: audio time from the nearest

    def _speech_end(self, seg: Segment, decided: int) -> int:
        marks = [m for m in self._marks if seg.start_frame < m <= decided]
        if marks:
            return marks[-1]
        return seg.voiced_end_frame or seg.end_frame

    # ---- inputs -----------------------------------------------------------------------------
    def note_spoken(self, text: str, frame: int, key: object = None) -> None:
        """A character says or said ``text`` (still playing, or ending, at ``frame``): its words count
        as echo until ``echo_window_s`` after it. A ``key`` (the mixer's line id) replaces that line's
        earlier note, so a line noted every chunk while it plays keeps one entry that stays fresh."""
        self._spoken[key if key is not None else ("text", frame, text)] = (frame, text)
        while len(self._spoken) > 32:
            self._spoken.pop(next(iter(self._spoken)))

    def push_to_talk(self, pressed: bool, frame: int) -> list[VoiceEvent]:
        """The talk button went down (``pressed``) or up at ``frame``: gates the microphone."""
        if not self.config.push_to_talk:
            from dataclasses import replace

            self.config = replace(self.config, push_to_talk=True)
            if self.segmenter.in_speech:
                self.segmenter.flush()  # hands-free speech in progress is dropped: the button rules now
        now = time.monotonic()
        out: list[VoiceEvent] = []
        if self._likely is not None:  # the dropped speech was announced: nothing will close on it
            self._likely = None
            out.append(EndRevoked(now, frame, self._utterance))
        if pressed and not self._ptt_on:
            self._ptt_on, self._ptt_audio, self._ptt_start = True, [], frame
            self._utterance += 1
            out.append(SpeechStarted(now, frame))
        elif not pressed and self._ptt_on:
            self._ptt_on = False
            audio = np.concatenate(self._ptt_audio) if self._ptt_audio else np.zeros(0, np.float32)
            out += self._ended(Segment(self._ptt_start, frame, audio), now, frame)
        for ev in out:
            self.events.put(ev)
        return out

    def feed(self, chunk: np.ndarray, frame: int, reference: np.ndarray | None = None) -> list[VoiceEvent]:
        """One (512,) float32 chunk of microphone audio at 16 kHz starting at ``frame``;
        ``reference``: the same span of what the speakers played (16 kHz mono), for echo removal."""
        if not self._started:
            self.start()
        mic = np.asarray(chunk, np.float32)
        playing = reference is not None and bool(np.any(reference))
        if self.aec is not None and reference is not None:
            self.aec.adapting = not self.segmenter.in_speech  # freeze during double talk
            residual = self.aec.process(mic, reference)
        else:
            residual = mic
        if self.config.push_to_talk:
            if self._ptt_on:
                self._ptt_audio.append(residual)
            return []
        now = time.monotonic()
        self._fed.append((frame, now))
        out: list[VoiceEvent] = []
        if playing and not self.segmenter.in_speech and self._is_echo(mic, residual, reference):
            residual = np.zeros_like(residual)  # our own voice: the VAD must not hear it
        for ev in self.segmenter.process(residual, frame):
            if isinstance(ev, SegmentStart):
                self._utterance += 1
                self._partial_due = ev.frame + int((self.config.partial_every_s or 0) * EAR_RATE)
                out.append(SpeechStarted(now, ev.frame))
            else:
                out += self._ended(ev, now, frame + CHUNK)
        if self.segmenter.in_speech:
            out += self._end_of_turn(now, frame + CHUNK)
        if (self.segmenter.in_speech and self.config.partial_every_s and frame >= self._partial_due
                and self._pending == 0):
            self._partial_due = frame + int(self.config.partial_every_s * EAR_RATE)
            seg = self.segmenter
            self._submit(("partial", (self._utterance, seg.voiced_end_frame), seg.audio, frame))
        for ev in out:
            self.events.put(ev)
        return out

    def flush(self, frame: int) -> list[VoiceEvent]:
        """End of stream: close an open utterance."""
        out = [e for seg in self.segmenter.flush() for e in self._ended(seg, time.monotonic(), frame)]
        for ev in out:
            self.events.put(ev)
        return out

    def listen(self, chunks, start_frame: int = 0) -> int:
        """Feed an iterable of (512,) chunks (a source), then flush; returns the end frame."""
        frame = start_frame
        for chunk in chunks:
            self.feed(chunk, frame)
            frame += CHUNK
        self.flush(frame)
        return frame

    # ---- internals --------------------------------------------------------------------------
    def _is_echo(self, mic: np.ndarray, residual: np.ndarray, reference: np.ndarray) -> bool:
        """Double-talk decision for one chunk while the characters play. Echo if either
        (a) the canceller removed most of the mic signal (it has converged and explains it), or
        (b) the mic is not clearly louder than the echo level learned so far (covers the first
        second, before the canceller converges)."""
        mic_p = float(np.mean(mic.astype(np.float64) ** 2)) + 1e-12
        # the echo of a word lingers for the path's length (reflections): compare with the loudest
        # reference chunk of the last ~128 ms, not only the current one
        self._ref_powers.append(float(np.mean(reference.astype(np.float64) ** 2)))
        ref_p = max(self._ref_powers) + 1e-12
        res_p = float(np.mean(residual.astype(np.float64) ** 2))
        converged_explains = np.sqrt(res_p / mic_p) < self.config.echo_dominance
        ratio = mic_p / ref_p
        if self._echo_gain is None:
            # the first chunk of playback says little of the echo level: the echo lags the
            # reference by the path's delay and reflections (a line that starts 20 ms into its
            # chunk, as the neural voice's do, left 10 dB of it for the next chunk, which then
            # read as the player talking); it is taken as echo, the level is learned from the next
            if len(self._ref_powers) < 2:
                return True
            self._echo_gain = ratio
        louder = ratio > self._echo_gain * 10 ** (self.config.echo_margin_db / 10)
        echo = converged_explains or not louder
        if echo:  # learn the echo level only from chunks judged to be echo alone
            self._echo_gain = 0.9 * self._echo_gain + 0.1 * ratio
        return echo

    def _end_of_turn(self, now: float, decided: int) -> list[VoiceEvent]:
        """Inside speech, after each chunk: send the tail job once the silence is long enough;
        close early when its transcript is back, looks finished and the short silence has passed."""
        seg, vad = self.segmenter, self.segmenter.config
        key = (self._utterance, seg.voiced_end_frame)
        after = self.config.tail_after_ms
        if after is not None and seg.quiet_ms >= after and self._tail_key != key:
            self._tail_key = key
            self._submit(("tail", key, seg.audio, decided))
        tail = self._tail
        out: list[VoiceEvent] = []
        if self._likely is not None and self._likely != key:  # the player spoke on after the pause
            self._likely = None
            out.append(EndRevoked(now, decided, self._utterance))
        finished = tail is not None and tail[0] == key and looks_finished(tail[1].text, tail[1].confidence)
        if finished and self.config.think_ahead and self._likely != key:
            self._likely = key
            out.append(EndLikely(now, decided, tail[1].text, self._utterance, tail[1].confidence))
        if finished and vad.early_silence_ms is not None and seg.quiet_ms >= vad.early_silence_ms:
            return out + self._ended(seg.close_early(), now, decided)
        return out

    def _ended(self, seg: Segment, now: float, decided: int) -> list[VoiceEvent]:
        """A closed segment: SpeechEnded, and its transcript at once when the tail job already
        transcribed all of its speech (else a final job is queued)."""
        self._likely = None  # what follows (Heard, Rejected) settles an announced EndLikely
        end = seg.end_frame if seg.forced_split else self._speech_end(seg, decided)
        ended = SpeechEnded(now, seg.end_frame, seg.start_frame, self._utterance, seg.forced_split,
                            self.time_of(end), end, decided, seg.audio)
        if seg.too_short:
            return [Rejected(now, seg.end_frame, "too short", "", self._utterance)]
        key = (self._utterance, seg.voiced_end_frame)
        tail = self._tail
        if not seg.forced_split and tail is not None and tail[0] == key:
            return [ended, self._finish(ended, tail[1], now, early=seg.early)]
        self._submit(("final", ended, key if self._tail_key == key and not seg.forced_split else None))
        return [ended]

    def _submit(self, job) -> None:
        with self._idle:
            self._pending += 1
        self._jobs.put(job)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                self._run_job(job)
            except Exception as exc:  # noqa: BLE001 - reported as an event, the ear keeps listening
                self.events.put(Rejected(time.monotonic(), 0, f"ASR failed: {type(exc).__name__}: {exc}"))
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _run_job(self, job) -> None:
        if job[0] in ("partial", "tail"):
            # a transcript of the speech so far; the latest one is kept: when no speech came after
            # the audio it covered (same key), it is the utterance's final transcript
            kind, key, audio, frame = job
            if key[0] != self._utterance or (kind == "tail" and key != self._tail_key) or (
                    kind == "partial" and self._tail_key is not None and self._tail_key[0] == key[0]
                    and self._tail_key[1] >= key[1]):
                return  # superseded: speech went on after this tail, or went quiet after this partial
            tr = self.asr.transcribe(audio)
            self._tail = (key, tr)  # one assignment: the feeding thread reads it whole
            if not tr.empty:
                self.events.put(PartialTranscript(time.monotonic(), frame, tr.text, key[0]))
            return
        _, ended, key = job
        tail = self._tail  # the tail job for this speech ran before this one (one queue, in order)
        tr = tail[1] if key is not None and tail is not None and tail[0] == key else self.asr.transcribe(ended.audio)
        self.events.put(self._finish(ended, tr, time.monotonic()))

    def _finish(self, ended: SpeechEnded, tr, t_done: float, early: bool = False) -> VoiceEvent:
        """The utterance's transcript -> Heard, or Rejected (no words, or the characters' echo)."""
        if tr.empty:
            return Rejected(t_done, ended.frame, "; ".join(tr.dropped) or "no words", "", ended.utterance)
        recent = [text for f, text in list(self._spoken.values())
                  if ended.start_frame - f < self.config.echo_window_s * EAR_RATE]
        overlap = echo_overlap(tr.text, recent)
        if recent and overlap >= self.config.echo_overlap_reject:
            return Rejected(t_done, ended.frame, f"echo of a character ({overlap:.0%} of words)",
                            tr.text, ended.utterance)
        return Heard(t_done, ended.frame, tr.text, tr.language, tr.confidence, ended.t, t_done,
                     ended.start_frame, ended.utterance, ended.forced_split,
                     tuple((w, float(a), float(b)) for w, a, b in tr.words), ended.t_speech_end, early)


def drain(q: queue.Queue) -> list[VoiceEvent]:
    """Everything on an event queue right now, without blocking."""
    out = []
    while True:
        try:
            out.append(q.get_nowait())
        except queue.Empty:
            return out

