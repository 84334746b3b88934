"""Delete means delete, even when interrupted (issue 20, item 4).

On main: ``xrstory play`` saved the conversation to ``reports/play/save.json`` and ``profile
delete`` reported "files: 0"; rows were committed before the folder went, so an interrupted
delete could not be finished; the database was 0644 and the folder 0755; deleting a player
during their session broke every later line with a foreign-key error; ``database is locked``
aborted the write (and with it the turn). The two ``ProfileStore`` instances in these tests
are two connections to one file, as two processes would hold (the durability test covers
real processes).
"""

from __future__ import annotations

import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import lighthouse_fixture

from xrstory.cli.play import _save_path
from xrstory.director import Director, ProfileConfig, ProfileStore, delete_player
from xrstory.director.privacy import pending_deletions
from xrstory.story import Story, save_state

scene = lighthouse_fixture()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _rows(store: ProfileStore, player: str) -> int:
    return sum(len(store.rows(t, player)) for t in ("events", "transcripts", "sessions", "players", "decisions"))


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "xrstory"


def test_play_saves_a_players_story_in_their_folder_and_delete_lists_it(scene, data_dir, tmp_path):
    path = _save_path(None, "ada", scene.scene.id, None)
    assert path == data_dir / "players" / "ada" / "saves" / "lighthouse.json"
    story = Story(scene)
    story.note_utterance("player", "my secret words")
    save_state(story.state, path)
    elsewhere = tmp_path / "mine" / "save.json"
    recording = tmp_path / "heard.wav"
    assert _save_path(elsewhere, "ada", scene.scene.id, recording) == elsewhere
    save_state(story.state, elsewhere)
    recording.write_bytes(b"RIFF....")
    with ProfileStore(ProfileConfig(data_dir=data_dir)) as store:
        report = delete_player(store, "ada")
    assert "players/ada/saves/lighthouse.json" in report.files, report.files  # main: files: 0
    assert str(elsewhere.resolve()) in report.files and str(recording.resolve()) in report.files
    assert not path.exists() and not elsewhere.exists() and not recording.exists()
    assert _mode(path.parent.parent.parent) == 0o700  # players/


def test_files_are_0600_and_folders_0700(data_dir):
    with ProfileStore(ProfileConfig(data_dir=data_dir)) as store:
        store.ensure_player("ada")
        store.record_event("ada", "line", features={"x": 1.0})
        save = store.save_path("ada", "lighthouse")
        save_state(_state(), save)
        for f in (store.path, Path(f"{store.path}-wal"), Path(f"{store.path}-shm"), save):
            assert f.exists() and _mode(f) == 0o600, (f, oct(_mode(f)))
        for d in (data_dir, data_dir / "players", data_dir / "players" / "ada", save.parent):
            assert _mode(d) == 0o700, (d, oct(_mode(d)))


def _state():
    from xrstory.story import load_scene

    return Story(load_scene("scenes/lighthouse")).state


def test_an_interrupted_delete_is_finished_by_the_next_one(data_dir, monkeypatch):
    config = ProfileConfig(data_dir=data_dir)
    with ProfileStore(config) as store, ProfileStore(config) as live:
        store.ensure_player("ada")
        store.add_transcript("ada", "player", "my secret words")
        save_state(_state(), store.save_path("ada", "lighthouse"))
        real_rmtree = shutil.rmtree

        def killed(*a, **k):
            raise KeyboardInterrupt  # the process dies while removing the player's folder

        monkeypatch.setattr(shutil, "rmtree", killed)
        with pytest.raises(KeyboardInterrupt):
            delete_player(store, "ada")
        monkeypatch.setattr(shutil, "rmtree", real_rmtree)
        assert pending_deletions(store) == ["ada"]
        # marked: a live session stops recording the player at once
        assert live.add_transcript("ada", "player", "more words") is None
        report = delete_player(store, "ada")  # main: "no player 'ada'", the folder stays
        assert report.resumed and "players/ada/saves/lighthouse.json" in report.files
        assert report.rows["transcripts"] == 1 and _rows(store, "ada") == 0
        assert not (data_dir / "players" / "ada").exists() and pending_deletions(store) == []


def test_cli_finishes_an_interrupted_delete(data_dir, monkeypatch):
    config = ProfileConfig(data_dir=data_dir)
    with ProfileStore(config) as store:
        store.ensure_player("ada")
        save_state(_state(), store.save_path("ada", "lighthouse"))
        monkeypatch.setattr(shutil, "rmtree", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
        with pytest.raises(KeyboardInterrupt):
            delete_player(store, "ada")
    run = [sys.executable, "-m", "xrstory.cli", "profile"]
    listed = subprocess.run([*run, "list", "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=60)
    assert "deletion of 'ada' was interrupted" in listed.stderr
    done = subprocess.run([*run, "delete", "ada", "--yes", "--data-dir", str(data_dir)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "interrupted deletion, finished" in done.stdout and "removed players/ada/saves/lighthouse.json" in done.stdout


def test_a_live_session_of_a_deleted_player_stops_recording_cleanly(scene, data_dir):
    config = ProfileConfig(data_dir=data_dir)
    with ProfileStore(config) as session_store, ProfileStore(config) as cli_store:
        director = Director(Story(scene), session_store, "ada")
        director.on_player_line("Hello Maren, is the stove lit?", addressed="maren")
        assert cli_store.rows("transcripts", "ada")
        delete_player(cli_store, "ada")  # another process, while the session runs
        for _ in range(3):  # main: sqlite3.IntegrityError (FOREIGN KEY) on each
            director.on_player_line("Are you still there?", addressed="maren")
            director.on_character_line("maren", "Aye.")
            director.prompt_hints("maren")
            director.recommend()
        director.end_session("gone")
        assert _rows(cli_store, "ada") == 0 and not cli_store.has_player("ada")


def test_database_is_locked_is_retried_and_the_write_kept(data_dir):
    config = ProfileConfig(data_dir=data_dir, busy_timeout_ms=100, lock_retries=1)
    with ProfileStore(config) as store:
        store.ensure_player("ada")
        other = sqlite3.connect(store.path, isolation_level=None, timeout=0)
        other.execute("BEGIN IMMEDIATE")  # another session (or a delete's VACUUM) holds the write lock
        try:
            assert store.add_transcript("ada", "player", "said while locked") is None  # main: OperationalError
        finally:
            other.execute("ROLLBACK")
            other.close()
        store.add_transcript("ada", "player", "said after")
        texts = [r["text"] for r in store.rows("transcripts", "ada")]
        assert texts == ["said while locked", "said after"]


def test_a_playthrough_report_run_for_a_player_is_deleted_with_them(data_dir, tmp_path):
    from xrstory.cli.run import register_report

    report = tmp_path / "reports" / "warm_up"
    (report / "audio").mkdir(parents=True)
    for name in ("report.html", "final_state.json", "audio/turn1.wav"):
        (report / name).write_text("the player's words")
    register_report("ada", report)
    with ProfileStore(ProfileConfig(data_dir=data_dir)) as store:
        deleted = delete_player(store, "ada")
    assert sorted(deleted.files)[:3] == sorted(str((report / n).resolve()) for n in
                                               ("audio/turn1.wav", "final_state.json", "report.html"))
    assert not any(p.is_file() for p in report.rglob("*"))
