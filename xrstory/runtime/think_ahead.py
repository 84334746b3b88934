"""Thinking ahead: the mind starts on the player's line while the turn is still open.

The ear announces ``voice.events.EndLikely`` when the player has paused and the transcript of the
speech so far looks finished; the turn itself only closes once the early silence has passed
(``VADConfig.early_silence_ms``), a few hundred milliseconds later. In that gap the conversation
submits the turn it would open (``Conversation.think_ahead``) with a ``commit`` flag; the brain
thread runs the mind at once and keeps everything it produces in a ``HeldOutput``: no sentence
reaches the mouth, no event the frame loop, no trigger fires. When the final transcript is the
same line, addressed to the same character, with the story unchanged (``AheadLine.matches``), the
conversation sets ``commit`` and the held output is released in order; otherwise it sets the
request's ``cancel`` and the held output is dropped. The director hears a line only once it is
committed (its judgement can change the prompt: then the turn is generated again with it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from xrstory.story.state import StoryState


def state_fingerprint(state: StoryState) -> tuple:
    """What a turn's prompt is made of, of the story's state (not its clock or the director's
    counters, which move every frame): equal fingerprints give the same prompt for the same line."""
    return (state.beat, tuple(state.flags), tuple(sorted(state.prop_states.items())),
            tuple(sorted(state.light_levels.items())), state.mood, state.ended, tuple(state.fired),
            tuple((u.speaker, u.text, u.interrupted) for u in state.conversation))


@dataclass
class AheadLine:
    """The frame loop's record of a line thought ahead on (``request``: the brain's TurnRequest)."""

    text: str
    character: str
    request: object
    fingerprint: tuple
    t: float  # time.monotonic() the mind was asked

    def matches(self, text: str, character: str, turn: int, fingerprint: tuple) -> str:
        """"" when the final line is the one thought ahead on, else why not."""
        if self.request.cancel.is_set():
            return "the thought-ahead turn was already stopped"
        if text.strip() != self.text.strip():
            return f"the final transcript differs: {text!r}"
        if character != self.character:
            return f"the line is addressed to {character} now"
        if turn != self.request.turn:
            return "another turn opened in between"
        if fingerprint != self.fingerprint:
            return "the story changed in between"
        return ""


class HeldOutput:
    """A thought-ahead turn's output, kept in order until the line is committed (``release``) or
    thrown away (``drop``). With ``held=False`` (a committed line) everything passes at once."""

    def __init__(self, held: bool) -> None:
        self.state = "waiting" if held else "live"  # waiting -> live | dropped | restart
        self._held: list[Callable[[], None]] = []
        self.steer: str | None = None  # restart: the director's steer the turn is generated again with

    @property
    def waiting(self) -> bool:
        return self.state == "waiting"

    def __call__(self, action: Callable[[], None]) -> None:
        if self.state == "live":
            action()
        elif self.state == "waiting":
            self._held.append(action)

    def release(self) -> None:
        self.state = "live"
        held, self._held = self._held, []
        for action in held:
            action()

    def drop(self, state: str = "dropped") -> None:
        self.state, self._held = state, []
