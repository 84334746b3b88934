"""Configuration of the OpenXR display backend (what the app asks of the runtime).

    OpenXRConfig(reference_space="stage", blend="auto", ar_allowed=scene.ar_allowed,
                 on_save=lambda reason: save_state(story.state, path))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

REFERENCE_SPACES = ("local", "stage", "view")
BLEND_CHOICES = ("auto", "opaque", "additive", "alpha_blend")
GRAPHICS_CHOICES = ("auto", "egl", "glx")


@dataclass
class OpenXRConfig:
    app_name: str = "xrstory"
    # STAGE anchors the scene to the play area's floor (the scene's y=0); LOCAL where STAGE is absent.
    reference_space: str = "stage"
    # "auto": opaque for VR; for AR (ar=True and the scene allows it) alpha_blend, then additive.
    blend: str = "auto"
    ar: bool = False  # ask for an overlay session (passthrough / see-through)
    ar_allowed: bool = True  # what the scene allows (Scene.scene.ar_allowed)
    headless: bool = False  # XR_MND_headless: a session without rendering (no frame functions)
    graphics: str = "auto"  # "egl": XR_MNDX_egl_enable (no display); "glx": XR_KHR_opengl_enable on X11
    resolution_scale: float = 1.0  # of the runtime's recommended per-eye size
    near: float = 0.05  # metres, for the depth layer's near/far
    far: float = 100.0
    depth_layer: bool = True  # submit depth (XR_KHR_composition_layer_depth) when the runtime has it
    input: bool = True  # action sets and controller bindings
    recreate_timeout_s: float = 10.0  # after LOSS_PENDING: how long to try to get a session again
    retry_interval_s: float = 0.5  # sleep between tries (never spin)
    idle_poll_s: float = 0.05  # sleep between event polls while the session is not running
    on_save: Callable[[str], None] | None = None  # called with the reason before exit / after loss
    on_state: Callable[[str, str], None] | None = None  # (old, new) session state names

    def __post_init__(self):
        if self.reference_space not in REFERENCE_SPACES:
            raise ValueError(f"OpenXRConfig.reference_space: '{self.reference_space}' is not one of "
                             f"{', '.join(REFERENCE_SPACES)}")
        if self.blend not in BLEND_CHOICES:
            raise ValueError(f"OpenXRConfig.blend: '{self.blend}' is not one of {', '.join(BLEND_CHOICES)}")
        if self.graphics not in GRAPHICS_CHOICES:
            raise ValueError(f"OpenXRConfig.graphics: '{self.graphics}' is not one of "
                             f"{', '.join(GRAPHICS_CHOICES)}")
        if not 0.1 <= self.resolution_scale <= 2.0:
            raise ValueError(f"OpenXRConfig.resolution_scale: {self.resolution_scale} is outside 0.1..2.0")
        if self.recreate_timeout_s < 0 or self.retry_interval_s <= 0 or self.idle_poll_s <= 0:
            raise ValueError("OpenXRConfig: recreate_timeout_s must be >= 0, retry_interval_s and "
                             "idle_poll_s > 0 (a zero sleep would spin the CPU)")
