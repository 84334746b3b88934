"""`xrstory ask`: the JSON that scripts and CI rely on, real refusals, and exit codes for bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from xrstory.story import Story, load_scene, save_state

XRSTORY = [sys.executable, "-m", "xrstory.cli"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def ask(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*XRSTORY, "ask", *args], capture_output=True, text=True, env=ENV, timeout=timeout)


@pytest.mark.slow
def test_ask_json_from_a_save(tmp_path: Path):
    story = Story(load_scene("scenes/lighthouse"))
    assert story.apply("light_stove", by="maren").fired
    save_state(story.state, tmp_path / "save.json")
    done = ask("scenes/lighthouse", "maren", "Please open the cellar door so we can get the oil.",
               "--state", str(tmp_path / "save.json"), "--json", "--max-new-tokens", "16",
               "--out-state", str(tmp_path / "after.json"))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert set(out["reply"]) >= {"say", "emotion", "triggers"} and out["reply"]["say"]
    assert out["allowed_triggers"] == ["share_tea", "open_cellar"]
    assert set(out["reply"]["triggers"]) <= set(out["allowed_triggers"])
    assert sorted(out["fired"] + [r["trigger"] for r in out["refused"]]) == sorted(out["reply"]["triggers"])
    assert all(r["reason"] for r in out["refused"])
    assert set(out["timings_ms"]) >= {"first_token", "first_sentence", "total"}
    assert 0 < out["timings_ms"]["first_token"] <= out["timings_ms"]["total"]
    assert out["model"]["device"] == "cpu"
    after = json.loads((tmp_path / "after.json").read_text())
    assert after["fired"] == ["light_stove"] + out["fired"]
    assert after["conversation"][-1]["text"] == out["reply"]["say"]
    # the scene names an adapter folder; when it is missing the CLI says so and uses the base model
    if not (Path("scenes/lighthouse") / load_scene("scenes/lighthouse").scene.adapter).is_dir():
        assert "does not exist: using the base model" in done.stderr


def test_bad_input_exits_2_and_names_it(tmp_path: Path):
    done = ask("scenes/lighthouse", "nobody", "hi")
    assert done.returncode == 2 and "no character 'nobody'" in done.stderr and "maren" in done.stderr
    done = ask(str(tmp_path / "nowhere"), "maren", "hi")
    assert done.returncode == 2 and "nowhere" in done.stderr
    (tmp_path / "bad.json").write_text("{not json")
    done = ask("scenes/lighthouse", "maren", "hi", "--state", str(tmp_path / "bad.json"))
    assert done.returncode == 2 and "bad.json" in done.stderr
    done = ask("scenes/lighthouse", "maren", "hi", "--adapter", str(tmp_path / "no_adapter"))
    assert done.returncode == 2 and "no_adapter" in done.stderr
