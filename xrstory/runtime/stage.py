"""The picture side of a session, on the frame loop's thread: the scene renderer animating toward
the story state, who is speaking (glow/lips from the mixer's levels), subtitles in 3D, what the
controller's select ray points at, and frames captured to PNG at replies and triggers
(pixels read on this thread, compressed and written by ``PngWriter`` on its own).

Owns the ``SceneRenderer`` (made on the display's GL context, released on ``close``); without a
display it does nothing, so a session can run audio-only.
"""

from __future__ import annotations

from pathlib import Path

from xrstory.runtime.records import Capture
from xrstory.runtime.turns import TurnLedger
from xrstory.story.state import StoryState
from xrstory.xr.backend import Frame, InputKind

ROOT = Path(__file__).resolve().parents[2]


SMALL_EYE_PX = 512  # headless eyes up to this size get the one-tap shadow filter


def default_shadow_taps(display) -> int:
    """4 (a 3x3-texel shadow filter) on a headset or large eyes; 1 (2x2) for small headless eyes,
    where llvmpipe shares the 2 cores with Whisper and the model and the softer edge is a pixel
    or two (see benchmarks/RESULTS.md, issue 17 item 7)."""
    config = getattr(display, "config", None)
    size = getattr(config, "eye_size", None)
    if getattr(display, "name", "") == "headless" and size is not None and max(size) <= SMALL_EYE_PX:
        return 1
    return 4


class Stage:
    def __init__(self, display, scene, capture_dir: Path | None = None, shadow_taps: int | None = None):
        self.display, self.scene, self.capture_dir = display, scene, capture_dir
        self.shadow_taps = shadow_taps  # None: default_shadow_taps(display)
        self.renderer = None
        self.speaking: dict[str, float] = {}  # character -> voice level 0..1 this frame
        self.visemes: dict[str, str] = {}  # character -> the viseme class being spoken (mouth shape)
        self.subtitles: dict[str, str] = {}
        self._subtitle_until: dict[str, float] = {}
        self.captures: list[Capture] = []
        self._capture_next: list[str] = []
        self._png = None  # PngWriter, made at the first capture

    def open(self, state: StoryState) -> None:
        if self.display is not None and self.renderer is None:
            from xrstory.render.renderer import SceneRenderer

            taps = self.shadow_taps if self.shadow_taps is not None else default_shadow_taps(self.display)
            self.renderer = SceneRenderer(self.display.ctx, self.scene, shaders_dir=ROOT / "shaders",
                                          assets_dir=ROOT / "assets", shadow_taps=taps)
            self.renderer.update(state, 0.0, snap=True)

    def close(self) -> None:
        if self._png is not None:
            self._png.close()  # every capture is on disk before the report links it
        if self.renderer is not None:
            self.renderer.release()
            self.renderer = None

    def subtitle(self, character: str, text: str, now: float) -> None:
        self.subtitles[character] = text
        self._subtitle_until[character] = now + 2.0 + 0.35 * len(text.split())

    def gesture(self, character: str, emotion: str) -> None:
        """A committed reply's emotion plays the character's clip for it (glTF characters only)."""
        if self.renderer is not None:
            self.renderer.gesture(character, emotion)

    def capture_due(self, label: str) -> None:
        self._capture_next.append(label)

    def frame(self, frame: Frame | None, state: StoryState, now: float, speaking_now: list[str]) -> list[str]:
        """Animate and draw one frame; returns the props the player pressed select on."""
        for c in list(self.speaking):
            if c not in speaking_now:
                self.speaking[c] = 0.0
                self.visemes.pop(c, None)
        for c, until in list(self._subtitle_until.items()):
            if now > until and c not in speaking_now:
                self.subtitles.pop(c, None)
                self._subtitle_until.pop(c, None)
        if self.renderer is None or frame is None:
            return []
        self.renderer.update(state, frame.dt, speaking=self.speaking, subtitles=self.subtitles,
                             player_position=frame.head.position, visemes=self.visemes)
        if frame.should_render:
            self.renderer.draw(frame.views, frame.targets, ar_mode=getattr(self.display, "blend_mode", "opaque"))
        pressed = []
        for event in frame.input_events:
            if event.kind is InputKind.SELECT and event.aim is not None:
                target = self.renderer.pick(event.aim.position, event.aim.forward(), interactive_only=True)
                if target:
                    pressed.append(target)
        return pressed

    def capture(self, frame: Frame | None, now: float, ledger: TurnLedger) -> None:
        """The next due capture, if any (one per frame): the frame just drawn, to PNG."""
        if not self._capture_next or self.display is None or self.capture_dir is None or frame is None:
            return
        label = self._capture_next.pop(0)
        path = self.capture_dir / f"frame_{len(self.captures):03d}.png"
        if hasattr(self.display, "image"):  # pixels now (GL is this thread's), PNG on the writer's thread
            if self._png is None:
                from xrstory.runtime.png_writer import PngWriter
                self._png = PngWriter()
            self._png.write(self.display.image(), path)
        else:
            self.display.capture(path)
        self.captures.append(Capture(now, label, str(path)))
        for rec in ledger.ordered():
            if label.startswith(f"reply {rec.turn} ") and rec.capture is None:
                rec.capture = str(path)
