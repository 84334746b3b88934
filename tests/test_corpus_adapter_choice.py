"""The runtime's adapter choice: explicit > the scene's own > the general adapter > the base model.

The adapter folders here are empty folders with an ``adapter_config.json``: the choice only asks
whether an adapter is there (loading one is tests/test_mind_loader.py's business), so no model
is needed. Run: ``.venv/bin/python -m pytest tests/test_corpus_adapter_choice.py -q``
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import ASSETS, copy_scene

from xrstory.runtime.adapter_choice import choose_adapter
from xrstory.runtime.components import resolve_adapter
from xrstory.story import load_scene


def _adapter(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}", encoding="utf-8")
    return folder


@pytest.fixture()
def scene_with_own(tmp_path):
    """A copy of the lighthouse scene whose `adapter` points to an adapter folder in tmp_path."""
    copy_scene("scenes/lighthouse", tmp_path / "lighthouse")
    toml = tmp_path / "lighthouse" / "scene.toml"
    adapter = f'adapter = "{ASSETS.as_posix()}/adapters/lighthouse"'
    assert adapter in toml.read_text()
    toml.write_text(toml.read_text().replace(adapter, 'adapter = "../own_adapter"'))
    return tmp_path


def test_scene_adapter_beats_general_beats_base(scene_with_own, tmp_path):
    general = _adapter(tmp_path / "general")
    scene = load_scene(scene_with_own / "lighthouse")
    # the scene names an adapter that is not there yet: the general one, and the note says why
    c = choose_adapter(scene, None, general)
    assert (c.source, c.path) == ("general", str(general)) and "not there" in c.note
    own = _adapter(tmp_path / "own_adapter")
    c = choose_adapter(scene, None, general)
    assert (c.source, Path(c.path)) == ("scene", own.resolve()) and "scene adapter" in c.note
    c = choose_adapter(scene, str(general), None)
    assert c.source == "explicit"
    shutil.rmtree(own)
    shutil.rmtree(general)
    c = choose_adapter(scene, None, general)
    assert (c.source, c.path) == ("base", None) and "base model" in c.note


def test_a_scene_without_an_adapter_gets_the_general_one(tmp_path):
    scene = load_scene("corpus/night_train")
    general = _adapter(tmp_path / "general")
    assert choose_adapter(scene, None, general).source == "general"
    assert choose_adapter(scene, None, tmp_path / "missing").source == "base"
    with pytest.raises(FileNotFoundError, match="adapter folder not found"):
        resolve_adapter(scene, str(tmp_path / "nope"))
