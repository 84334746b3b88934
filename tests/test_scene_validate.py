"""Scene validation: both shipped scenes load; each scene under tests/broken_scenes/ fails
with exactly the issues its expected.toml lists (field path, line, message, bad value and
"did you mean" suggestion); and the TOML line map agrees with tomllib on tricky TOML."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from xrstory.story import SceneError, Story, load_scene
from xrstory.story.toml_lines import format_path, line_of, parse_path, value_lines

BROKEN = Path(__file__).parent / "broken_scenes"
BROKEN_SCENES = sorted(p.name for p in BROKEN.iterdir() if (p / "scene.toml").is_file())


@pytest.mark.parametrize("name", ["lighthouse", "harbour"])
def test_shipped_scenes_load(name):
    scene = load_scene(Path("scenes") / name)
    assert scene.scene.id == name
    assert Story(scene).state.beat == scene.scene.start_beat


def test_there_are_enough_broken_scenes():
    assert len(BROKEN_SCENES) >= 14
    for name in BROKEN_SCENES:
        assert (BROKEN / name / "expected.toml").is_file(), f"{name} has no expected.toml"


@pytest.mark.parametrize("name", BROKEN_SCENES)
def test_broken_scene_reports_expected_issues(name):
    folder = BROKEN / name
    expected = tomllib.loads((folder / "expected.toml").read_text())["issues"]
    with pytest.raises(SceneError) as info:
        load_scene(folder)
    issues = info.value.issues
    assert sorted(i.path for i in issues) == sorted(e["path"] for e in expected), \
        "\n".join(map(str, issues))
    for want in expected:
        got = next(i for i in issues if i.path == want["path"])
        assert got.file == folder / "scene.toml"
        assert got.line == want["line"], str(got)
        assert want["message"] in got.message, str(got)
        assert got.suggestion == want.get("suggestion"), str(got)
        if "value" in want:
            assert repr(want["value"]) in got.message or str(want["value"]) in got.message, str(got)
        # the printed form carries all of it: file:line: path: message — did you mean ...?
        text = str(got)
        assert text.startswith(f"{folder / 'scene.toml'}:{want['line']}: ")
        assert ("did you mean" in text) == ("suggestion" in want)
        if "suggestion" in want:
            assert text.endswith(f" — did you mean '{want['suggestion']}'?")


def test_type_and_reference_errors_come_together():
    """One run shows pydantic's type errors and the cross-reference errors side by side."""
    with pytest.raises(SceneError) as info:
        load_scene(BROKEN / "many_errors")
    messages = [i.message for i in info.value.issues]
    assert any("missing required field" in m for m in messages)
    assert any("valid number" in m for m in messages)
    assert any(m.startswith("unknown trigger 'wav'") for m in messages)
    assert any(m.startswith("unknown mood 'stormy'") for m in messages)


def test_missing_scene_file_is_named(tmp_path):
    with pytest.raises(SceneError) as info:
        load_scene(tmp_path / "nowhere")
    assert str(info.value) == f"{tmp_path / 'nowhere' / 'scene.toml'}: scene file not found"


TRICKY_TOML = '''
# comment with [brackets] and = signs
title = "a # not a comment"
"quoted.key" = 'x'
dotted.inner.leaf = 3
multi = """
line one
[not a table]
"""
nums = [
  1,   # one
  2,
  [3, 4],
]
when = 1979-05-27T07:32:00Z

[[outer]]
name = "first"
[[outer.inner]]
v = { a = 1, b = { c = "}" } }
[[outer.inner]]
v = { a = 2 }

[[outer]]
name = "second"
[outer.table]
x = -1.5e3
[[outer.inner]]
v = {}
'''


def _leaves(node, path=()):
    yield path
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield from _leaves(value, path + (key,))


def test_line_map_covers_every_value_of_tricky_toml():
    lines = value_lines(TRICKY_TOML)
    paths = set(_leaves(tomllib.loads(TRICKY_TOML))) - {()}
    assert paths == set(lines), (paths ^ set(lines))
    text = TRICKY_TOML.splitlines()
    assert text[lines[("nums", 2, 1)] - 1].strip() == "[3, 4],"
    assert text[lines[("outer", 1, "inner", 0, "v")] - 1] == "v = {}"
    assert text[lines[("outer", 0, "inner", 0, "v", "b", "c")] - 1] == 'v = { a = 1, b = { c = "}" } }'
    assert text[lines[("outer", 1, "table", "x")] - 1] == "x = -1.5e3"
    assert text[lines[("when",)] - 1].startswith("when")
    assert line_of(lines, ("outer", 1, "missing_field")) == lines[("outer", 1)]
    assert line_of(lines, ("nowhere",)) is None


def test_field_paths_round_trip():
    for text in ["beats[2].allowed_triggers[0]", "scene.start_beat", "triggers[0].effects.lights.lamp", "beats"]:
        assert format_path(parse_path(text)) == text
    assert parse_path("beats[2].allowed_triggers[0]") == ("beats", 2, "allowed_triggers", 0)


def test_author_guide_names_every_field():
    """docs/SCENE_FORMAT.md must keep up with the models: every field is mentioned."""
    from pydantic import BaseModel

    from xrstory.story import scene as models

    guide = (Path(__file__).resolve().parents[1] / "docs" / "SCENE_FORMAT.md").read_text()
    missing = [f"{m.__name__}.{name}" for m in vars(models).values()
               if isinstance(m, type) and issubclass(m, BaseModel) and m.__module__ == models.__name__
               for name in m.model_fields if name != "folder" and f"`{name}`" not in guide]
    assert not missing, f"fields not described in docs/SCENE_FORMAT.md: {missing}"
