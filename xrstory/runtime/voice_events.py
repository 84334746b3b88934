"""What the ear and the mixer report, turned into session state: the player started or
stopped speaking (and barged in), a line was heard (a new turn), a character's line started,
finished or was cut off (the conversation then keeps only the words the player heard).

A mixin of ``runtime.session.Session`` (frame-loop thread only); ``_handle_voice`` is called
from the session's audio chunk and drain for each event of ``voice.ear`` and ``voice.mixer``.
"""

from __future__ import annotations

import logging

from xrstory.runtime import events as ev

log = logging.getLogger("xrstory.runtime.session")


class VoiceEvents:
    """Handlers of the ear's (VAD, Whisper) and the mixer's (speaking lines) events."""

    def _handle_voice(self, v) -> None:
        kind = type(v).__name__
        if kind == "SpeechStarted":
            self._emit(ev.PlayerSpeechStarted(self._next_turn, t=v.t))
            if self.mixer.speaking or self.brain.busy:
                self._barge_in()
        elif kind == "SpeechEnded":
            self._emit(ev.PlayerSpeechEnded(self._next_turn, t=v.t))
        elif kind == "Heard":
            if not v.text.strip():
                return
            script_text, step_line = self._script_text_for(v)
            self._start_turn(script_text or v.text, v.text, step_line, True, v.t_end_of_speech, v.t_transcribed)
        elif kind == "Rejected":
            self.events.append({"event": "Rejected", "t": v.t, "reason": v.reason, "text": v.text,
                                "scene_time": round(self.time, 3)})
        elif kind == "SpeakingStarted":
            turn = self.ledger.line_turn.get(v.line)
            rec = self.ledger.get(turn) if turn else None
            if rec is not None and rec.t_first_audio is None:
                rec.t_first_audio = v.t
            self._emit(ev.SpeakingStarted(turn or 0, v.character, t=v.t))
        elif kind == "SpeakingDone":
            turn = self.ledger.line_turn.get(v.line, 0)
            self._emit(ev.SpeakingStopped(turn, v.character, t=v.t))
        elif kind == "SpeakingInterrupted":
            turn = self.ledger.line_turn.get(v.line, 0)
            rec = self.ledger.get(turn)
            if rec is not None:
                rec.interrupted = True
            spoken = v.words_spoken
            # the model's context keeps what the player actually heard, marked as cut off
            for u in reversed(self.story.state.conversation):
                if u.speaker == v.character:
                    u.text, u.interrupted = (spoken or u.text), True
                    break
            director = self.director
            self.brain.call(lambda c=v.character: director.on_interruption(c))
            self._emit(ev.SpeakingStopped(turn, v.character, interrupted=True,
                                          words_spoken=len(spoken.split()), t=v.t))
        elif kind == "SpeakingLevel":
            self._speaking[v.character] = v.level

    def _script_text_for(self, heard) -> tuple[str, int]:
        # scripted sessions speak one line at a time: the heard text belongs to the last one queued
        text, line = self._script_line
        self._script_line = ("", 0)
        return text, line

    def _barge_in(self) -> None:
        stopped = self.mixer.stop(character=None)
        if self._active_turn is not None and self.brain.busy:
            self.brain.interrupt()
            self.speech.cancel(self._active_turn)
        if stopped:
            log.info("barge-in: stopped %d line(s)", len(stopped))

