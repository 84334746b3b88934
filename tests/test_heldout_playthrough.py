"""A scene no adapter was trained on, played for real in CI: the harbour's typed arc with the
general adapter (the runtime's choice for a scene without its own), the llama.cpp engine and
every frame rendered. harbour is in no training set (corpus/ trains the general adapter,
scenes/lighthouse its own adapter), so this is what an author gets for a new scene.

What is asserted is what the runtime guarantees on any scene: the general adapter is chosen,
the story's own expectations hold (a reply from the addressed character, nothing fired that was
not asked for on small talk, no moderation), every reply is a sentence of at least four words
and none copies the player's line back. Whether each request fires its trigger is the model's
judgement; on this scene the shipped general adapter misses some (benchmarks and the adapter's
README give the held-out figures), so those expectations are reported, not asserted."""

from pathlib import Path

import pytest

from xrstory.playthrough.runner import PlaythroughRunner
from xrstory.playthrough.script import parse_playthrough
from xrstory.runtime.components import load_components
from xrstory.runtime.config import SessionConfig
from xrstory.story import load_scene
from xrstory.train.narrative_metrics import copies_player, is_sentence

pytestmark = pytest.mark.slow
HARBOUR = Path("scenes/harbour")
GENERAL = Path("assets/adapters/general").resolve()
MODEL_JUDGEMENT = ("expect fired", "expect beat", "expect ended", "expect prop")


def test_held_out_scene_typed_arc_with_the_general_adapter(tmp_path):
    scene = load_scene(HARBOUR)
    with load_components(scene) as components:
        assert components.adapter and Path(components.adapter).resolve() == GENERAL, components.adapter
        pt = parse_playthrough(HARBOUR / "playthroughs" / "typed_arc.play")
        config = SessionConfig(scene_dir=pt.scene_dir, eye_size=(160, 160))
        result = PlaythroughRunner(components, config, tmp_path).run(pt)
    story_failures = [f for f in result.failures if not f.step_text.startswith(MODEL_JUDGEMENT)]
    assert not story_failures, "\n".join(str(f) for f in story_failures)
    replies = [(t.player_text, t.say) for t in result.turns if t.character]
    assert len(replies) >= 4, replies
    for player, say in replies:
        assert is_sentence(say), f"not a sentence of >= 4 words: {say!r} (to {player!r})"
        assert not copies_player(say, player), f"copies the player's line: {say!r} <- {player!r}"
    assert (tmp_path / pt.name / "report.html").is_file()
    judged = [f"line {f.step_line}: {f.actual}" for f in result.failures if f.step_text.startswith(MODEL_JUDGEMENT)]
    print(f"model judgement on the held-out scene: {len(judged)} of the arc's expectations missed", *judged, sep="\n")
