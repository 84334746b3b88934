"""The OpenXR backend against a real Monado runtime (simulated HMD, null compositor).

Monado's client library needs Debian 13's glibc, so each scenario runs in the Debian 13 root
that scripts/monado-root.sh builds (on a Debian 13 host, natively): pytest starts
``scripts/monado-root.sh run python3 tests/openxr_scenarios/run.py SCENARIO`` and reads the JSON
it prints. Scenarios start their own monado-service. The lifecycle, blend and config rules have
host-only tests at the end (no runtime needed).

Run: .venv/bin/python -m pytest tests/test_openxr_monado.py   (first run builds the root, ~1-2.5 min)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "openxr_scenarios"))

from host import REPO, build_runtime, host_python_in_runtime, scenario  # noqa: E402


@pytest.fixture(scope="module")
def monado_root():
    """Build (or reuse) the runtime once per module."""
    return build_runtime()


LIFECYCLE_UP = ["IDLE", "READY", "SYNCHRONIZED", "VISIBLE", "FOCUSED"]
CLEAN_EXIT_TAIL = ["STOPPING", "IDLE", "EXITING"]


@pytest.mark.monado
def test_lifecycle_to_focused_then_clean_exit(monado_root, tmp_path):
    r = scenario("lifecycle", tmp_path)
    assert r["system"] == "Monado: Simulated HMD"
    assert {"XR_KHR_opengl_enable", "XR_MNDX_egl_enable"} <= set(r["extensions"])
    states = r["transitions"]
    assert states[:5] == LIFECYCLE_UP, states
    assert states[-3:] == CLEAN_EXIT_TAIL, states
    assert r["focused_frames"] >= 10
    assert r["exit_reason"] == "exit_requested"
    assert r["saves"] == ["session EXITING"], "the story is saved once, on EXITING"
    assert r["exit_seconds"] < 5.0
    assert r["monado_exit"] == 0 and r["monado_errors"] == []


@pytest.mark.monado
def test_demo_scene_rendered_into_monado_swapchains(monado_root, tmp_path):
    r = scenario("render", tmp_path, "--frames", "110", timeout=180)
    assert r["renderer"] == "SceneRenderer" and r["scene"] == "lighthouse"
    assert r["rendered_focused"] >= 110, "at least 100 rendered frames with the session FOCUSED"
    late = [s for s in r["samples"] if s["focused_frame"] >= 100]
    assert len(late) >= 2 and len(r["samples"]) >= 4
    for s in r["samples"]:
        assert s["state"] == "FOCUSED" and s["gl_error"] == "GL_NO_ERROR"
        assert len(s["eyes"]) == 2
        for eye in s["eyes"]:
            # The scene, not a clear colour: most pixels are geometry (depth written), many colours,
            # and no colour dominates.
            assert eye["geometry_fraction"] > 0.3, eye
            assert eye["distinct_colours"] > 200, eye
            assert eye["most_common_colour_fraction"] < 0.5, eye
        # Two eyes of one scene: nearly the same picture, but not identical (parallax).
        assert 0.05 < s["eye_difference"] < 40, s["eye_difference"]
    assert r["transitions"][:5] == LIFECYCLE_UP and r["transitions"][-1] == "EXITING"
    assert r["monado_exit"] == 0
    assert r["monado_errors"] == [], r["monado_errors"][:5]
    assert (tmp_path / "eye_left.png").stat().st_size > 1000


@pytest.mark.monado
def test_killing_monado_is_noticed_saved_and_exits_without_spinning(monado_root, tmp_path):
    r = scenario("loss", tmp_path, timeout=120)
    assert r["killed"], r.get("error")
    app = r["app"]
    assert app is not None, r["app_log_tail"]
    assert r["app_exit_code"] == 0, r["app_log_tail"]
    assert app["focused_frames"] >= 20
    assert set(app["transitions"]) & {"LOSS_PENDING", "LOST"}, app["transitions"]
    assert app["saves"][:1] in (["instance lost"], ["session lost"], ["session LOSS_PENDING"])
    assert app["exit_reason"] in ("instance_lost", "loss_timeout")
    # The save holds the story as it was when the runtime died.
    assert r["save_exists"] and r["save"]["scene_id"] == "lighthouse"
    assert abs(r["save"]["time"] - app["story_time"]) < 1e-6 and r["save"]["time"] > 0
    # Bounded retry (4 s) spent sleeping, not spinning: the app's CPU time over the wait,
    # interpreter teardown included, stays a small part of the wall time.
    assert 3.0 < r["wall_after_kill_s"] < 20.0
    assert r["cpu_fraction"] < 0.3, (r["cpu_after_kill_s"], r["wall_after_kill_s"])


@pytest.mark.monado
def test_recovers_when_monado_comes_back(monado_root, tmp_path):
    r = scenario("loss-recover", tmp_path, timeout=120)
    app = r["app"]
    assert app is not None and r["app_exit_code"] == 0, r["app_log_tail"]
    assert app["recoveries"] == 1
    states = app["transitions"]
    lost = states.index("LOST")
    assert states[lost + 1:lost + 6] == LIFECYCLE_UP, states
    assert states[-3:] == CLEAN_EXIT_TAIL and app["exit_reason"] == "exit_requested"
    assert app["focused_after_recovery"] >= 10
    assert app["saves"] == ["instance lost", "session EXITING"]
    assert app["story_time"] > 0, "display time stays monotonic across a new runtime's clock"
    assert r["restarted_monado_errors"] == []


@pytest.mark.monado
def test_no_runtime_gives_a_clear_message(monado_root, tmp_path):
    r = scenario("no-runtime", tmp_path)
    for case in ("no_manifest", "service_down"):
        assert r[case]["raised"] == "OpenXRUnavailable", r[case]
        assert "--display headless" in r[case]["message"]
    assert "no OpenXR runtime" in r["no_manifest"]["message"]
    assert "service running" in r["service_down"]["message"]


@pytest.mark.monado
def test_play_command_runs_the_full_app_against_monado(monado_root, tmp_path):
    """`xrstory play scenes/lighthouse --display openxr --frames 150` with the host .venv (models,
    Whisper, TTS, embedder) inside the runtime, one typed line on stdin: the OpenXR lifecycle up to
    FOCUSED and out through EXITING, and a save that loads. The reply itself is not checked here."""
    python = host_python_in_runtime()
    r = scenario("play", tmp_path, "--frames", "150", "--python", python, timeout=300)
    log_tail = f"{r['stdout_tail']}\n{r['stderr_tail']}"
    assert not r.get("timed_out") and r["app_exit_code"] == 0, log_tail
    assert r["display"] == "openxr" and not r["headless_fallback"], log_tail
    states = r["transitions"]
    assert states[:5] == LIFECYCLE_UP, states
    assert states[-3:] == CLEAN_EXIT_TAIL, states
    assert r["typed_line_shown"], "the typed line reached the session"
    assert r["save_exists"], log_tail
    save = r["save"]  # loaded with xrstory.story.load_state inside the scenario
    assert save["scene_id"] == "lighthouse"
    assert save["conversation"][:1] == [["player", "Maren, please light the stove."]], save["conversation"]
    assert any("(session EXITING)" in line for line in r["saved_lines"]), r["saved_lines"]
    assert r["monado_exit"] == 0 and r["monado_errors"] == [], r["monado_errors"][:5]


# -- host-only: no runtime needed ---------------------------------------------------------

def test_play_openxr_without_runtime_exits_2_before_loading_models(tmp_path):
    """`xrstory play --display openxr` with no runtime: exit 2, the reason and a --display headless
    hint, found by a probe before the ~20 s of model loading (no save is written)."""
    save = tmp_path / "save.json"
    env = dict(os.environ, XR_RUNTIME_JSON=str(tmp_path / "none.json"), HF_HUB_OFFLINE="1", COLUMNS="200")
    proc = subprocess.run([sys.executable, "-m", "xrstory.cli", "play", "scenes/lighthouse", "--display", "openxr",
                           "--frames", "5", "--save", str(save)], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120, cwd=REPO, env=env)
    message = " ".join(proc.stderr.split())
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-1000:], proc.stderr[-2000:])
    assert "no OpenXR runtime" in message and "--display headless" in message, message[-1000:]
    # The models were not loaded (their loaders log at INFO, e.g. the sentence embedder).
    assert "SentenceTransformer" not in proc.stderr and not save.exists(), proc.stderr[-2000:]


def test_no_runtime_on_host_suggests_headless(tmp_path, monkeypatch):
    """On this host (no runtime active, or a manifest that does not exist) opening fails clearly."""
    from xrstory.xr.openxr import OpenXRConfig, OpenXRDisplay, OpenXRUnavailable

    monkeypatch.setenv("XR_RUNTIME_JSON", str(tmp_path / "none.json"))
    with pytest.raises(OpenXRUnavailable, match="--display headless") as info:
        with OpenXRDisplay(OpenXRConfig()):
            pass
    assert "no OpenXR runtime" in str(info.value)


def test_lifecycle_rules():
    from xrstory.xr.openxr.lifecycle import Action, Lifecycle

    lc = Lifecycle()
    assert lc.on_state("IDLE") == []
    assert lc.on_state("READY") == [Action.BEGIN] and lc.running
    assert lc.on_state("SYNCHRONIZED") == [] and not lc.should_render
    lc.on_state("VISIBLE")
    assert lc.on_state("FOCUSED") == [] and lc.should_render
    assert lc.on_state("STOPPING") == [Action.END] and not lc.running
    assert lc.on_state("IDLE") == []
    assert lc.on_state("EXITING") == [Action.SAVE, Action.EXIT]
    assert lc.names() == ["IDLE", "READY", "SYNCHRONIZED", "VISIBLE", "FOCUSED", "STOPPING", "IDLE", "EXITING"]

    lc = Lifecycle()
    lc.on_state("READY")
    assert lc.on_state("LOSS_PENDING") == [Action.SAVE, Action.DESTROY, Action.RECREATE]
    assert lc.on_lost(recoverable=False) == [Action.DESTROY, Action.EXIT], "saved once per session"
    lc.on_recreated()
    assert lc.on_lost(recoverable=True) == [Action.SAVE, Action.DESTROY, Action.RECREATE]


def test_blend_mode_choice():
    from xrstory.xr.openxr.blend import choose_blend_mode
    from xrstory.xr.openxr.config import OpenXRConfig
    from xrstory.xr.openxr.errors import OpenXRUnavailable

    all_modes = ["opaque", "additive", "alpha_blend"]
    assert choose_blend_mode(all_modes, OpenXRConfig()) == "opaque"
    assert choose_blend_mode(all_modes, OpenXRConfig(ar=True)) == "alpha_blend"
    assert choose_blend_mode(["opaque", "additive"], OpenXRConfig(ar=True)) == "additive"
    assert choose_blend_mode(["opaque"], OpenXRConfig(ar=True)) == "opaque"
    assert choose_blend_mode(all_modes, OpenXRConfig(ar=True, ar_allowed=False)) == "opaque"
    assert choose_blend_mode(["additive"], OpenXRConfig()) == "additive"  # an optical see-through HMD
    with pytest.raises(OpenXRUnavailable, match="alpha_blend.*offers opaque"):
        choose_blend_mode(["opaque"], OpenXRConfig(blend="alpha_blend"))


def test_config_names_bad_values():
    from xrstory.xr.openxr.config import OpenXRConfig

    with pytest.raises(ValueError, match="reference_space: 'floor'"):
        OpenXRConfig(reference_space="floor")
    with pytest.raises(ValueError, match="blend: 'mixed'"):
        OpenXRConfig(blend="mixed")
    with pytest.raises(ValueError, match="spin"):
        OpenXRConfig(idle_poll_s=0)
