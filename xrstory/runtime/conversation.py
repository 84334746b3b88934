"""The conversation side of a session, on the frame loop's thread: opens turns (a heard line, a
typed line, a press, a nudge), hands them to the brain thread, folds what comes back into the
turn's record, and applies committed triggers through ``Story.apply`` (which checks each again).

Collaborators, all given to it: the ``Story``, the ``BrainWorker`` (director, memory, mind on
their own thread), the ``TurnLedger`` (one record per turn), the ``Transcript`` (events with
scene time), the ``GazeFeed`` (what the head is turned to), ``play_cue`` (a trigger's sound).
It never waits on the brain: ``on_brain`` is called for each event the frame loop drains.
A spoken line may be thought ahead on before its turn closes (``think_ahead``; the protocol is in
``runtime.think_ahead``): the turn it would open runs held, and ``player_line`` commits it when
the final line is the same, or revokes it and submits the final line.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from xrstory.director.addressing import addressee
from xrstory.runtime import events as ev
from xrstory.runtime.brain import BrainWorker
from xrstory.runtime.brain_jobs import (
    CharacterInterrupted,
    CharacterSpoke,
    TriggerApplied,
    TurnRequest,
)
from xrstory.runtime.gaze_feed import GazeFeed
from xrstory.runtime.think_ahead import AheadLine, state_fingerprint
from xrstory.runtime.transcript import Transcript
from xrstory.runtime.turns import TurnLedger
from xrstory.story.scene import PLAYER
from xrstory.story.state import Story, Utterance

log = logging.getLogger("xrstory.runtime.session")


class Conversation:
    def __init__(self, story: Story, brain: BrainWorker, ledger: TurnLedger, transcript: Transcript,
                 gaze: GazeFeed, play_cue: Callable[[str], None]):
        self.story, self.scene = story, story.scene
        self.brain, self.ledger, self.transcript, self.gaze = brain, ledger, transcript, gaze
        self.play_cue = play_cue
        self.next_turn = 1
        self.pending_nudge: ev.NudgeDue | None = None  # waiting for the session to be idle
        self.on_sentence: Callable[[str, str], None] = lambda character, text: None  # subtitles
        self.on_reply: Callable[[int, str], None] = lambda turn, character: None  # a capture is due
        self.on_fired: Callable[[str], None] = lambda trigger: None
        self._last_speaker: str | None = None
        self._cut: dict[int, str] = {}  # turn -> words heard of a line cut off before its reply was done
        self._ahead: AheadLine | None = None  # the line thought ahead on, not yet committed or revoked

    # ---- opening turns ----------------------------------------------------------------------
    def _new_turn(self) -> int:
        turn, self.next_turn = self.next_turn, self.next_turn + 1
        return turn

    def think_ahead(self, heard: str) -> None:
        """The player paused on ``heard`` and it looks finished (``EndLikely``): the turn it would
        open starts now, held on the brain thread until ``player_line`` commits or revokes it."""
        self.revoke_ahead("a newer transcript of the line")
        character = self.addressee(heard)
        state = self.story.state.model_copy(deep=True)
        history = list(state.conversation)
        state.conversation.append(Utterance(t=state.time, speaker=PLAYER, text=heard))  # as note_utterance will
        request = TurnRequest(self.next_turn, character, heard, state, history, commit=threading.Event())
        self._ahead = AheadLine(heard, character, request, state_fingerprint(self.story.state), time.monotonic())
        self.transcript.emit(ev.ThinkingAhead(self.next_turn, character, heard))
        self.gaze.flush()
        self.brain.submit(request)

    def revoke_ahead(self, reason: str) -> None:
        """The line thought ahead on is not the turn's: its held output is dropped."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead.request.cancel.set()
            self.transcript.emit(ev.ThinkingDropped(ahead.request.turn, ahead.character, reason))

    def press(self, target: str, step_line: int = 0) -> int:
        """The player points at ``target`` and presses select: the prop's trigger is applied
        as the player's (the story checks it like any other). Recorded as a turn without speech."""
        self.revoke_ahead(f"the player pressed {target}")
        turn = self._new_turn()
        self.ledger.open(turn, step_line, f"(presses {target})", "", "", False, None, time.monotonic())
        self.transcript.emit(ev.PlayerPressed(turn, target))
        prop = next((p for p in self.scene.props if p.id == target), None)
        if prop is None or prop.press_trigger is None:
            self.transcript.emit(ev.TriggerRefused(turn, f"press:{target}", PLAYER,
                                                   f"nothing happens when '{target}' is pressed"))
            self.ledger.get(turn).refused[f"press:{target}"] = "nothing to press"
            return turn
        self.apply_triggers(turn, (prop.press_trigger,), PLAYER)
        if self.ledger.get(turn).refused.get(prop.press_trigger) is None:  # it fired: props and triggers changed
            self.brain.reprime(self.story.state.model_copy(deep=True), list(self.story.state.conversation))
        return turn

    def addressee(self, text: str) -> str:
        """``director.addressing.addressee``: the vocative, a name in the line, else the character
        the head is turned to (the gaze tracker's target this frame), else the last one spoken to."""
        return addressee(text, [(c.id, c.name) for c in self.scene.characters], self.gaze.looking_at,
                         self._last_speaker)

    def player_line(self, script_text: str, heard: str, step_line: int, spoken: bool,
                    t_speech_end: float | None, t_heard: float, language: str = "en",
                    confidence: float = 1.0, t_endpoint: float | None = None) -> int:
        """A line the player said (heard by Whisper) or typed: a new turn for the addressee.
        Stamps: ``t_speech_end`` the player stopped, ``t_endpoint`` the VAD decided, ``t_heard``
        the transcript was ready (typed: all three are the submission, or None)."""
        ahead, self._ahead = self._ahead, None
        turn = self._new_turn()
        character = self.addressee(heard)
        rec = self.ledger.open(turn, step_line, script_text, heard, character, spoken, t_speech_end, t_heard,
                               t_endpoint)
        self.transcript.emit(ev.PlayerHeard(turn, heard, language, confidence, addressed=character, t=t_heard))
        history = list(self.story.state.conversation)  # all of it: prompt.plan_prompt cuts it in blocks
        why_not = ahead.matches(heard, character, turn, state_fingerprint(self.story.state)) if ahead else ""
        self.story.note_utterance(PLAYER, heard)
        self._last_speaker = character
        if ahead is not None and not why_not:
            rec.t_thinking = ahead.t
            ahead.request.commit.set()  # the held turn is this one: its output is released
            return turn
        if ahead is not None:
            self._ahead = ahead
            self.revoke_ahead(why_not)
        self.gaze.flush()  # queued before the line: this turn's hints already know the dwell
        # the brain thread judges the line (director.on_player_line) before it prompts the model
        self.brain.submit(TurnRequest(turn, character, heard, self.story.state.model_copy(deep=True), history))
        return turn

    def nudge_turn(self, character: str, reason: str) -> int:
        """A turn with no player line: ``character`` speaks up to steer a stalling player (the
        model gets a neutral stand-in as the player's line and the director's steer hint)."""
        self.revoke_ahead("the director nudged")
        turn = self._new_turn()
        rec = self.ledger.open_nudge(turn, character, reason)
        self.transcript.emit(ev.NudgeStarted(turn, character, reason))
        history = list(self.story.state.conversation)  # all of it: prompt.plan_prompt cuts it in blocks
        self.gaze.flush()
        self.brain.submit(TurnRequest(turn, character, rec.heard_text, self.story.state.model_copy(deep=True),
                                      history, nudge=reason))
        self._last_speaker = character
        return turn

    def nudge_if_due(self, idle: bool) -> None:
        """A due nudge opens its turn once the session is idle; a turn opened since the director
        decided (or the story's end) makes it stale."""
        due = self.pending_nudge
        if due is None:
            return
        if due.next_turn != self.next_turn or self.story.state.ended is not None:
            log.info("nudge by %s dropped: the player went on (%s)", due.character, due.reason)
            self.pending_nudge = None
        elif idle:
            self.pending_nudge = None
            self.nudge_turn(due.character, due.reason)

    def barge_in(self) -> list[int]:
        """The player started speaking: every open turn stops (running or still queued)."""
        return self.brain.interrupt()

    # ---- what the brain thread reports ------------------------------------------------------
    def on_brain(self, w: ev.Event) -> None:
        rec = self.ledger.get(getattr(w, "turn", 0))
        match w:
            case ev.FirstToken():
                if rec is not None:
                    rec.t_first_token = w.t
                self.transcript.emit(w)
            case ev.SentenceReady():
                if rec is not None and rec.t_first_sentence is None:
                    rec.t_first_sentence = w.t
                self.on_sentence(w.character, w.text)
                self.transcript.emit(w)
            case ev.ReplyDone():
                self._reply_done(w, rec)
            case ev.MemoriesUpdated():
                self.story.state.memories = w.memories
            case ev.DirectorStateUpdated():
                self.story.state.director = w.state
            case ev.NudgeDue():
                self.pending_nudge = w
            case _:
                self.transcript.emit(w)  # NudgeStarted, MindTimings, WorkerFailed

    def _reply_done(self, w: ev.ReplyDone, rec) -> None:
        if rec is not None:
            rec.t_reply_done = w.t
            rec.say, rec.emotion, rec.triggers = w.say, w.emotion, list(w.triggers)
            rec.fallback, rec.fallback_reason, rec.moderated = w.fallback, w.fallback_reason, w.moderated
            rec.interrupted = rec.interrupted or w.interrupted
        self.transcript.emit(w)
        cut = self._cut.pop(w.turn, None)  # the line was already cut off: keep what was heard
        if w.say and (cut is None or cut):
            self.story.note_utterance(w.character, w.say if cut is None else cut, interrupted=cut is not None)
            self.brain.tell(CharacterSpoke(w.character, w.say if cut is None else cut))
        if w.withheld:
            for trig in w.triggers:
                self.transcript.emit(ev.TriggerRefused(w.turn, trig, w.character, w.withheld))
                if rec is not None:
                    rec.refused[trig] = w.withheld
        else:
            self.apply_triggers(w.turn, w.triggers, w.character)
        self.on_reply(w.turn, w.character)
        if rec is not None and not rec.t_first_sentence and w.say:
            rec.t_first_sentence = w.t

    # ---- what the mixer reports about the turn's line ----------------------------------------
    def line_started(self, turn: int, character: str, t: float, frame: int = 0) -> None:
        rec = self.ledger.get(turn)
        if rec is not None and rec.t_first_audio is None:
            rec.t_first_audio = t
        self.transcript.emit(ev.LineStarted(turn, character, frame, t=t))

    def line_done(self, turn: int, character: str, t: float, frame: int = 0) -> None:
        self.transcript.emit(ev.LineStopped(turn, character, frame=frame, t=t))

    def line_interrupted(self, turn: int, character: str, words_spoken: str, t: float, frame: int = 0) -> None:
        rec = self.ledger.get(turn)
        if rec is not None:
            rec.interrupted = True
        if rec is not None and rec.t_reply_done is None:
            self._cut[turn] = words_spoken  # the reply is not committed yet: it keeps these words
        # the model's context keeps what the player actually heard, marked as cut off
        for u in reversed(self.story.state.conversation if rec is None or rec.t_reply_done else ()):
            if u.speaker == character:
                u.text, u.interrupted = (words_spoken or u.text), True
                break
        self.brain.tell(CharacterInterrupted(character))
        self.transcript.emit(ev.LineStopped(turn, character, interrupted=True,
                                            words_spoken=len(words_spoken.split()), frame=frame, t=t))

    # ---- the story ---------------------------------------------------------------------------
    def apply_triggers(self, turn: int, triggers, by: str) -> None:
        rec = self.ledger.get(turn)
        for trig in triggers:
            result = self.story.apply(trig, by=by)
            self.brain.tell(TriggerApplied(result))
            if not result.fired:
                self.transcript.emit(ev.TriggerRefused(turn, trig, by, result.reason))
                if rec is not None:
                    rec.refused[trig] = result.reason
                continue
            self.transcript.emit(ev.TriggerFired(turn, trig, by, result.beat_after))
            if rec is not None:
                rec.fired.append(trig)
            for cue in result.sounds:
                self.play_cue(cue)
            self.on_fired(trig)
            if result.ended:
                self.transcript.emit(ev.StoryEnded(result.ended))
