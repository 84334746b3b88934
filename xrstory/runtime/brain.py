"""The brain thread: director, memory and mind, one job at a time, in order.

Jobs (``runtime.brain_jobs``) are ``TurnRequest`` (a character answers: prompt -> constrained stream -> sentences handed
to the mouth as they come -> one committed reply) and ``DirectorNote`` (the director's one inbox
message type: what the frame loop saw that the director must know). The director is touched only
on this thread; after every job a copy of its state goes to the frame loop as
``DirectorStateUpdated`` (see ``director.Director`` on why the story never shares a dict with it).

Each turn carries its own cancel flag (``TurnRequest.cancel``): a barge-in sets the flags of every
turn still open, running or queued, so an interrupt sent while a turn waits behind another job is
never lost. A turn thought ahead on (``TurnRequest.commit``, see ``runtime.think_ahead``) runs at
once, but what it produces is held until its line is committed, and dropped if it is revoked.

What a reply may fire (``triggers_to_fire``), decided here and applied by the frame loop:
- a turn the player cut off (barge-in) fires nothing: the player did not hear the reply out;
- a fallback line with none of the model's words in it (server error, garbage output, every
  sentence withheld by moderation) fires nothing: what the player hears must be what acts;
- a nudge turn (the director's, no player line) fires nothing: a nudge steers the player toward
  the beat's goal, it never does the player's part of the story;
- otherwise every named trigger goes to ``Story.apply``, which checks it again.
Fallback lines are spoken and subtitled like any other line (a ``SentenceReady`` with index -1),
and their reason is in the transcript (``ReplyDone.fallback_reason``).
"""

from __future__ import annotations

import copy
import logging
import queue
import threading
import time
from functools import partial

from xrstory.director.pacing import Nudge
from xrstory.mind.reply import Reply, ReplyStarted, Sentence, TurnTimings
from xrstory.runtime import events as ev
from xrstory.runtime.brain_jobs import (
    CharacterInterrupted,
    CharacterSpoke,
    DirectorNote,
    GazeDwell,
    QuietTime,
    Reprime,
    Settle,
    TriggerApplied,
    TurnRequest,
)
from xrstory.runtime.jobs import JobThread
from xrstory.runtime.think_ahead import HeldOutput
from xrstory.story.scene import Scene
from xrstory.story.state import Story, StoryState

log = logging.getLogger(__name__)

# a line thought ahead on is committed or revoked within about a second (the early silence, else
# the long one); a finished reply waits this long for the word before it is thrown away
COMMIT_WAIT_S = 3.0


def triggers_to_fire(reply: Reply, *, interrupted: bool, nudge: bool, released: int) -> str:
    """Why none of the reply's triggers may fire ("" when they all go to ``Story.apply``)."""
    if not reply.triggers:
        return ""
    if interrupted:
        return "cut off by the player: a reply not heard out fires nothing"
    if reply.fallback and not released:
        return f"fallback line ({reply.fallback_reason}): none of the model's words were heard"
    if nudge:
        return "a nudge steers the player; it never fires a trigger"
    return ""


def speaking_position(scene: Scene, character: str) -> tuple[float, float, float]:
    """Where a character's voice comes from: its head (metres, world)."""
    c = scene.character(character)
    return (c.position[0], c.position[1] + c.appearance.height * 0.9, c.position[2])


class BrainWorker(JobThread):
    """Director, memory and mind on one thread; ``mouth`` (``voice.mouth.Mouth``) speaks."""

    def __init__(self, mind, scene: Scene, mouth, out: queue.Queue, memory=None, director=None, moderator=None):
        super().__init__("brain", out, join_timeout_s=30)
        self.mind, self.scene, self.mouth = mind, scene, mouth
        self.memory, self.director, self.moderator = memory, director, moderator
        self.moderated_turns: set[int] = set()
        self._open: dict[int, TurnRequest] = {}  # turns submitted and not yet done
        self._lock = threading.Lock()
        self._lines: dict[int, int] = {}  # turn -> mouth line (made with the first sentence)
        # the director state the frame loop last got (only this thread reads or writes it)
        self._director_sent = director.snapshot() if director is not None else None
        if director is not None and getattr(mind, "hints_for", False) is None:
            mind.hints_for = director.prompt_hints  # primed prompts carry the next turn's hints

    # ---- from the frame loop --------------------------------------------------------------
    def submit(self, request: TurnRequest) -> None:
        with self._lock:
            self._open[request.turn] = request
        self._jobs.put(request)

    def reprime(self, state: StoryState, history: list) -> None:
        """Queue a ``Reprime`` (a no-op for a mind that keeps no primed cache)."""
        if getattr(getattr(self.mind, "config", None), "prime", False):
            self._jobs.put(Reprime(state, list(history)))

    def tell(self, note: DirectorNote) -> None:
        """A message for the director, handled on this thread in order with the turns."""
        self._jobs.put(note)

    def pace(self, quiet_s: float, spoke: bool, next_turn: int) -> None:
        """Advance the director's silence clock (``SilenceFeed`` calls it every second)."""
        self.tell(QuietTime(quiet_s, spoke, next_turn))

    def settle(self, timeout: float = 10.0) -> bool:
        """Wait until every job queued so far has run."""
        done = threading.Event()
        self.tell(Settle(done))
        return done.wait(timeout)

    @property
    def open_turns(self) -> list[int]:
        with self._lock:
            return sorted(self._open)

    def interrupt(self, turn: int | None = None) -> list[int]:
        """Barge-in: cancel ``turn`` (None: every open turn, running or still queued); a cancelled
        turn stops generating, speaks nothing more and fires nothing. Returns the turns hit."""
        with self._lock:
            hit = [r for r in self._open.values() if turn is None or r.turn == turn]
        for r in hit:
            r.cancel.set()
        return [r.turn for r in hit]

    def close(self) -> None:
        self.interrupt()
        super().close()

    # ---- on this thread --------------------------------------------------------------------
    def _do(self, job) -> None:
        try:
            match job:
                case TurnRequest():
                    try:
                        self._turn(job)
                    finally:
                        with self._lock:
                            self._open.pop(job.turn, None)
                case Settle(done=done):
                    done.set()
                case Reprime(state=state, history=history):
                    self.mind.prime(Story(self.scene, state), history)
                case _:
                    self._note(job)
        finally:
            self._send_director_state()
            if not isinstance(job, TurnRequest | Settle) and self._jobs.empty():
                self._refresh_prime()

    def _refresh_prime(self) -> None:
        """Idle after a note: where the director's hints changed (they come before the player's
        line), the characters' caches are primed again now rather than in the next turn."""
        refresh = getattr(self.mind, "refresh_prime", None)
        if refresh is not None:
            refresh()

    def _note(self, note: DirectorNote) -> None:
        d = self.director
        if d is None:
            return
        match note:
            case TriggerApplied(result=result):
                d.on_trigger(result)
            case GazeDwell(dwell=dwell):
                d.on_gaze(dwell)
            case CharacterSpoke(character=c, text=text):
                d.on_character_line(c, text)
            case CharacterInterrupted(character=c):
                d.on_interruption(c)
            case QuietTime(quiet_s=quiet_s, spoke=spoke, next_turn=next_turn):
                if spoke:
                    d.on_time(0.0, someone_speaking=True)  # a character talked: silence starts over
                nudge = d.on_time(quiet_s) if quiet_s > 0 else None
                if nudge is not None:
                    self.out.put(ev.NudgeDue(nudge.character_id, nudge.reason, next_turn))

    def _send_director_state(self) -> None:
        """After each job: if the director's state changed, post a copy to the frame loop."""
        if self.director is None:
            return
        now = self.director.snapshot()
        if now != self._director_sent:
            self._director_sent = now
            self.out.put(ev.DirectorStateUpdated(copy.deepcopy(now)))

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
        self.out.put(ev.NudgeDue(nudge.character_id, nudge.reason, req.turn + 1))
        return None

    def _moderate(self, turn: int):
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

    def _say(self, req: TurnRequest, text: str, index: int, t: float | None = None,
             held: HeldOutput | None = None) -> None:
        """One sentence of the turn's line: to the mouth (the line is made with the first one,
        tagged with the turn) and to the frame loop for the subtitles. A held turn's sentence is
        synthesised at once into a held line; its subtitle waits in ``held``."""
        if req.cancel.is_set() or not text.strip():
            return
        if req.turn not in self._lines:
            from xrstory.voice.tts import VoiceSettings

            voice = VoiceSettings.of(self.scene.character(req.character).voice)
            self._lines[req.turn] = self.mouth.begin_line(req.character, voice,
                                                          speaking_position(self.scene, req.character),
                                                          turn=req.turn, held=held is not None and held.waiting)
        self.mouth.add_sentence(self._lines[req.turn], text)
        extra = {} if t is None else {"t": t}
        put = partial(self.out.put, ev.SentenceReady(req.turn, req.character, text, index, **extra))
        if held is not None:
            held(put)
        else:
            put()

    def _end_line(self, turn: int) -> None:
        line = self._lines.pop(turn, None)
        if line is not None:
            self.mouth.end_line(line)

    def _failed(self, job) -> None:
        """A turn that raised still ends with a line the player hears, and fires nothing (a line
        thought ahead on: once it is committed; nothing if it is revoked)."""
        if not isinstance(job, TurnRequest):
            return
        if job.commit is not None:
            if not job.commit.is_set() and not self._await_commit(job, HeldOutput(True), judge=False):
                return
            if job.turn in self._lines:  # the held line the failed run made: it speaks the fallback now
                self.mouth.release(self._lines[job.turn])
        c = self.scene.character(job.character)
        line = c.fallback_lines[0] if c.fallback_lines else "..."
        self._say(job, line, -1)
        self._end_line(job.turn)
        self.out.put(ev.ReplyDone(job.turn, job.character, line, "neutral", (), fallback=True,
                                  fallback_reason="the mind failed on this turn", interrupted=job.cancel.is_set()))

    def _turn(self, req: TurnRequest) -> None:
        if req.cancel.is_set():  # interrupted while it waited behind another job
            if req.commit is None:  # (a revoked line thought ahead on opened no turn: nothing to end)
                self.out.put(ev.ReplyDone(req.turn, req.character, "", "neutral", (), interrupted=True,
                                          fallback_reason="interrupted before it began"))
            return
        memories = self.memory.character(req.character).recall(req.text, k=3, skip_recent=2) if self.memory else []
        held = HeldOutput(req.commit is not None)
        # the director judges a line once it is the player's for sure (for a held one: at commit)
        self._generate(req, memories, self._hints(req, None if held.waiting else self._steer(req)), held)
        if held.state in ("restart", "dropped"):
            self.moderated_turns.discard(req.turn)  # what moderation withheld was never heard
        if held.state == "restart":  # committed, and the director's judgement changes the prompt
            self._generate(req, memories, self._hints(req, held.steer), HeldOutput(False))
        elif held.state == "dropped":
            log.info("turn %d thought ahead on %r was not the player's line: dropped", req.turn, req.text)

    def _hints(self, req: TurnRequest, steer: str | None) -> list[str]:
        c = req.character
        hints = self.director.prompt_hints(c) if self.director else []
        if steer:
            goal = self.director.goal() if self.director else self.scene.beat(req.state.beat).goal
            hints = [Nudge(c, steer, goal).hint, *hints]
        return hints

    def _generate(self, req: TurnRequest, memories: list, hints: list[str], held: HeldOutput) -> None:
        """One run of the mind for ``req``; its output goes through ``held``."""
        c = req.character
        story = Story(self.scene, req.state)
        released = 0
        for item in self.mind.respond(story, c, req.text, history=req.history, memories=memories, hints=hints,
                                      moderate=self._moderate(req.turn), should_stop=partial(self._stop, req, held)):
            if isinstance(item, Reply) and held.waiting:
                self._await_commit(req, held)  # the reply is complete before the line is final
            if held.state in ("dropped", "restart"):
                return
            match item:
                case ReplyStarted(t=t):
                    held(partial(self.out.put, ev.FirstToken(req.turn, c, t=t)))
                case Sentence(text=text, index=index, t=t):
                    self._say(req, text, index, t, held)
                    released += 1
                case Reply():
                    self._reply(req, item, released)
                case TurnTimings():
                    held(partial(self.out.put, ev.MindTimings(req.turn, c, {
                        "prefill_ms": item.prefill_ms, "first_token_ms": item.first_token_ms,
                        "first_sentence_ms": item.first_sentence_ms, "total_ms": item.total_ms,
                        "tokens": item.tokens, "prompt_tokens": item.prompt_tokens,
                        "cached_prompt_tokens": item.cached_prompt_tokens,
                        "thought_ahead": req.commit is not None})))

    def _stop(self, req: TurnRequest, held: HeldOutput) -> bool:
        """The mind's ``should_stop``, polled every token: also where a held turn learns that its
        line was committed (its output is released at once) or revoked (dropped)."""
        if held.waiting:
            if req.commit.is_set():
                self._commit(req, held)
            elif req.cancel.is_set():
                self._drop(req, held)
        return req.cancel.is_set() or held.state in ("dropped", "restart")

    def _commit(self, req: TurnRequest, held: HeldOutput) -> None:
        steer = self._steer(req)
        if steer:
            held.steer = steer
            self._drop(req, held, "restart")
            return
        line = self._lines.get(req.turn)
        if line is not None:
            self.mouth.release(line)
        held.release()

    def _drop(self, req: TurnRequest, held: HeldOutput, state: str = "dropped") -> None:
        line = self._lines.pop(req.turn, None)
        if line is not None:
            self.mouth.discard(line)
        held.drop(state)

    def _await_commit(self, req: TurnRequest, held: HeldOutput, judge: bool = True) -> bool:
        """Block until a held turn's line is committed or revoked (or COMMIT_WAIT_S passed: then
        it counts as revoked); True when committed. ``judge``: release or restart through the
        director, as ``_stop`` does."""
        deadline = time.monotonic() + COMMIT_WAIT_S
        while not req.commit.wait(0.005):
            if req.cancel.is_set() or time.monotonic() > deadline:
                req.cancel.set()
                self._drop(req, held)
                return False
        if judge:
            self._stop(req, held)
        return True

    def _reply(self, req: TurnRequest, reply: Reply, released: int) -> None:
        interrupted = req.cancel.is_set()
        if not released and not interrupted:
            self._say(req, reply.say, -1)  # a fallback line is heard like any other
        self._end_line(req.turn)
        withheld = triggers_to_fire(reply, interrupted=interrupted, nudge=req.nudge is not None, released=released)
        self.out.put(ev.ReplyDone(req.turn, req.character, reply.say, reply.emotion, tuple(reply.triggers),
                                  fallback=reply.fallback, fallback_reason=reply.fallback_reason,
                                  moderated=req.turn in self.moderated_turns, interrupted=interrupted,
                                  withheld=withheld))
        # an empty say (nothing to remember) must not end the brain thread: memory.add refuses it
        if self.memory is not None and not req.nudge and not interrupted and req.text.strip() and reply.say.strip():
            self.memory.character(req.character).add(req.text, reply.say, t=req.state.time)  # story time
            self.out.put(ev.MemoriesUpdated(self.memory.to_state()))
