"""What an author writes (scene files) and what a save holds (StoryState).

Imports nothing else of ours, and nothing heavy: the OpenXR tests import it inside a
minimal Debian 13 root.
"""

from xrstory.story.beat_graph import beat_edges
from xrstory.story.errors import SceneError, SceneIssue
from xrstory.story.loader import load_scene
from xrstory.story.saves import SaveError, load_state, save_state
from xrstory.story.scene import (
    Beat,
    Character,
    Effects,
    LightDef,
    Prop,
    Requirements,
    Scene,
    Trigger,
)
from xrstory.story.state import Story, StoryState, TriggerResult

__all__ = [
    "beat_edges",
    "Beat",
    "Character",
    "Effects",
    "LightDef",
    "Prop",
    "Requirements",
    "Scene",
    "SaveError",
    "SceneError",
    "SceneIssue",
    "Story",
    "StoryState",
    "Trigger",
    "TriggerResult",
    "load_scene",
    "load_state",
    "save_state",
]
