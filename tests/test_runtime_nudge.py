"""The director's pacing nudges in the live session, and its state kept off the story's dicts.

Light tests (no model): the lighthouse scene, a real ``Director`` (lexical relevance), the
session's real ``BrainWorker`` thread, ``SilenceFeed``, the playthrough parser and
expectations. Where a turn must run, the mind is ``RecordingMind`` (see its docstring).
One end-to-end test (``slow``) runs a typed playthrough through a real headless session with
the real language model, Whisper, VAD and TTS: the player falls silent and a character speaks
up on its own.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import lighthouse_fixture, settle

from xrstory.director import Director, PacingConfig
from xrstory.mind.reply import Reply, ReplyStarted, Sentence, TurnTimings
from xrstory.playthrough.expect import check_expectation
from xrstory.playthrough.script import PlaythroughSyntaxError, parse_playthrough
from xrstory.runtime import events as ev
from xrstory.runtime.brain import BrainWorker
from xrstory.runtime.brain_jobs import TurnRequest
from xrstory.runtime.config import SessionConfig
from xrstory.runtime.events import DirectorStateUpdated, NudgeDue
from xrstory.runtime.records import TurnRecord
from xrstory.runtime.silence_feed import SilenceFeed, SilenceFeedConfig
from xrstory.runtime.turns import NUDGE_STAND_IN, TurnLedger, is_nudge
from xrstory.story import Story, load_state, save_state

scene = lighthouse_fixture()
OFF = ["Do you like cheese?", "What's your favourite football team?", "I had pasta for lunch"]


class RecordingMind:
    """Test double for ``mind.CharacterMind``: answers every turn with one fixed sentence and
    records what it was asked (character, player text, hints). Used because what is under test
    is which hints reach the prompt and which events the brain thread posts, not the model's
    words; loading the real model for that would cost these light tests ~10 s each. The real
    model runs in ``test_silence_becomes_a_nudge_turn_end_to_end`` below."""

    def __init__(self):
        self.asked: list[tuple[str, str, list[str]]] = []

    def respond(self, story, character_id, player_text, history=(), memories=(), hints=(), **_):
        self.asked.append((character_id, player_text, list(hints)))
        yield ReplyStarted(character_id, t=time.monotonic())
        yield Sentence(character_id, "Aye.", 0, t=time.monotonic())
        yield Reply(character_id, "Aye.", "calm", ())
        yield TurnTimings()


@pytest.fixture
def rig(scene):
    """(story, director with its own state dict as the session makes it, brain worker, out queue,
    mind). The mouth is real; with no TTS engine its sentences fail and are counted in its errors."""
    from xrstory.voice.mixer import Mixer
    from xrstory.voice.mouth import Mouth

    story = Story(scene)
    director = Director(story, pacing=PacingConfig(silence_nudge_s=3.0), state={})
    out: queue.Queue = queue.Queue()
    mind = RecordingMind()
    mouth = Mouth(None, Mixer())
    brain = BrainWorker(mind, scene, mouth, out, director=director).start()
    try:
        yield story, director, brain, out, mind
    finally:
        brain.close()
        mouth.close()


def drained(out: queue.Queue) -> list:
    items = []
    while not out.empty():
        items.append(out.get_nowait())
    return items


def request(story: Story, turn: int, character: str, text: str, nudge: str | None = None) -> TurnRequest:
    return TurnRequest(turn, character, text, story.state.model_copy(deep=True), [], nudge=nudge)


# -- the brain thread: silence and off-topic lines -----------------------------------------------

def test_silence_on_the_brain_thread_posts_a_nudge_due_with_the_turn_stamp(rig):
    story, director, brain, out, _ = rig
    brain.pace(2.0, spoke=False, next_turn=4)
    settle(brain)
    assert not [e for e in drained(out) if isinstance(e, NudgeDue)], "2 s of 3 s: no nudge yet"
    brain.pace(0.5, spoke=True, next_turn=4)  # a character spoke: the silence starts over
    settle(brain)
    assert director.pacer.counters["silence_s"] == pytest.approx(0.5)
    brain.pace(2.6, spoke=False, next_turn=5)
    settle(brain)
    due = [e for e in drained(out) if isinstance(e, NudgeDue)]
    assert len(due) == 1
    # maren can light the stove now, so she speaks up
    assert due[0].character == "maren" and due[0].next_turn == 5 and due[0].reason.startswith("silence: 3 s")


def test_an_off_topic_line_to_the_nudger_steers_that_same_turn(rig):
    story, director, brain, out, mind = rig
    for turn, line in enumerate(OFF, start=1):
        brain.submit(request(story, turn, "maren", line))
    settle(brain)
    hints = [h for _, _, h in mind.asked]
    goal = story.scene.beat("storm_night").goal
    assert not any(goal in h for h in hints[0] + hints[1])
    assert [h for h in hints[2] if goal in h], "the third off-topic line's prompt steers toward the goal"
    assert mind.asked[2][1] == OFF[2], "the player's line is still what the model answers"
    events = drained(out)
    started = [e for e in events if isinstance(e, ev.NudgeStarted)]
    assert [(e.turn, e.character) for e in started] == [(3, "maren")]
    assert not [e for e in events if isinstance(e, NudgeDue)]


def test_an_off_topic_line_to_someone_else_makes_the_nudger_due_after_it(rig):
    story, director, brain, out, mind = rig
    for turn, line in enumerate(OFF, start=1):
        brain.submit(request(story, turn, "tobias", line))
    settle(brain)
    goal = story.scene.beat("storm_night").goal
    assert not any(goal in h for _, _, hs in mind.asked for h in hs), "tobias is not the one to steer"
    due = [e for e in drained(out) if isinstance(e, NudgeDue)]
    assert [(d.character, d.next_turn) for d in due] == [("maren", 4)]
    assert due[0].reason.startswith("off_topic: 3 turns")


def test_a_nudge_turn_gets_the_hint_and_is_not_judged_as_a_player_line(rig):
    story, director, brain, out, mind = rig
    brain.submit(request(story, 1, "maren", NUDGE_STAND_IN, nudge="silence: 30 s"))
    settle(brain)
    (character, text, hints), = mind.asked
    assert character == "maren" and text == NUDGE_STAND_IN
    assert story.scene.beat("storm_night").goal in hints[0]
    assert director.pacer.counters["turns"] == 0, "no player line was counted"


# -- thread safety: the director never writes a dict the story holds ---------------------------

def test_director_state_reaches_the_story_only_as_copies(rig):
    story, director, brain, out, _ = rig
    brain.submit(request(story, 1, "tobias", OFF[0]))
    settle(brain)
    assert story.state.director == {}, "the director wrote the story's own dict"
    stop = threading.Event()
    errors: list[BaseException] = []

    def frame_loop():  # what the session's frame loop does with the story, as fast as it can
        try:
            while not stop.is_set():
                story.state.model_copy(deep=True)
                story.state.to_json()
                for e in drained(out):
                    if isinstance(e, DirectorStateUpdated):
                        story.state.director = e.state
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread below
            errors.append(exc)

    loop = threading.Thread(target=frame_loop)
    loop.start()
    try:
        for i in range(300):
            brain.submit(request(story, i + 2, "tobias", OFF[i % 3]))
            brain.pace(0.5, spoke=i % 7 == 0, next_turn=1)
        settle(brain)
    finally:
        stop.set()
        loop.join(10)
    assert not errors, errors
    assert director.state is not story.state.director, "the director must not write the story's dict"
    for e in drained(out):
        if isinstance(e, DirectorStateUpdated):
            story.state.director = e.state
    assert story.state.director == director.snapshot()
    assert story.state.director["pacing"]["turns"] == 301


def test_a_resumed_session_director_carries_the_saved_counters(scene, tmp_path):
    from xrstory.runtime.session import make_director

    story = Story(scene)
    Director(story).on_player_line(OFF[0])
    Director(story).on_player_line(OFF[1])  # two off-topic turns, kept in story.state.director
    save_state(story.state, tmp_path / "save.json")
    config = SessionConfig(scene_dir=Path("scenes/lighthouse"), pacing=PacingConfig(silence_nudge_s=12.0))
    resumed = Story(scene, load_state(tmp_path / "save.json"))
    # the session's own factory, without the models the rest of the session loads
    director, _ = make_director(config, resumed)
    assert director.state is not resumed.state.director
    assert director.pacer.config.silence_nudge_s == 12.0
    assert director.on_player_line(OFF[2], "maren") is not None, "the third off-topic turn, across the save"
    assert resumed.state.director["pacing"]["off_topic"] == 2, "the story changes only by snapshots"


def test_session_config_rejects_a_silence_limit_that_is_not_positive():
    with pytest.raises(ValueError, match=r"pacing.silence_nudge_s must be > 0 seconds, got 0"):
        SessionConfig(scene_dir=Path("scenes/lighthouse"), pacing=PacingConfig(silence_nudge_s=0.0))


# -- the frame loop's silence clock ------------------------------------------------------------

class Paced:
    """Records ``pace`` hand-overs; stands in for the brain worker's queue in a pure counting test."""

    def __init__(self):
        self.calls: list[tuple[float, bool, int]] = []

    def pace(self, quiet_s, spoke, next_turn):
        self.calls.append((round(quiet_s, 3), spoke, next_turn))


def test_silence_feed_counts_only_quiet_frames_and_hands_over_each_second():
    brain = Paced()
    feed = SilenceFeed(brain, SilenceFeedConfig(period_s=1.0))
    dt = 0.032
    for _ in range(32):  # 1.024 s quiet
        feed.update(dt, waiting=False, speaking=False, next_turn=2)
    for _ in range(32):  # a turn in flight: not silence, not a reset
        feed.update(dt, waiting=True, speaking=False, next_turn=3)
    for i in range(32):  # a character speaks, then is quiet
        feed.update(dt, waiting=False, speaking=i < 10, next_turn=3)
    assert brain.calls == [(1.024, False, 2), (round(22 * dt, 3), True, 3)]
    with pytest.raises(ValueError, match="dt must be >= 0"):
        feed.update(-0.1, waiting=False, speaking=False, next_turn=3)
    with pytest.raises(ValueError, match="period_s must be > 0"):
        SilenceFeedConfig(period_s=0)


# -- playthrough: expect nudge ---------------------------------------------------------------

def test_expect_nudge_parses_and_checks_turns_since_the_previous_expectation(tmp_path):
    script = tmp_path / "n.play"
    script.write_text("# n\ntype hi\nexpect reply\nwait 8\nexpect nudge from maren\nexpect not nudge\n")
    pt = parse_playthrough(script, scene_dir="scenes/lighthouse")
    reply, _, nudge, no_nudge = pt.steps[1:]
    assert nudge.args["character"] == "maren" and no_nudge.args["negate"] is True
    ledger = TurnLedger()
    ledger.open(1, 2, "hi", "hi", "maren", False, None, 1.0).say = "Aye."
    story = SimpleNamespace(state=None)
    assert check_expectation(reply, story, ledger.latest(), ledger.ordered()) is None
    failure = check_expectation(nudge, story, ledger.latest(), ledger.ordered())
    assert failure is not None and "no nudge turn after turn 1" in failure.actual
    ledger.open_nudge(2, "tobias", "silence: 8 s")
    assert is_nudge(ledger.get(2)) and not is_nudge(ledger.get(1))
    assert ledger.get(2).to_dict()["voice_to_voice_ms"] is None
    failure = check_expectation(nudge, story, ledger.latest(), ledger.ordered())
    assert failure is not None and "tobias" in failure.actual, "a nudge, but not from maren"
    ledger.open_nudge(3, "maren", "silence: 8 s")
    assert check_expectation(nudge, story, ledger.latest(), ledger.ordered()) is None
    # 'expect not nudge' looks only after the 'expect nudge' just checked (turn 3)
    assert check_expectation(no_nudge, story, ledger.latest(), ledger.ordered()) is None
    typed = TurnRecord(4, 9, "(nudge: typed by the player)", t_heard=2.0)
    assert not is_nudge(typed), "a typed line that looks like a nudge is still the player's"


@pytest.mark.parametrize("line", ["expect nudge maren", "expect nudge from", "expect nudge from a b"])
def test_bad_expect_nudge_names_the_line(tmp_path, line):
    script = tmp_path / "bad.play"
    script.write_text(f"# bad\ntype hello\n{line}\n")
    with pytest.raises(PlaythroughSyntaxError, match=r"bad.play:3: expected 'expect nudge \[from CHARACTER\]'"):
        parse_playthrough(script)


# -- end to end, real models -----------------------------------------------------------------

@pytest.mark.slow
def test_silence_becomes_a_nudge_turn_end_to_end(scene, tmp_path):
    """Typed input, real language model (with the scene's adapter when present), Whisper, VAD
    and espeak-ng, the frame loop rendering headless: after a reply the player stays silent for
    8 s of scene time with ``silence_nudge_s`` = 3, and a character speaks up on its own."""
    from xrstory.playthrough.runner import PlaythroughRunner
    from xrstory.runtime.components import load_components

    pt = parse_playthrough("tests/playthroughs/nudge.play")
    config = SessionConfig(scene_dir=pt.scene_dir, eye_size=(96, 96), stereo=False, realtime=False,
                           max_new_tokens=40, keep_audio=False, pacing=PacingConfig(silence_nudge_s=3.0))
    with load_components(scene, with_embedder=False) as components:
        result = PlaythroughRunner(components, config, tmp_path).run(pt)
    assert result.passed, "\n".join(str(f) for f in result.failures)
    nudges = [t for t in result.turns if is_nudge(t)]
    assert nudges, [t.player_text for t in result.turns]
    first = nudges[0]
    started = [e for e in result.events if e["event"] == "NudgeStarted" and e["turn"] == first.turn]
    assert started and started[0]["character"] == first.character
    # handed over about once a second, so the director sees 3 to 4 s when it decides
    assert started[0]["reason"] in ("silence: 3 s without the player speaking",
                                    "silence: 4 s without the player speaking"), started[0]["reason"]
    assert first.say.strip(), "the nudging character has a reply"
    assert first.t_first_token is not None and first.to_dict()["voice_to_voice_ms"] is None
    metrics = json.loads((tmp_path / pt.name / "metrics.json").read_text())
    listed = next(t for t in metrics["turns"] if t["turn"] == first.turn)
    assert listed["voice_to_voice_ms"] is None and listed["player_text"].startswith("(nudge: silence")
    saved = load_state(tmp_path / pt.name / "final_state.json")
    # the director writes only its own dict: what is in the save came by DirectorStateUpdated
    assert saved.director.get("pacing"), "the director's counters reach the save"
    if saved.beat == "storm_night":  # a fired trigger moves the beat on and restarts the counters
        assert saved.director["pacing"]["nudges"] >= 1
