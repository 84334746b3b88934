"""Helpers shared by the tests: the demo scene as a module fixture, its main story arc, a story
stepped along that arc, and the default model as a character mind (a module fixture, so the
model loads once per test module).

Tests import it as ``from helpers import ...``: ``tests/`` has no ``__init__.py``, so pytest
(import mode "prepend") puts the folder on ``sys.path``. Fixtures are made by factories and
bound to a name in the test module (``scene = lighthouse_fixture()``), which pytest collects
like any fixture and linters see as used.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from xrstory.story import Scene, Story, load_scene

LIGHTHOUSE = "scenes/lighthouse"  # the demo scene, relative to the repo root (pytest's cwd)
ASSETS = Path(__file__).resolve().parent.parent / "assets"


def copy_scene(source: str | Path, dest: Path, **copytree_options) -> Path:
    """Copy a scene folder elsewhere with its ``../../assets/`` paths made absolute, so the copy
    still finds the character models (which ``load_scene`` checks) and the shipped adapter."""
    shutil.copytree(source, dest, **copytree_options)
    toml = dest / "scene.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('"../../assets/', f'"{ASSETS.as_posix()}/'),
                    encoding="utf-8")
    return dest

# The lighthouse story's main line, in order: (trigger, who fires it).
LIGHTHOUSE_ARC = [("light_stove", "maren"), ("open_cellar", "player"), ("fetch_oil", "tobias"),
                  ("light_lamp", "maren"), ("radio_ship", "tobias")]


def lighthouse_fixture():
    """A module-scoped ``scene`` fixture: the lighthouse scene, loaded once per module."""

    @pytest.fixture(scope="module")
    def scene() -> Scene:
        return load_scene(LIGHTHOUSE)

    return scene


def ear_models_fixture(initial_prompt: str):
    """A module-scoped ``models`` fixture: (Whisper with ``initial_prompt``, Silero VAD), loaded once."""

    @pytest.fixture(scope="module")
    def models():
        from xrstory.voice.asr import ASRConfig, load_asr
        from xrstory.voice.vad import load_silero

        return load_asr(config=ASRConfig(initial_prompt=initial_prompt)), load_silero()

    return models


def espeak_fixture():
    """A module-scoped ``tts`` fixture: one espeak-ng engine, closed after the module."""

    @pytest.fixture(scope="module")
    def tts():
        from xrstory.voice.tts import EspeakTTS

        with EspeakTTS() as t:
            yield t

    return tts


def mind_fixture(max_new_tokens: int):
    """A module-scoped ``mind`` fixture: the default model (loaded once per module) speaking
    for the module's ``scene`` with replies of at most ``max_new_tokens`` tokens."""

    @pytest.fixture(scope="module")
    def mind(scene):
        # imported here: only the model tests pay for torch and transformers
        from xrstory.mind.loader import ModelSpec, load_language_model
        from xrstory.mind.mind import CharacterMind, MindConfig

        with load_language_model(ModelSpec()) as lm:
            yield CharacterMind(lm, scene, MindConfig(max_new_tokens=max_new_tokens))

    return mind


def story_at(scene: Scene, step: int) -> Story:
    """A fresh story with the first ``step`` triggers of ``LIGHTHOUSE_ARC`` fired (each must fire)."""
    story = Story(scene)
    for trigger, by in LIGHTHOUSE_ARC[:step]:
        result = story.apply(trigger, by=by)
        assert result.fired, f"arc step {trigger} by {by}: {result.reason}"
    return story


def settle(brain) -> None:
    """Wait until everything queued on a ``BrainWorker`` so far has run (its jobs run in order)."""
    assert brain.settle(10), "the brain worker did not run its queued jobs"
