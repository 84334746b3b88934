"""Every reply is heard, and only what is heard acts: the brain thread's turn policy.

The brain worker, the mouth (the session's real TTS), the mixer, the ledger, the conversation and the
story are the session's real ones; the mind is ``ScriptedMind`` (see its docstring) so that a turn can be
made to end in a fallback, a moderation refusal or a block on demand.
"""

from __future__ import annotations

import queue
import threading
import time

import numpy as np
import pytest
from helpers import lighthouse_fixture

from xrstory.mind.reply import Reply, ReplyStarted, Sentence, TurnTimings
from xrstory.runtime import events as ev
from xrstory.runtime.brain import BrainWorker, triggers_to_fire
from xrstory.runtime.conversation import Conversation
from xrstory.runtime.gaze_feed import GazeFeed
from xrstory.runtime.transcript import Transcript
from xrstory.runtime.turns import TurnLedger
from xrstory.story import Story
from xrstory.voice.mixer import Mixer
from xrstory.voice.mouth import Mouth

scene = lighthouse_fixture()


class ScriptedMind:
    """Test double for ``mind.CharacterMind``: each turn plays the events it is given (sentences,
    then a reply), optionally blocking first until ``release`` is set. The real model cannot be
    made to return a server error, a reply moderation withholds entirely, or to hold a turn open
    on cue; what is under test is what the brain thread does with such a turn."""

    def __init__(self, reply: Reply, sentences: tuple[str, ...] = (), block: threading.Event | None = None):
        self.reply, self.sentences, self.block = reply, sentences, block
        self.asked: list[str] = []

    def respond(self, story, character_id, player_text, should_stop=None, **_):
        self.asked.append(player_text)
        if self.block is not None:
            assert self.block.wait(10)
        yield ReplyStarted(character_id, t=time.monotonic())
        for i, s in enumerate(self.sentences):
            if should_stop is not None and should_stop():
                break
            yield Sentence(character_id, s, i, t=time.monotonic())
        stopped = should_stop is not None and should_stop()
        yield (Reply(character_id, " ".join(self.sentences) or "...", fallback=True,
                     fallback_reason="stopped before the reply was complete") if stopped else self.reply)
        yield TurnTimings()


class Rig:
    def __init__(self, scene, mind, director: bool = False):
        self.story = Story(scene)
        self.out: queue.Queue = queue.Queue()
        self.mixer = Mixer()
        from xrstory.voice.tts import AutoTTS

        self.tts = AutoTTS()  # the session's router: the lighthouse characters speak with the neural voice
        self.mouth = Mouth(self.tts, self.mixer)
        self.director = None
        if director:  # the session's way: the director keeps its own copy of the counters
            import copy

            from xrstory.director import Director

            self.director = Director(self.story, state=copy.deepcopy(self.story.state.director))
        self.brain = BrainWorker(mind, scene, self.mouth, self.out, director=self.director).start()
        self.ledger = TurnLedger()
        self.transcript = Transcript(lambda: 0.0)
        self.cues: list[str] = []
        self.conversation = Conversation(self.story, self.brain, self.ledger, self.transcript,
                                         GazeFeed(scene, self.brain), self.cues.append)

    def drain(self) -> None:
        assert self.brain.settle(10)
        while not self.out.empty():
            self.conversation.on_brain(self.out.get_nowait())

    def close(self) -> None:
        self.brain.close()
        self.mouth.close()
        self.tts.close()

    def of(self, kind) -> list:
        return [e for e in self.transcript.items if isinstance(e, kind)]


@pytest.fixture
def rig_for(scene):
    rigs = []

    def make(mind, director: bool = False):
        rigs.append(Rig(scene, mind, director))
        return rigs[-1]

    yield make
    for r in rigs:
        r.close()


def test_a_fallback_line_is_spoken_and_subtitled_with_its_reason(rig_for):
    r = rig_for(ScriptedMind(Reply("maren", "The storm takes my words, friend.", fallback=True,
                                   fallback_reason="remote server error: ConnectionRefusedError")))
    turn = r.conversation.player_line("Hello?", "Hello?", 1, False, None, time.monotonic())
    r.drain()
    sentences = r.of(ev.SentenceReady)
    assert [(s.text, s.index) for s in sentences] == [("The storm takes my words, friend.", -1)]
    assert r.mouth.texts and list(r.mouth.texts.values()) == ["The storm takes my words, friend."]
    rec = r.ledger.get(turn)
    assert rec.fallback and rec.fallback_reason.startswith("remote server error")
    done = r.of(ev.ReplyDone)[0].to_dict()
    assert done["fallback_reason"].startswith("remote server error")


def test_a_reply_whose_every_line_moderation_withheld_fires_no_trigger(rig_for):
    r = rig_for(ScriptedMind(Reply("maren", "Aye, friend.", "calm", ("light_stove",), fallback=True,
                                   fallback_reason="moderation withheld 2 sentence(s)")))
    turn = r.conversation.player_line("Light the stove", "Light the stove", 1, False, None, time.monotonic())
    r.drain()
    rec = r.ledger.get(turn)
    assert rec.fired == [] and "light_stove" in rec.refused and "fallback line" in rec.refused["light_stove"]
    assert "stove" not in r.story.state.prop_states or r.story.state.prop_states["stove"] != "lit"
    assert not r.of(ev.TriggerFired) and r.cues == []
    assert [s.text for s in r.of(ev.SentenceReady)] == ["Aye, friend."], "the fallback line is still heard"


def test_a_reply_with_some_lines_heard_fires_its_triggers(rig_for):
    r = rig_for(ScriptedMind(Reply("maren", "Aye, the stove.", "calm", ("light_stove",),
                                   fallback_reason="moderation withheld 1 sentence(s)"), sentences=("Aye, the stove.",)))
    turn = r.conversation.player_line("Light the stove", "Light the stove", 1, False, None, time.monotonic())
    r.drain()
    assert r.ledger.get(turn).fired == ["light_stove"] and r.cues == ["crackle"]


def test_an_interrupt_while_a_turn_waits_behind_another_is_not_lost(rig_for):
    block = threading.Event()
    mind = ScriptedMind(Reply("maren", "Aye, the stove.", "calm", ("light_stove",)), sentences=("Aye, the stove.",),
                        block=block)
    r = rig_for(mind)
    first = r.conversation.player_line("Hello", "Hello", 1, False, None, time.monotonic())
    second = r.conversation.player_line("Light the stove", "Light the stove", 2, False, None, time.monotonic())
    deadline = time.monotonic() + 5
    while not mind.asked and time.monotonic() < deadline:  # the first turn is running, the second queued
        time.sleep(0.01)
    assert r.brain.interrupt() == [first, second], "barge-in reaches the queued turn too"
    block.set()
    r.drain()
    assert mind.asked == ["Hello"], "the cancelled queued turn never reached the model"
    for turn in (first, second):
        rec = r.ledger.get(turn)
        assert rec.interrupted and rec.fired == [] and rec.t_reply_done is not None
    assert not r.of(ev.TriggerFired) and not r.of(ev.SentenceReady), "a cut-off turn says nothing more"


def test_what_a_cut_off_or_nudge_reply_may_fire():
    named = Reply("maren", "Aye.", triggers=("light_stove",))
    assert triggers_to_fire(named, interrupted=False, nudge=False, released=1) == ""
    assert "cut off" in triggers_to_fire(named, interrupted=True, nudge=False, released=1)
    assert "nudge" in triggers_to_fire(named, interrupted=False, nudge=True, released=1)
    fallback = Reply("maren", "...", triggers=("light_stove",), fallback=True, fallback_reason="garbage output")
    assert "garbage output" in triggers_to_fire(fallback, interrupted=False, nudge=False, released=0)
    assert triggers_to_fire(Reply("maren", "Aye."), interrupted=True, nudge=True, released=0) == ""


def test_a_nudge_turn_speaks_and_fires_nothing(rig_for):
    r = rig_for(ScriptedMind(Reply("maren", "Shall I light the stove?", "calm", ("light_stove",)),
                             sentences=("Shall I light the stove?",)))
    turn = r.conversation.nudge_turn("maren", "silence: 30 s without the player speaking")
    r.drain()
    rec = r.ledger.get(turn)
    assert rec.say == "Shall I light the stove?" and rec.fired == [] and "nudge" in rec.refused["light_stove"]
    refused = r.of(ev.TriggerRefused)
    assert [(e.trigger, e.turn) for e in refused] == [("light_stove", turn)]


# ---- thinking ahead: a line the player paused on runs held until it is heard as final ----------

def _wait_for(predicate, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _synthesised(r: Rig) -> bool:
    """The held reply's first sentence is synthesised and in the mixer."""
    return any(t.t_first_audio is not None for t in r.mouth.timings.values())


def _play(r: Rig, seconds: float = 3.0) -> tuple[np.ndarray, list]:
    """Render the mixer for ``seconds``: (the mix, its speaking events)."""
    from xrstory.voice.mixer import MIX_RATE

    r.mouth.wait_idle()
    blocks, events = [], []
    for k in range(int(seconds * MIX_RATE / 1536)):
        out, evs = r.mixer.render(1536, k * 512)
        blocks.append(out)
        events += evs
    return np.concatenate(blocks), events


def test_a_line_thought_ahead_on_says_and_fires_nothing_until_it_is_heard(rig_for):
    mind = ScriptedMind(Reply("maren", "Aye, the stove.", "calm", ("light_stove",)), sentences=("Aye, the stove.",))
    r = rig_for(mind)
    line = "Maren, please light the stove."
    r.conversation.think_ahead(line)
    _wait_for(lambda: _synthesised(r), "the held sentence to be synthesised")
    time.sleep(0.1)  # the reply is complete; the brain waits for the word
    assert mind.asked == [line]
    assert r.out.empty(), "nothing reaches the frame loop before the line is final (no subtitle, no reply)"
    mix, speaking = _play(r, 0.5)
    assert not np.any(mix) and not speaking, "the held line is silent"
    assert not r.ledger.turns and "lit" not in r.story.state.prop_states.values()
    assert [e.text for e in r.of(ev.ThinkingAhead)] == [line]

    turn = r.conversation.player_line(line, line, 1, True, time.monotonic(), time.monotonic())
    r.drain()
    rec = r.ledger.get(turn)
    assert mind.asked == [line], "committed: the model is not asked again"
    assert rec.fired == ["light_stove"] and rec.say == "Aye, the stove." and rec.t_thinking is not None
    assert [s.text for s in r.of(ev.SentenceReady)] == ["Aye, the stove."]
    mix, speaking = _play(r)
    assert np.any(mix) and [e.turn for e in speaking if type(e).__name__ == "SpeakingStarted"] == [turn]


def test_a_line_the_player_spoke_on_from_is_dropped_unheard_and_unfired(rig_for):
    mind = ScriptedMind(Reply("maren", "Aye, the stove.", "calm", ("light_stove",)), sentences=("Aye, the stove.",))
    r = rig_for(mind)
    r.conversation.think_ahead("Maren, Tobias is freezing.")
    _wait_for(lambda: _synthesised(r), "the held sentence to be synthesised")
    r.conversation.revoke_ahead("the player spoke on after the pause")
    whole = "Maren, Tobias is freezing. Please light the stove."
    turn = r.conversation.player_line(whole, whole, 1, True, time.monotonic(), time.monotonic())
    r.drain()
    assert mind.asked == ["Maren, Tobias is freezing.", whole]
    assert [d.turn for d in r.of(ev.ReplyDone)] == [turn], "the dropped turn ends nothing, it never opened"
    assert [e.reason for e in r.of(ev.ThinkingDropped)] == ["the player spoke on after the pause"]
    assert r.ledger.get(turn).fired == ["light_stove"] and r.of(ev.TriggerFired)[0].turn == turn
    assert r.ledger.get(turn).t_thinking is None
    _, speaking = _play(r)
    assert [e.turn for e in speaking if type(e).__name__ == "SpeakingStarted"] == [turn], "one line plays"


def test_a_final_transcript_that_differs_or_a_press_in_between_drops_the_held_turn(rig_for):
    mind = ScriptedMind(Reply("maren", "Aye.", "calm"), sentences=("Aye.",))
    r = rig_for(mind)
    r.conversation.think_ahead("Light the stove.")
    turn = r.conversation.player_line("Light the stove, please.", "Light the stove, please.", 1, True,
                                      time.monotonic(), time.monotonic())
    r.drain()
    # the held turn was stopped before or while it ran; the final line was asked for once
    assert mind.asked[-1] == "Light the stove, please." and mind.asked.count("Light the stove, please.") == 1
    assert "final transcript differs" in r.of(ev.ThinkingDropped)[0].reason
    assert [d.turn for d in r.of(ev.ReplyDone)] == [turn]

    r.conversation.think_ahead("Open the cellar.")
    pressed = r.conversation.press("cellar_door")
    r.drain()
    assert "pressed cellar_door" in r.of(ev.ThinkingDropped)[1].reason and pressed == turn + 1
    assert [d.turn for d in r.of(ev.ReplyDone)] == [turn], "the held turn never replied"


def test_the_stages_of_a_turn_thought_ahead_count_what_the_player_waited():
    from xrstory.runtime.records import TurnRecord

    rec = TurnRecord(1, 1, "hi", t_speech_end=10.0, t_endpoint=10.6, t_heard=10.6, t_thinking=10.3,
                     t_first_token=10.45, t_first_sentence=10.7, t_first_audio=10.72)
    d = rec.stage_ms()
    assert d["first_token_ms"] == 0.0 and d["first_sentence_ms"] == 100.0 and d["first_audio_ms"] == 20.0
    assert d["endpoint_ms"] + d["asr_ms"] + d["first_token_ms"] + d["first_sentence_ms"] + d["first_audio_ms"] \
        == d["voice_to_voice_ms"] == 720.0
    assert d["think_ahead_ms"] == 300.0 and d["mind_first_token_ms"] == 150.0 and d["mind_first_sentence_ms"] == 400.0


class HintsMind(ScriptedMind):
    """``ScriptedMind`` that also records the hints each turn was prompted with."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.hints: list[list[str]] = []

    def respond(self, story, character_id, player_text, should_stop=None, hints=(), **kw):
        self.hints.append(list(hints))
        yield from super().respond(story, character_id, player_text, should_stop=should_stop)


def test_a_held_line_the_director_steers_is_generated_again_with_its_steer(rig_for):
    """The director judges a held line only once it is committed; when that judgement steers the
    turn (the third off-topic line in a row: a nudge by the character addressed), the held reply is
    thrown away and the turn generated again with the steer in its prompt."""
    mind = HintsMind(Reply("maren", "Aye.", "calm"), sentences=("Aye.",))
    r = rig_for(mind, director=True)
    off = "What is your favourite colour, then?"  # off the beat's topic; to maren, the first character
    for _ in range(2):
        r.conversation.player_line(off, off, 1, False, None, time.monotonic())
        r.drain()
    assert not r.of(ev.NudgeStarted)
    r.conversation.think_ahead(off)
    _wait_for(lambda: len(mind.asked) == 3 and _synthesised(r), "the held reply")
    time.sleep(0.1)
    assert mind.hints[2] == mind.hints[1], "held: prompted as before, the director has not judged it"
    turn = r.conversation.player_line(off, off, 1, True, time.monotonic(), time.monotonic())
    r.drain()
    assert len(mind.asked) == 4, "generated again after the director's judgement"
    assert [e.turn for e in r.of(ev.NudgeStarted)] == [turn]
    assert "steer them" in mind.hints[3][0] and not any("steer them" in h for h in mind.hints[2]), \
        "the steer is in the new prompt only"
    assert [d.turn for d in r.of(ev.ReplyDone)].count(turn) == 1
    _, speaking = _play(r)
    assert [e.turn for e in speaking if type(e).__name__ == "SpeakingStarted"].count(turn) == 1


class FailingMind:
    """Test double: says one sentence, then raises (a mind cannot be made to fail mid-turn on cue)."""

    def __init__(self):
        self.asked: list[str] = []

    def respond(self, story, character_id, player_text, should_stop=None, **_):
        self.asked.append(player_text)
        yield ReplyStarted(character_id, t=time.monotonic())
        yield Sentence(character_id, "Aye, the stove.", 0, t=time.monotonic())
        raise RuntimeError("the engine died")


def test_a_held_turn_whose_mind_fails_speaks_its_fallback_once_committed(rig_for):
    mind = FailingMind()
    r = rig_for(mind)
    line = "Maren, please light the stove."
    r.conversation.think_ahead(line)
    _wait_for(lambda: _synthesised(r), "the held sentence")
    turn = r.conversation.player_line(line, line, 1, True, time.monotonic(), time.monotonic())
    r.drain()
    done = [d for d in r.of(ev.ReplyDone) if d.turn == turn]
    assert len(done) == 1 and done[0].fallback and done[0].triggers == ()
    mix, speaking = _play(r)
    assert np.any(mix) and [e.turn for e in speaking if type(e).__name__ == "SpeakingStarted"] == [turn], \
        "the fallback is heard, not left in a held line"
