"""How a turn starts and how triggers land: the part of ``Session`` that turns a heard line,
a typed line or a press into a ``TurnRecord``, a request for the brain worker, and calls of
``Story.apply`` (the story checks every trigger; refused ones are events too).

A mixin of ``runtime.session.Session``, which owns the state these methods use (``story``,
``ledger``, ``brain``, ``director``, ``gaze``, ``mixer``, ``events``); it runs on the frame loop's
thread only. The director is reached only through the brain worker (it lives on the brain
thread): player lines are judged there, and a nudge it decides on comes back as ``NudgeDue``;
``_pace`` then opens a nudge turn through the same ledger and events as a player's turn.
"""

from __future__ import annotations

import logging
import time

from xrstory.director.addressing import addressee
from xrstory.runtime import events as ev
from xrstory.runtime.workers import TurnRequest
from xrstory.story.scene import PLAYER

log = logging.getLogger("xrstory.runtime.session")


class TurnFlow:
    """Starting turns, applying triggers, and recording what happened as events."""

    def press(self, target: str, step_line: int = 0) -> int:
        """The player points at ``target`` and presses select: the prop's trigger is applied
        as the player's (the story checks it like any other). Recorded as a turn without speech."""
        turn = self._next_turn
        self._next_turn += 1
        self.ledger.open(turn, step_line, f"(presses {target})", "", "", False, None, time.monotonic())
        self._emit(ev.PlayerPressed(turn, target))
        prop = next((p for p in self.scene.props if p.id == target), None)
        if prop is None or prop.press_trigger is None:
            self._emit(ev.TriggerRefused(turn, f"press:{target}", PLAYER, f"nothing happens when '{target}' is pressed"))
            self.ledger.get(turn).refused[f"press:{target}"] = "nothing to press"
            return turn
        self._apply_triggers(turn, (prop.press_trigger,), PLAYER)
        return turn

    def _addressee(self, text: str) -> str:
        """``director.addressing.addressee``: the vocative, a name in the line, else the character
        the head is turned to (the gaze tracker's target this frame), else the last one spoken to."""
        return addressee(text, [(c.id, c.name) for c in self.scene.characters], self.gaze.looking_at,
                         self._last_speaker)

    def _start_turn(self, script_text: str, heard: str, step_line: int, spoken: bool,
                    t_speech_end: float | None, t_heard: float) -> int:
        turn = self._next_turn
        self._next_turn += 1
        character = self._addressee(heard)
        self.ledger.open(turn, step_line, script_text, heard, character, spoken, t_speech_end, t_heard)
        self._emit(ev.Heard(turn, heard, addressed=character, t=t_heard))
        history = list(self.story.state.conversation[-8:])
        self.story.note_utterance(PLAYER, heard)
        self.gaze.flush()  # queued before the line: this turn's hints already know the dwell
        # the brain thread judges the line (director.on_player_line) before it prompts the model
        self.brain.submit(TurnRequest(turn, character, heard, self.story.state.model_copy(deep=True), history))
        self._active_turn = turn
        self._last_speaker = character
        return turn

    def start_nudge_turn(self, character: str, reason: str) -> int:
        """A turn with no player line: ``character`` speaks up to steer a stalling player (the
        model gets a neutral stand-in as the player's line and the director's steer hint)."""
        turn = self._next_turn
        self._next_turn += 1
        rec = self.ledger.open_nudge(turn, character, reason)
        self._emit(ev.NudgeStarted(turn, character, reason))
        history = list(self.story.state.conversation[-8:])
        self.gaze.flush()
        self.brain.submit(TurnRequest(turn, character, rec.heard_text, self.story.state.model_copy(deep=True),
                                      history, nudge=reason))
        self._active_turn = turn
        self._last_speaker = character
        return turn

    def _pace(self, dt: float) -> None:
        """Per frame: the silence clock (``silence_feed``) and a due nudge, opened when nothing
        else is going on and dropped when a turn was opened since the director decided."""
        waiting = self.hearing or self.brain.busy or self._pending_nudge is not None
        speaking = self.speech.busy or bool(self.mixer.speaking)
        self.silence.update(dt, waiting=waiting, speaking=speaking, next_turn=self._next_turn)
        due = self._pending_nudge
        if due is None:
            return
        if due.next_turn != self._next_turn or self.story.state.ended is not None:
            log.info("nudge by %s dropped: the player went on (%s)", due.character, due.reason)
            self._pending_nudge = None
        elif not self.busy:
            self._pending_nudge = None
            self.start_nudge_turn(due.character, due.reason)

    def _apply_triggers(self, turn: int, triggers, by: str) -> None:
        rec = self.ledger.get(turn)
        for trig in triggers:
            result = self.story.apply(trig, by=by)
            self.brain.call(lambda r=result, d=self.director: d.on_trigger(r))
            if result.fired:
                self._emit(ev.TriggerFired(turn, trig, by, result.beat_after))
                if rec is not None:
                    rec.fired.append(trig)
                for cue in result.sounds:
                    try:
                        self.mixer.play_cue(cue)
                    except Exception as exc:  # noqa: BLE001 - a missing cue is not worth a crash
                        log.warning("sound cue %s: %s", cue, exc)
                self._capture_next.append(f"trigger {trig}")
                if result.ended:
                    self._emit(ev.StoryEnded(result.ended))
            else:
                self._emit(ev.TriggerRefused(turn, trig, by, result.reason))
                if rec is not None:
                    rec.refused[trig] = result.reason

    def _emit(self, event: ev.Event) -> None:
        d = event.to_dict()
        d["scene_time"] = round(self.time, 3)
        self.events.append(d)
        self.on_event(d)

