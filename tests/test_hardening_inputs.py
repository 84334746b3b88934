"""Bad input is a clear error naming the file, field or value, never a traceback (issue 20, item 6).

One case per defect probed on main: audio that is non-finite only after the downmix, 1e30
mono, a 16 kB file at 1 Hz (256 MB after resampling); ``wait inf``, ``look nan nan nan``, a
non-UTF-8 script, ``interrupt after 1.2.3:``; NaN positions and mesh paths outside the scene
folder; a scene with no characters; a save with an unknown beat (KeyError), prop or state;
and through the commands: exit 2 with the message, no traceback.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from xrstory.playthrough.script import PlaythroughSyntaxError, check_inputs, parse_playthrough
from xrstory.story import SaveError, SceneError, Story, load_scene, load_state
from xrstory.voice.audio import AudioError, read_audio

LIGHTHOUSE = Path("scenes/lighthouse")


# -- audio ------------------------------------------------------------------------------------

def _wav(path: Path, data: np.ndarray, rate: int, subtype: str = "FLOAT") -> Path:
    sf.write(str(path), data, rate, subtype=subtype)
    return path


def test_stereo_that_overflows_in_the_downmix_is_refused(tmp_path):
    loud = np.full((1600, 2), 3e38, np.float32)
    with pytest.raises(AudioError, match=r"after the downmix") as info:
        read_audio(_wav(tmp_path / "loud.wav", loud, 16_000))
    assert "loud.wav" in str(info.value)


def test_absurd_sample_values_are_refused(tmp_path):
    with pytest.raises(AudioError, match="not audio"):
        read_audio(_wav(tmp_path / "huge.wav", np.full(1600, 1e30, np.float32), 16_000))


def test_absurd_sample_rates_and_lengths_are_refused_before_reading(tmp_path):
    tiny_rate = _wav(tmp_path / "1hz.wav", np.zeros(16_000, np.float32), 1, "PCM_16")
    with pytest.raises(AudioError, match="sample rate 1 Hz"):
        read_audio(tiny_rate)  # on main: 256 MB of samples after resampling
    long = _wav(tmp_path / "long.wav", np.zeros(8_000 * 700, np.int16), 8_000, "PCM_16")
    with pytest.raises(AudioError, match="700 s of audio"):
        read_audio(long)


def test_a_normal_file_still_reads(tmp_path):
    tone = (0.3 * np.sin(np.arange(44_100) / 44_100 * 2 * np.pi * 440)).astype(np.float32)
    out = read_audio(_wav(tmp_path / "tone.wav", np.stack([tone, tone], 1), 44_100))
    assert out.shape == (16_000,) and np.isfinite(out).all() and 0.2 < np.abs(out).max() < 0.4


# -- playthroughs -----------------------------------------------------------------------------

@pytest.mark.parametrize("line, needle", [
    ("wait inf", "wait takes seconds"),
    ("wait nan", "wait takes seconds"),
    ("wait 1e400", "wait takes seconds"),
    ("wait 99999", "from 0 to 3600"),
    ("look nan nan nan", "look takes a target id or X Y Z"),
    ("look 1 inf 2", "look takes a target id or X Y Z"),
    ("interrupt after 1.2.3: Wait!", "interrupt after takes seconds"),
    ("interrupt after soon: Wait!", "interrupt after takes seconds"),
    ("interrupt after 2", "expected 'interrupt after SECONDS: TEXT'"),
    ("seed 99999999999999999999", "seed must be"),
])
def test_bad_playthrough_values_name_the_line(tmp_path, line, needle):
    script = tmp_path / "bad.play"
    script.write_text(f"say hello\n{line}\n", encoding="utf-8")
    with pytest.raises(PlaythroughSyntaxError) as info:
        parse_playthrough(script)
    assert info.value.line == 2 and needle in str(info.value), str(info.value)


def test_a_non_utf8_playthrough_names_the_line_and_byte(tmp_path):
    script = tmp_path / "latin1.play"
    script.write_bytes("say hello\nsay caf\xe9\n".encode("latin-1"))
    with pytest.raises(PlaythroughSyntaxError, match=r"latin1.play:2: not UTF-8 text \(byte 0xe9"):
        parse_playthrough(script)


def test_script_inputs_are_checked_before_anything_loads(tmp_path):
    scene = load_scene(LIGHTHOUSE)
    state = Story(scene).state.model_copy(update={"beat": "no_such_beat"})
    (tmp_path / "save.json").write_text(state.to_json())
    _wav(tmp_path / "clip.wav", np.full(1600, 1e30, np.float32), 16_000)
    for step, needle in [("start save.json", "unknown beat 'no_such_beat'"), ("audio clip.wav", "not audio")]:
        script = tmp_path / "s.play"
        script.write_text(f"scene {LIGHTHOUSE.resolve()}\n{step}\nsay hello\n")
        with pytest.raises(PlaythroughSyntaxError, match=needle) as info:
            check_inputs(parse_playthrough(script), scene)
        assert info.value.line == 2


# -- scenes -----------------------------------------------------------------------------------

@pytest.fixture
def scene_copy(tmp_path) -> Path:
    folder = tmp_path / "lighthouse"
    shutil.copytree(LIGHTHOUSE, folder, ignore=shutil.ignore_patterns("playthroughs", "*.jsonl"))
    return folder


def _edit(folder: Path, old: str, new: str, count: int = 1) -> None:
    toml = folder / "scene.toml"
    text = toml.read_text()
    assert old in text, old
    toml.write_text(text.replace(old, new, count))


@pytest.mark.parametrize("old, new, needle", [
    ("position = [0.0, 1.6, 0.0]", "position = [nan, 1.6, 0.0]", "finite"),
    ("position = [0.0, 1.6, 0.0]", "position = [inf, 1.6, 0.0]", "finite"),
])
def test_non_finite_scene_values_are_refused(scene_copy, old, new, needle):
    _edit(scene_copy, old, new)
    with pytest.raises(SceneError) as info:
        load_scene(scene_copy)
    assert any(needle in str(i) and i.line for i in info.value.issues), str(info.value)


def test_mesh_paths_outside_the_scene_folder_are_refused(scene_copy):
    (scene_copy.parent / "outside.glb").write_bytes(b"glTF")
    text = (scene_copy / "scene.toml").read_text()
    first = text.index('shape = "')
    end = text.index("\n", first)
    (scene_copy / "scene.toml").write_text(text[:first] + 'mesh = "../outside.glb"' + text[end:])
    with pytest.raises(SceneError, match="outside the scene folder"):
        load_scene(scene_copy)


def test_a_scene_without_characters_is_refused(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "scene.toml").write_text(
        '[scene]\nid = "empty"\ntitle = "Empty"\nstart_beat = "only"\n\n'
        '[[beats]]\nid = "only"\ngoal = "nothing"\nending = true\n')
    with pytest.raises(SceneError, match="at least one \\[\\[characters\\]\\]"):
        load_scene(folder)


# -- saves ------------------------------------------------------------------------------------

@pytest.mark.parametrize("change, needle", [
    ({"beat": "no_such_beat"}, "unknown beat 'no_such_beat'"),
    ({"prop_states": {"ghost": "open"}}, "unknown prop 'ghost'"),
    ({"prop_states": {"stove": "exploded"}}, "has no state 'exploded'"),
    ({"time": -5.0}, "is not a scene time"),
    ({"light_levels": {"nowhere": 1.0}}, "unknown light 'nowhere'"),
    ({"fired": ["teleport"]}, "unknown trigger 'teleport'"),
    ({"mood": "ecstatic"}, "unknown mood 'ecstatic'"),
])
def test_saves_that_do_not_fit_the_scene_are_refused(tmp_path, change, needle):
    scene = load_scene(LIGHTHOUSE)
    data = json.loads(Story(scene).state.to_json())
    data.update(change)
    path = tmp_path / "save.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SaveError, match=needle) as info:
        load_state(path, scene)
    assert "save.json" in str(info.value)
    with pytest.raises(SaveError, match=needle):  # and Story() itself, not a KeyError
        Story(scene, load_state(path))


def test_a_save_with_nan_or_a_lone_surrogate_is_refused(tmp_path):
    scene = load_scene(LIGHTHOUSE)
    data = json.loads(Story(scene).state.to_json())
    path = tmp_path / "save.json"
    path.write_text(json.dumps({**data, "time": float("nan")}))
    with pytest.raises(SaveError, match="time"):
        load_state(path, scene)
    data["conversation"] = [{"t": 1.0, "speaker": "player", "text": "bad \udc00"}]
    path.write_text(json.dumps(data))
    with pytest.raises(SaveError, match="lone surrogate"):
        load_state(path, scene)


# -- through the commands: exit 2, the message, no traceback ----------------------------------

def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xrstory.cli", *args], capture_output=True, text=True,
                          timeout=120)


def test_commands_exit_2_on_bad_scene_and_bad_playthrough(tmp_path, scene_copy):
    _edit(scene_copy, "position = [0.0, 1.6, 0.0]", "position = [nan, 1.6, 0.0]")
    proc = _cli("validate", str(scene_copy))
    assert proc.returncode == 2 and "finite" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    script = tmp_path / "bad.play"
    script.write_text(f"scene {LIGHTHOUSE.resolve()}\nsay hello\nwait inf\n")
    proc = _cli("run", str(script))
    assert proc.returncode == 2 and "bad.play:3" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
