"""Every reply is heard, and only what is heard acts: the brain thread's turn policy.

The brain worker, the mouth (real espeak-ng), the mixer, the ledger, the conversation and the
story are the session's real ones; the mind is ``ScriptedMind`` (see its docstring) so that a turn can be
made to end in a fallback, a moderation refusal or a block on demand.
"""

from __future__ import annotations

import queue
import threading
import time

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
    def __init__(self, scene, mind):
        self.story = Story(scene)
        self.out: queue.Queue = queue.Queue()
        self.mixer = Mixer()
        from xrstory.voice.tts import EspeakTTS

        self.tts = EspeakTTS()
        self.mouth = Mouth(self.tts, self.mixer)
        self.brain = BrainWorker(mind, scene, self.mouth, self.out).start()
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

    def make(mind):
        rigs.append(Rig(scene, mind))
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
