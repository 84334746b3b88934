"""Export lists everything about a player; delete leaves no trace of them on disk.

Real SQLite files in a tmp data dir, real CLI (typer's runner on the registered `profile`
sub-app). After delete we scan the raw bytes of the database, its -wal and -shm files and
the whole data dir for the player's id and a phrase only they said.
"""

import json

from typer.testing import CliRunner

from xrstory.cli import app
from xrstory.director import Director, ProfileConfig, ProfileStore, delete_player, export_player
from xrstory.story import Story, load_scene, save_state

SECRET = "zanzibar marmalade xylophone"  # occurs nowhere but in what the player says
PLAYER = "qpl4yer7x"
OTHER = "keeper2"


def _play(store, player, line):
    story = Story(load_scene("scenes/lighthouse"))
    director = Director(story, store, player)
    director.on_player_line(line, addressed="maren")
    director.on_character_line("maren", "Aye, friend.")
    director.on_gaze({"prop.lamp": 4.0, "character.maren": 2.0})
    director.recommend()
    director.on_interruption("maren")
    director.on_trigger(story.apply("light_stove", by="maren"))
    save_state(story.state, store.save_path(player, "lighthouse"))
    store.audio_path(player, "utt1.wav").write_bytes(b"RIFF" + line.encode() + b"\0" * 64)  # kept audio
    director.end_session()


def _all_bytes(data_dir):
    return {p: p.read_bytes() for p in data_dir.rglob("*") if p.is_file()}


def test_export_has_every_row_and_file(tmp_path):
    with ProfileStore(ProfileConfig(data_dir=tmp_path)) as plain:
        assert plain.audio_path(PLAYER, "utt1.wav") is None  # audio is not kept by default
    with ProfileStore(ProfileConfig(data_dir=tmp_path, keep_audio=True)) as store:
        _play(store, PLAYER, f"Tell me about {SECRET}, Maren")
        _play(store, OTHER, "Can you light the stove?")
        data = export_player(store, PLAYER)
    json.dumps(data)  # serialisable as is
    tables = data["tables"]
    assert tables["players"][0]["id"] == PLAYER
    assert all(r["player_id"] == PLAYER for t, rows in tables.items() if t != "players" for r in rows)
    assert any(SECRET in r["text"] for r in tables["transcripts"])
    kinds = {r["kind"] for r in tables["events"]}
    assert {"line", "character_line", "gaze", "interrupt", "choice"} <= kinds
    assert tables["decisions"] and "arms" in json.loads(tables["decisions"][0]["explanation"])
    assert tables["bandit"] and tables["sessions"][0]["ended"] is not None
    files = {f["path"] for f in data["files"]}
    assert files == {f"players/{PLAYER}/saves/lighthouse.json", f"players/{PLAYER}/audio/utt1.wav"}
    assert "interest.lore" in data["features_now"]


def test_delete_leaves_nothing_in_db_wal_shm_or_files(tmp_path):
    with ProfileStore(ProfileConfig(data_dir=tmp_path, keep_audio=True)) as store:
        _play(store, PLAYER, f"Tell me about {SECRET}, Maren")
        _play(store, OTHER, "Can you light the stove?")
        before = _all_bytes(tmp_path)
        assert any(SECRET.encode() in b for b in before.values()), "the test phrase must be on disk first"
        assert (tmp_path / "profiles.sqlite3-wal").exists()
        report = delete_player(store, PLAYER)
        # scan while the store is still open: -wal and -shm exist now
        after = _all_bytes(tmp_path)
        assert report.wal_truncated and report.vacuumed and not report.warnings
        assert report.rows["players"] == 1 and report.rows["transcripts"] >= 1 and report.rows["events"] >= 5
        assert sorted(report.files) == [f"players/{PLAYER}/audio/utt1.wav", f"players/{PLAYER}/saves/lighthouse.json"]
        for path, raw in after.items():
            assert PLAYER.encode() not in raw, f"{path} still holds the player id"
            assert SECRET.encode() not in raw, f"{path} still holds what the player said"
        assert not (tmp_path / "players" / PLAYER).exists()
        # the other player is untouched
        assert [p.id for p in store.list_players()] == [OTHER]
        assert export_player(store, OTHER)["tables"]["transcripts"]
        assert store.integrity_check() == "ok"


def test_cli_profile_list_export_delete(tmp_path):
    with ProfileStore(ProfileConfig(data_dir=tmp_path, keep_audio=True)) as store:
        _play(store, PLAYER, f"Tell me about {SECRET}, Maren")
    runner = CliRunner()
    dd = ["--data-dir", str(tmp_path)]
    res = runner.invoke(app, ["profile", "list", *dd])
    assert res.exit_code == 0 and PLAYER in res.output
    res = runner.invoke(app, ["profile", "show", PLAYER, *dd])
    assert res.exit_code == 0 and "interest.lore" in res.output
    out = tmp_path / "export.json"
    res = runner.invoke(app, ["profile", "export", PLAYER, *dd, "--out", str(out)])
    assert res.exit_code == 0
    assert SECRET in out.read_text()
    out.unlink()  # the export is the user's copy; remove it so the scan below sees only the store
    res = runner.invoke(app, ["profile", "delete", PLAYER, *dd, "--yes"])
    assert res.exit_code == 0, res.output
    assert "players 1" in res.output and "utt1.wav" in res.output and "truncated: True" in res.output
    for path, raw in _all_bytes(tmp_path).items():
        assert PLAYER.encode() not in raw and SECRET.encode() not in raw, path
    res = runner.invoke(app, ["profile", "export", PLAYER, *dd])
    assert res.exit_code == 2 and f"no player '{PLAYER}'" in res.output
    res = runner.invoke(app, ["profile", "delete", "../etc", *dd, "--yes"])
    assert res.exit_code == 2 and "invalid player id '../etc'" in res.output
