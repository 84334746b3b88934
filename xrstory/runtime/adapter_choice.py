"""Which LoRA adapter a scene's characters run with: explicit > the scene's own > the general one > none.

The general adapter (``assets/adapters/general``, trained on the many-scene corpus with
``xrstory finetune corpus --general``) carries any scene an author writes; a scene's own adapter,
where it has one, knows its story better; ``--adapter`` overrides both. ``choose_adapter`` returns
the choice with a note saying which it is, so ``play``/``run``/``ask`` can tell the user.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from xrstory.story.scene import Scene

log = logging.getLogger(__name__)

DEFAULT_GENERAL_ADAPTER = Path(__file__).resolve().parents[2] / "assets" / "adapters" / "general"


@dataclass(frozen=True)
class AdapterChoice:
    path: str | None  # None: the base model
    source: Literal["explicit", "scene", "general", "base"]
    note: str  # one line for the user: which adapter, and why


def _is_adapter(path: Path) -> bool:
    return (path / "adapter_config.json").is_file()


def choose_adapter(scene: Scene, adapter: str | Path | None = None,
                   general: Path | None = DEFAULT_GENERAL_ADAPTER) -> AdapterChoice:
    """The adapter to load for ``scene``; raises FileNotFoundError for a missing explicit one."""
    if adapter:
        if not Path(adapter).is_dir():
            raise FileNotFoundError(f"adapter folder not found: {adapter}")
        return AdapterChoice(str(adapter), "explicit", f"adapter {adapter} (given)")
    skipped = ""
    if scene.scene.adapter and scene.folder:
        own = (Path(scene.folder) / scene.scene.adapter).resolve()
        if _is_adapter(own):
            return AdapterChoice(str(own), "scene", f"scene adapter {own.name} ({own})")
        skipped = f"scene names adapter {own} but it is not there; "
        log.warning("scene names adapter %s but it is not there", own)
    if general is not None and _is_adapter(Path(general)):
        return AdapterChoice(str(general), "general", f"{skipped}general adapter ({general})")
    return AdapterChoice(None, "base", f"{skipped}base model (no scene or general adapter)")
