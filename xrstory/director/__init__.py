"""Story progression and the player: pacing, the player profile (SQLite), personalization.

Imports only ``xrstory.story`` (plus stdlib and numpy). See docs/PRIVACY.md for what the
profile stores and how ``xrstory profile export|delete`` work.

Names are imported lazily (PEP 562), so ``import xrstory.director.store`` stays cheap for
tools that only touch the database (the kill -9 durability test starts dozens of writers).
"""

from importlib import import_module

_EXPORTS = {
    "LinUCB": "bandit", "Arm": "candidates", "candidate_arms": "candidates",
    "BanditConfig": "config", "PacingConfig": "config", "ProfileConfig": "config",
    "default_data_dir": "config", "Director": "director", "Recommendation": "director",
    "GazeTarget": "gaze", "GazeTracker": "gaze", "scene_targets": "gaze", "Nudge": "pacing",
    "Pacer": "pacing", "DeletionReport": "privacy", "delete_player": "privacy",
    "export_player": "privacy", "context_vector": "profile", "profile_hints": "profile",
    "taste": "profile", "Feature": "store", "ProfileError": "store", "ProfileStore": "store",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'xrstory.director' has no attribute {name!r}")
    value = getattr(import_module(f"xrstory.director.{_EXPORTS[name]}"), name)
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value
