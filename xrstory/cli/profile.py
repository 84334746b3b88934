"""``xrstory profile list|show|export|delete``: see and erase what is stored about players.

Registered in xrstory/cli/__init__.py as a typer sub-app. Every command takes ``--data-dir``
(default ``$XDG_DATA_HOME/xrstory``). Exit codes: 0 ok, 1 delete left a warning, 2 bad input
(unknown player, invalid id, unreadable database).

    xrstory profile list
    xrstory profile export ada > ada.json      # or --out ada.json
    xrstory profile delete ada --yes
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from xrstory.director.config import ProfileConfig, default_data_dir
from xrstory.director.privacy import delete_player, export_player, pending_deletions
from xrstory.director.profile import profile_hints, taste
from xrstory.director.store import ProfileError, ProfileStore

profile_app = typer.Typer(add_completion=False, no_args_is_help=True,
                          help="What xrstory stores about players: list, show, export, delete.")

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="profile folder (default: $XDG_DATA_HOME/xrstory)")]


def _open(data_dir: Path | None) -> ProfileStore:
    try:
        return ProfileStore(ProfileConfig(data_dir=data_dir or default_data_dir()))
    except ProfileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(2) from None


@profile_app.command("list")
def list_players(data_dir: DataDir = None):
    """Players on this machine, with their number of sessions and events."""
    with _open(data_dir) as store:
        players = store.list_players()
        pending = pending_deletions(store)
        if not players and not pending:
            typer.echo(f"no players in {store.path}")
        for p in players:
            typer.echo(f"{p.id}\t{p.sessions} sessions\t{p.events} events")
        for pid in pending:
            typer.echo(f"warning: the deletion of {pid!r} was interrupted; run 'xrstory profile delete "
                       f"{pid}' to finish it", err=True)


@profile_app.command()
def show(player: str, data_dir: DataDir = None):
    """A player's learnt taste and the hints characters would get."""
    with _open(data_dir) as store:
        try:
            store.require_player(player)
            feats = store.features(player)
        except ProfileError as exc:
            _fail(exc)
        t = taste(feats)
        typer.echo(f"player {player}: interests " +
                   ", ".join(f"{k} {v:.2f}" for k, v in t.interests.items()) +
                   f"; prefers short {t.short:.2f}; mood {t.mood:+.2f}; evidence {t.evidence:.1f} lines")
        for name in sorted(feats):
            f = feats[name]
            typer.echo(f"  {name:32s} value {f.value:9.3f}  weight {f.weight:7.3f}  mean {f.mean:8.3f}")
        from xrstory.story.scene import Scene, SceneInfo  # hint wording only; no scene needed

        for hint in profile_hints(feats, Scene(scene=SceneInfo(id="-", title="-", start_beat="-"))):
            typer.echo(f"  hint: {hint}")


@profile_app.command()
def export(player: str, data_dir: DataDir = None,
           out: Annotated[Path | None, typer.Option("--out", help="write JSON here instead of stdout")] = None):
    """JSON of everything stored about the player: every row and the list of their files."""
    with _open(data_dir) as store:
        try:
            data = export_player(store, player)
        except ProfileError as exc:
            _fail(exc)
    text = json.dumps(data, indent=2, default=str)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out} ({len(text)} bytes)", err=True)


@profile_app.command()
def delete(player: str, data_dir: DataDir = None,
           yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False):
    """Remove every row and file about the player, scrub the WAL, report what went."""
    with _open(data_dir) as store:
        try:
            if not store.deletion_marker(player).exists():
                store.require_player(player)
        except ProfileError as exc:
            _fail(exc)
        if not yes and not typer.confirm(f"Erase everything stored about {player!r}?"):
            raise typer.Exit(1)
        try:
            report = delete_player(store, player)
        except (ProfileError, OSError) as exc:
            typer.echo(f"error: {exc}; the deletion is recorded as unfinished: run this command again "
                       f"to finish it", err=True)
            raise typer.Exit(2) from None
    rows = ", ".join(f"{table} {n}" for table, n in report.rows.items())
    typer.echo(f"deleted player {player}{' (an interrupted deletion, finished)' if report.resumed else ''}: "
               f"rows: {rows}")
    typer.echo(f"files: {len(report.files)} ({report.bytes_removed} bytes)")
    for f in report.files:
        typer.echo(f"  removed {f}")
    typer.echo(f"database vacuumed: {report.vacuumed}; write-ahead log truncated: {report.wal_truncated}")
    for w in report.warnings:
        typer.echo(f"warning: {w}", err=True)
    raise typer.Exit(1 if report.warnings else 0)
