"""Export and erase everything stored about one player (``xrstory profile export|delete``).

Export: every row of every player table plus the list of the player's files, as JSON.
Delete, in an order that an interruption (kill -9, power cut) cannot leave half done:
1. mark: ``<data dir>/deleting/<id>.json`` is written (fsync) with every file to remove (the
   player's folder and the files about them registered elsewhere, ``store.register_file``);
   from then on no session records anything more about the player;
2. remove the files (each listed in the report);
3. remove the rows, in one transaction;
4. VACUUM and a TRUNCATE checkpoint, so no deleted byte survives in the database, its
   ``-wal`` or its ``-shm`` file;
5. remove the mark.
Run again after an interruption, ``delete_player`` finds the mark and finishes (the rows may
already be gone). The report says what was removed, and whether the WAL could be truncated
(another process holding the database open can prevent it; then we say so).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from xrstory.director.store import (
    PLAYER_TABLES,
    SCHEMA_VERSION,
    ProfileError,
    ProfileStore,
    check_player_id,
    external_files,
    private_dir,
)

# Children first, so the report's order reads naturally (the players row goes last).
_DELETE_ORDER = ["events", "features", "transcripts", "decisions", "bandit", "sessions", "players"]


@dataclass
class DeletionReport:
    player_id: str
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows deleted
    files: list[str] = field(default_factory=list)  # paths removed, relative to the data dir
    bytes_removed: int = 0
    vacuumed: bool = False
    wal_truncated: bool = False
    resumed: bool = False  # an interrupted deletion was finished
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def player_files(store: ProfileStore, player_id: str) -> list[dict]:
    """Files under ``players/<id>/``: path (relative to the data dir), bytes, sha256."""
    folder = store.player_dir(player_id, create=False)
    if not folder.exists():
        return []
    out = []
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out.append({"path": str(p.relative_to(store.config.data_dir)), "bytes": p.stat().st_size,
                        "sha256": hashlib.sha256(p.read_bytes()).hexdigest()})
    return out


def export_player(store: ProfileStore, player_id: str, now: float | None = None) -> dict:
    """Everything stored about the player: each table's rows, decayed features, files."""
    store.require_player(player_id)
    now = time.time() if now is None else now
    tables = {t: store.rows(t, player_id) for t in PLAYER_TABLES}
    decayed = {name: {"value": f.value, "weight": f.weight, "mean": f.mean}
               for name, f in store.features(player_id, now=now).items()}
    return {"player_id": player_id, "exported_at": now, "schema_version": SCHEMA_VERSION,
            "database": str(store.path), "player_dir": str(store.player_dir(player_id, create=False)),
            "tables": tables, "features_now": decayed, "files": player_files(store, player_id)}


def pending_deletions(store: ProfileStore) -> list[str]:
    """Players whose deletion was interrupted (``delete_player`` again finishes it)."""
    folder = Path(store.config.data_dir) / "deleting"
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def _write_marker(path: Path, data: dict) -> None:
    private_dir(path.parent)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(data, indent=1))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def delete_player(store: ProfileStore, player_id: str) -> DeletionReport:
    """Remove every row and file about the player and scrub the WAL; see module docstring."""
    check_player_id(player_id)
    marker = store.deletion_marker(player_id)
    report = DeletionReport(player_id, resumed=marker.exists())
    folder = store.player_dir(player_id, create=False)
    if report.resumed:
        try:
            planned = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ProfileError(f"{marker}: unreadable deletion record ({exc}); remove the player's "
                               f"folder {folder} by hand and delete this file") from None
        outside = [str(p) for p in planned.get("external_files", [])]
    else:
        store.require_player(player_id)
        outside = external_files(store, player_id)
        # 1. mark, durably, before anything goes: what must go survives in the mark
        _write_marker(marker, {"player_id": player_id, "started": time.time(), "external_files": outside})
    store.is_gone(player_id)  # this process records nothing more about them either
    # 2. files: elsewhere first, then the player's own folder
    for path in outside:
        p = Path(path)
        if p.is_file() or p.is_symlink():
            report.bytes_removed += p.stat().st_size if p.is_file() else 0
            p.unlink()
            report.files.append(str(p))
        elif p.is_dir():
            report.warnings.append(f"{p}: a folder was registered as a player's file; left in place")
    if folder.exists():
        for f in player_files(store, player_id):
            report.files.append(f["path"])
            report.bytes_removed += f["bytes"]
        shutil.rmtree(folder)
        if folder.exists():
            raise ProfileError(f"{folder}: could not remove the player's folder")
    # 3. rows
    with store.transaction() as db:
        for table in _DELETE_ORDER:
            col = PLAYER_TABLES[table]
            cur = db.execute(f"DELETE FROM {table} WHERE {col}=?", (player_id,))  # noqa: S608 - fixed names
            report.rows[table] = cur.rowcount
    # 4. scrub, 5. unmark
    _scrub(store, report)
    marker.unlink(missing_ok=True)
    return report


def _scrub(store: ProfileStore, report: DeletionReport) -> None:
    # secure_delete already zeroed the freed cells; VACUUM rebuilds the file so no free page
    # or stale index cell remains, and the TRUNCATE checkpoint copies the WAL back and cuts
    # the -wal file to zero bytes (older frames with the player's rows went with it).
    with store._lock:
        db = store._raw()
        try:
            db.execute("VACUUM")
            report.vacuumed = True
        except Exception as exc:  # noqa: BLE001 - reported, the rows are already gone
            report.warnings.append(f"VACUUM failed: {exc}")
        busy, _log, _done = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    wal = Path(f"{store.path}-wal")
    report.wal_truncated = busy == 0 and (not wal.exists() or wal.stat().st_size == 0)
    if not report.wal_truncated:
        report.warnings.append(f"{wal}: another process has the profile database open, so the "
                               "write-ahead log could not be truncated; close other xrstory "
                               "sessions and run the delete again")
