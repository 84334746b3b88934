"""The session's worker threads. The frame loop never waits on them: it puts requests on
their queues and drains their events once per frame.

- ``BrainWorker`` owns the director, the characters' memories and the mind: one turn at a time,
  prompt -> constrained stream -> sentences (handed to the speech worker as they come) -> reply.
  The director is touched only here: it judges each player line (an off-topic nudge steers that
  same turn, or becomes a ``NudgeDue`` for another character), advances its silence clock
  (``pace``), and after every job its state goes to the frame loop as a ``DirectorStateUpdated``
  copy (see ``director.Director`` on why the story never shares a dict with this thread).
- ``SpeechWorker`` owns the TTS engine: sentence by sentence into the spatial mixer, so the
  first sentence plays while the rest is still being made.

Both are a ``JobThread``: one daemon thread, a queue of jobs in order, failures reported as
``WorkerFailed`` events.
"""

from __future__ import annotations

import copy
import logging
import os
import queue
import threading
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Self

from xrstory.director.pacing import Nudge
from xrstory.runtime import events as ev
from xrstory.story.scene import Scene
from xrstory.story.state import Story, StoryState

log = logging.getLogger(__name__)


@dataclass
class TurnRequest:
    turn: int
    character: str
    text: str  # what the player said (as heard)
    state: StoryState  # a snapshot: the worker never touches the live story
    history: list = field(default_factory=list)  # story.state.Utterance items
    nudge: str | None = None  # director's reason when this turn is a nudge, not a player line


@dataclass(frozen=True)
class MindTimings(ev.Event):
    turn: int
    character: str
    timings: dict


@dataclass(frozen=True)
class MemoriesUpdated(ev.Event):
    memories: dict


@dataclass(frozen=True)
class DirectorStateUpdated(ev.Event):
    """A copy of the director's state, made on the brain thread; the frame loop puts it into
    ``story.state.director`` (only the frame loop holds it after the hand-over)."""

    state: dict


@dataclass(frozen=True)
class NudgeDue(ev.Event):
    """The director wants ``character`` to speak up (silence, or off topic while the player
    talked to someone else). The frame loop opens a nudge turn for it once nothing else is going
    on, unless a turn was opened meanwhile: ``next_turn`` is the number the next turn had when
    the director decided, so a newer turn (the player spoke up after all) makes it stale."""

    character: str
    reason: str
    next_turn: int


def yield_to_frame_loop(thread: threading.Thread, nice: int) -> bool:
    """Run ``thread`` ``nice`` steps below the frame loop in the OS scheduler (Linux sets nice per
    thread; threads it starts later inherit the value). Whisper, the model's Python decode loop
    and TTS then give way to the frame loop and the GL driver's threads when a core is contested,
    and still get every idle cycle. Measured on a 2-core CPU (3 spoken turns, 325 idle and ~1000
    busy frames each run): busy-frame p99 35.5 ms at nice 10 vs 37.7 ms at nice 0 (mean of 4 and
    3 runs). Compute pools that other threads created earlier keep their own priority. Returns
    False where the OS has no per-thread priority (the worker then runs as before)."""
    if nice <= 0 or not hasattr(os, "setpriority") or thread.native_id is None:
        return False
    try:
        now = os.getpriority(os.PRIO_PROCESS, thread.native_id)
        os.setpriority(os.PRIO_PROCESS, thread.native_id, min(19, now + nice))
    except OSError as exc:  # a sandbox may forbid it; the session works the same, only less smoothly
        log.warning("could not lower the priority of thread %s: %s", thread.name, exc)
        return False
    return True


class JobThread(ABC):
    """One daemon thread working through a queue of jobs in order; ``None`` ends it. A job that
    raises is reported to the frame loop as ``WorkerFailed`` and the thread goes on."""

    def __init__(self, name: str, out: queue.Queue, join_timeout_s: float):
        self.out = out
        self._name, self._join_timeout_s = name, join_timeout_s
        self._jobs: queue.Queue = queue.Queue()
        self._busy = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    @property
    def busy(self) -> bool:
        return self._busy.is_set() or not self._jobs.empty()

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=self._join_timeout_s)

    @abstractmethod
    def _do(self, job) -> None:
        """Carry out one job (on this thread)."""

    def _failed(self, job) -> None:  # noqa: B027 - an optional hook; by default nothing is half done
        """After ``job`` raised (and was reported): put right what it left half done."""

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            self._busy.set()
            try:
                self._do(job)
            except Exception as exc:  # noqa: BLE001 - reported to the loop, the session goes on
                log.error("%s worker failed on %r: %s", self._name, job, traceback.format_exc())
                self.out.put(ev.WorkerFailed(self._name, f"{type(exc).__name__}: {exc}"))
                self._failed(job)
            finally:
                self._busy.clear()


class SpeechWorker(JobThread):
    """Text -> audio in each character's voice -> mixer lines. One thread, in order."""

    def __init__(self, tts, mixer, scene: Scene, out: queue.Queue):
        from xrstory.voice.tts import VoiceSettings

        super().__init__("speech", out, join_timeout_s=10)
        self.tts, self.mixer, self.scene = tts, mixer, scene
        self._voices = {c.id: VoiceSettings.of(c.voice) for c in scene.characters}
        self._lines: dict[tuple[int, str], int] = {}  # (turn, character) -> mixer line id
        self._cancelled: set[int] = set()

    def line_id(self, turn: int, character: str) -> int:
        """The mixer line of a turn (created on first use, from any thread)."""
        key = (turn, character)
        if key not in self._lines:
            pos = self.scene.character(character).position
            head = (pos[0], pos[1] + self.scene.character(character).appearance.height * 0.9, pos[2])
            self._lines[key] = self.mixer.add_line(character, "", head)
        return self._lines[key]

    def say(self, turn: int, character: str, text: str) -> None:
        self._jobs.put(("say", turn, character, text))

    def end(self, turn: int, character: str) -> None:
        self._jobs.put(("end", turn, character, ""))

    def cancel(self, turn: int) -> None:
        self._cancelled.add(turn)

    def _do(self, job) -> None:
        kind, turn, character, text = job
        line = self.line_id(turn, character)
        if kind == "end":
            self.mixer.finish(line)
        elif turn not in self._cancelled:
            self.mixer.append(line, self.tts.synthesize(text, self._voices[character]))


class BrainWorker(JobThread):
    """Director, memory and mind on one thread; turns are processed one at a time."""

    def __init__(self, mind, scene: Scene, speech: SpeechWorker, out: queue.Queue, memory=None,
                 director=None, moderator=None):
        super().__init__("brain", out, join_timeout_s=30)
        self.mind, self.scene, self.speech = mind, scene, speech
        self.memory, self.director, self.moderator = memory, director, moderator
        self._stop_turn = threading.Event()
        self.moderated_turns: set[int] = set()
        # the director state the frame loop last got (only this thread reads or writes it)
        self._director_sent = director.snapshot() if director is not None else None

    def submit(self, request: TurnRequest) -> None:
        self._jobs.put(request)

    def call(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` on this thread, in order with the turns (director bookkeeping, SQLite writes)."""
        self._jobs.put(fn)

    def pace(self, quiet_s: float, spoke: bool, next_turn: int) -> None:
        """Advance the director's silence clock (on this thread): ``quiet_s`` seconds of frame time
        with nobody talking, after a character's line when ``spoke``. A resulting nudge is posted
        as ``NudgeDue`` stamped with ``next_turn`` (the frame loop's next turn number now)."""
        director, out = self.director, self.out
        if director is None:
            return

        def advance() -> None:
            if spoke:
                director.on_time(0.0, someone_speaking=True)  # a character talked: silence starts over
            nudge = director.on_time(quiet_s) if quiet_s > 0 else None
            if nudge is not None:
                out.put(NudgeDue(nudge.character_id, nudge.reason, next_turn))

        self.call(advance)

    def interrupt(self) -> None:
        """Stop generating the current turn (barge-in); its reply is then not committed."""
        self._stop_turn.set()

    def close(self) -> None:
        self._stop_turn.set()
        super().close()

    def _do(self, job) -> None:
        try:
            if callable(job):
                job()
            else:
                self._stop_turn.clear()
                self._turn(job)
        finally:
            self._send_director_state()

    def _send_director_state(self) -> None:
        """After each job: if the director's state changed, post a copy to the frame loop."""
        if self.director is None:
            return
        now = self.director.snapshot()
        if now != self._director_sent:
            self._director_sent = now
            self.out.put(DirectorStateUpdated(copy.deepcopy(now)))

    def _steer(self, req: TurnRequest) -> str | None:
        """The director's reason when this turn's prompt should steer the player, else None.
        A player line is judged here (on the director's thread); its off-topic nudge steers this
        turn when it names the addressed character, else it is due from that other character."""
        if req.nudge or self.director is None:
            return req.nudge
        nudge = self.director.on_player_line(req.text, req.character)
        if nudge is None:
            return None
        if nudge.character_id == req.character:
            self.out.put(ev.NudgeStarted(req.turn, req.character, nudge.reason))
            return nudge.reason
        self.out.put(NudgeDue(nudge.character_id, nudge.reason, req.turn + 1))
        return None

    def _failed(self, job) -> None:
        if not callable(job):
            self.speech.end(job.turn, job.character)  # the turn's line ends; nothing hangs in the mixer

    def _moderate(self, turn: int) -> Callable[[str], str | None] | None:
        if self.moderator is None:
            return None

        def check(text: str) -> str | None:
            verdict = self.moderator.check(text)
            if verdict.allowed:
                return text
            self.moderated_turns.add(turn)
            log.warning("moderation withheld a line (%s): %r", verdict.reason, text)
            return None

        return check

    def _turn(self, req: TurnRequest) -> None:
        c = req.character
        memories = self.memory.character(c).recall(req.text, k=3, skip_recent=2) if self.memory else []
        steer = self._steer(req)
        hints = self.director.prompt_hints(c) if self.director else []
        if steer:
            goal = self.director.goal() if self.director else self.scene.beat(req.state.beat).goal
            hints = [Nudge(c, steer, goal).hint, *hints]
        story = Story(self.scene, req.state)
        first = True
        for item in self.mind.respond(story, c, req.text, history=req.history, memories=memories, hints=hints,
                                      moderate=self._moderate(req.turn), should_stop=self._stop_turn.is_set):
            kind = type(item).__name__
            if kind == "ReplyStarted":
                self.out.put(ev.ReplyStarted(req.turn, c, t=item.t))
            elif kind == "Sentence":
                if first:
                    self.speech.line_id(req.turn, c)
                    first = False
                self.speech.say(req.turn, c, item.text)
                self.out.put(ev.SentenceReady(req.turn, c, item.text, item.index, t=item.t))
            elif kind == "Reply":
                self.speech.end(req.turn, c)
                self.out.put(ev.ReplyDone(req.turn, c, item.say, item.emotion, tuple(item.triggers),
                                          fallback=item.fallback, fallback_reason=item.fallback_reason,
                                          moderated=req.turn in self.moderated_turns))
                if self.memory is not None and not req.nudge:
                    self.memory.character(c).add(req.text, item.say, t=req.state.time)  # story time, saved with it
                    self.out.put(MemoriesUpdated(self.memory.to_state()))
            elif kind == "TurnTimings":
                self.out.put(MindTimings(req.turn, c, {
                    "prefill_ms": item.prefill_ms, "first_token_ms": item.first_token_ms,
                    "first_sentence_ms": item.first_sentence_ms, "total_ms": item.total_ms,
                    "tokens": item.tokens, "prompt_tokens": item.prompt_tokens,
                    "cached_prompt_tokens": item.cached_prompt_tokens}))
