"""The display-backend contract shared by ``xr.headless`` and ``xr.openxr``.

A backend is a context manager that owns its native handles, and ``frames()`` is a
generator that brackets begin/end of each frame, so the end cannot be skipped::

    with HeadlessDisplay(config) as display:
        for frame in display.frames():
            if frame.should_render:
                renderer.draw(frame.views, frame.targets)
            handle(frame.input_events)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from xrstory.render.view import Pose, View


class InputKind(StrEnum):
    SELECT = "select"  # trigger / click on what the aim ray hits
    GRIP = "grip"
    PUSH_TO_TALK_DOWN = "push_to_talk_down"
    PUSH_TO_TALK_UP = "push_to_talk_up"
    THUMBSTICK = "thumbstick"
    LIFECYCLE = "lifecycle"  # session state changes (OpenXR) - value is the new state name


@dataclass(frozen=True)
class InputEvent:
    kind: InputKind
    t: float  # seconds on the display's clock
    hand: str = ""  # "left", "right" or "" (gaze / keyboard / script)
    aim: Pose | None = None  # the ray origin and direction (-Z of the pose)
    value: Any = None


@dataclass
class Frame:
    index: int
    time: float  # seconds of display time (fixed timestep headless, predicted display time in OpenXR)
    dt: float  # seconds since the previous frame
    views: list[View]  # one per eye
    targets: list[Any]  # moderngl.Framebuffer per view (colour + depth)
    should_render: bool = True
    head: Pose = field(default_factory=Pose)
    input_events: list[InputEvent] = field(default_factory=list)
    cpu_ms: float = 0.0  # filled by the backend after end-of-frame: CPU time spent in the frame body


class DisplayBackend(Protocol):
    name: str
    blend_mode: str  # "opaque", "additive" or "alpha_blend"

    def __enter__(self) -> DisplayBackend: ...

    def __exit__(self, *exc) -> None: ...

    def frames(self): ...  # Iterator[Frame]

    def request_exit(self) -> None: ...
