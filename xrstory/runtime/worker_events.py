"""What the brain and speech workers report, turned into session state: a reply started, a
sentence is ready (subtitles, the turn's mixer line), a reply is committed (its triggers go
through ``Story.apply``), memories or the director's state changed (copies made on the brain
thread, put into the story here), a nudge is due, per-turn model timings.

A mixin of ``runtime.session.Session`` (frame-loop thread only); ``_handle_worker`` is called by
the session's drain for each event on the workers' out queue.
"""

from __future__ import annotations

from xrstory.runtime import events as ev
from xrstory.runtime.workers import DirectorStateUpdated, MemoriesUpdated, MindTimings, NudgeDue


class WorkerEvents:
    """Handler of the brain and speech workers' events."""

    def _handle_worker(self, w) -> None:
        if isinstance(w, ev.ReplyStarted):
            rec = self.ledger.get(w.turn)
            if rec is not None:
                rec.t_first_token = w.t
            self._emit(w)
        elif isinstance(w, ev.SentenceReady):
            rec = self.ledger.get(w.turn)
            if rec is not None and rec.t_first_sentence is None:
                rec.t_first_sentence = w.t
            line = self.speech.line_id(w.turn, w.character)
            self.ledger.line_turn[line] = w.turn
            self._subtitles[w.character] = w.text
            self._subtitle_until[w.character] = self.time + 2.0 + 0.35 * len(w.text.split())
            self._emit(w)
        elif isinstance(w, ev.ReplyDone):
            rec = self.ledger.get(w.turn)
            if rec is not None:
                rec.t_reply_done = w.t
                rec.say, rec.emotion, rec.triggers = w.say, w.emotion, list(w.triggers)
                rec.fallback, rec.moderated = w.fallback, w.moderated
            self.story.note_utterance(w.character, w.say)
            self._emit(w)
            director = self.director
            self.brain.call(lambda: director.on_character_line(w.character, w.say))
            if not w.fallback or w.triggers:
                self._apply_triggers(w.turn, w.triggers, w.character)
            self._capture_next.append(f"reply {w.turn} {w.character}")
            if rec is not None and not w.fallback and not rec.t_first_sentence:
                rec.t_first_sentence = w.t
        elif isinstance(w, MemoriesUpdated):
            self.story.state.memories = w.memories
        elif isinstance(w, DirectorStateUpdated):
            self.story.state.director = w.state
        elif isinstance(w, NudgeDue):
            self._pending_nudge = w  # opened by _pace once the session is idle
        elif isinstance(w, MindTimings):
            self.events.append({"event": "MindTimings", "t": w.t, "turn": w.turn, "character": w.character,
                                **w.timings})
        else:
            self._emit(w)

