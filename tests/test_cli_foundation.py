"""The foundation commands through the installed ``xrstory`` console script: ``validate``
exits 0 on the shipped scenes and 2 on broken ones (printing file:line, path and the
suggestion; each broken scene also alone, in-process), and ``schema`` prints a JSON Schema that accepts the shipped scenes and
rejects a misspelt field."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from xrstory.cli import app

ROOT = Path(__file__).resolve().parents[1]
XRSTORY = Path(sys.executable).parent / "xrstory"  # the console script of this environment
BROKEN = ROOT / "tests" / "broken_scenes"
BROKEN_SCENES = sorted(p for p in BROKEN.iterdir() if (p / "scene.toml").is_file())
SCENES = [ROOT / "scenes" / "lighthouse", ROOT / "scenes" / "harbour"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(XRSTORY), *args], capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_validate_passes_shipped_scenes():
    result = run("validate", *map(str, SCENES))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("ok ") == 2 and not result.stderr


def _check_printed(scene: Path, err: str) -> None:
    """``err`` holds exactly the issues of ``scene``'s expected.toml, as file:line: path: message."""
    expected = tomllib.loads((scene / "expected.toml").read_text())["issues"]
    printed = [line for line in err.splitlines() if line.startswith(f"error {scene / 'scene.toml'}:")]
    assert len(printed) == len(expected), (scene.name, err)
    for want in expected:
        head = f"{scene / 'scene.toml'}:{want['line']}: " + (f"{want['path']}: " if want["path"] else "")
        line = next((x for x in printed if head in x and want["message"] in x), None)
        assert line is not None, (scene.name, head, err)
        if "suggestion" in want:
            assert line.endswith(f"did you mean '{want['suggestion']}'?"), line


def test_validate_all_broken_scenes_in_one_run():
    result = run("validate", *map(str, BROKEN_SCENES))
    assert result.returncode == 2
    assert not result.stdout.strip(), result.stdout
    for scene in BROKEN_SCENES:
        _check_printed(scene, result.stderr)


@pytest.mark.parametrize("scene", BROKEN_SCENES, ids=lambda p: p.name)
def test_validate_exits_2_on_each_broken_scene(scene):
    """The same command object the console script runs, called in-process (one interpreter
    start per scene would cost ~20 s of the test budget); the run above covers the script."""
    result = CliRunner().invoke(app, ["validate", str(scene)])
    assert result.exit_code == 2, (scene.name, result.output)
    _check_printed(scene, result.stderr)


def test_validate_mixed_good_and_bad_reports_all_and_exits_2():
    result = run("validate", str(SCENES[0]), str(BROKEN / "misspelt_trigger"), str(BROKEN / "many_errors"))
    assert result.returncode == 2
    assert "ok " in result.stdout
    assert "unknown trigger 'opne_door' — did you mean 'open_door'?" in result.stderr
    assert result.stderr.count("many_errors/scene.toml") == 4


def test_validate_missing_folder_exits_2(tmp_path):
    result = run("validate", str(tmp_path / "no_such_scene"))
    assert result.returncode == 2
    assert "no_such_scene/scene.toml: scene file not found" in result.stderr


@pytest.fixture(scope="module")
def schema() -> dict:
    result = run("schema")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_schema_is_a_json_schema_with_the_top_level_tables(schema):
    jsonschema.Draft202012Validator.check_schema(schema)
    assert set(schema["properties"]) == {"scene", "moods", "viewpoints", "props", "lights",
                                         "characters", "triggers", "beats"}
    assert schema["required"] == ["scene"]
    assert schema["additionalProperties"] is False


def test_schema_accepts_shipped_scenes_and_rejects_a_misspelt_field(schema):
    validator = jsonschema.Draft202012Validator(schema)
    for folder in SCENES:
        data = tomllib.loads((folder / "scene.toml").read_text())
        errors = list(validator.iter_errors(data))
        assert not errors, (folder.name, [e.message for e in errors])
    broken = tomllib.loads((BROKEN / "unknown_field" / "scene.toml").read_text())
    messages = [e.message for e in validator.iter_errors(broken)]
    assert any("fired_bi" in m for m in messages), messages
