"""Export and erase everything stored about one player (``xrstory profile export|delete``).

Export: every row of every player table plus the list of the player's files, as JSON.
Delete: the rows (one transaction), the player's folder (transcripts, kept audio, saves),
then VACUUM and a TRUNCATE checkpoint so no deleted byte survives in the database, its
``-wal`` or its ``-shm`` file. The report says what was removed, and whether the WAL could
be truncated (another process holding the database open can prevent it; then we say so).
"""

from __future__ import annotations

import hashlib
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from xrstory.director.store import PLAYER_TABLES, SCHEMA_VERSION, ProfileError, ProfileStore

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


def delete_player(store: ProfileStore, player_id: str) -> DeletionReport:
    """Remove every row and file about the player and scrub the WAL; see module docstring."""
    store.require_player(player_id)
    report = DeletionReport(player_id)
    with store.transaction() as db:
        for table in _DELETE_ORDER:
            col = PLAYER_TABLES[table]
            cur = db.execute(f"DELETE FROM {table} WHERE {col}=?", (player_id,))  # noqa: S608 - fixed names
            report.rows[table] = cur.rowcount
    folder = store.player_dir(player_id, create=False)
    if folder.exists():
        for f in player_files(store, player_id):
            report.files.append(f["path"])
            report.bytes_removed += f["bytes"]
        shutil.rmtree(folder)
        if folder.exists():
            raise ProfileError(f"{folder}: could not remove the player's folder")
    _scrub(store, report)
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
