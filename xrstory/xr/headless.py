"""The headless display backend: EGL offscreen, one framebuffer per eye, fixed timestep,
scripted head pose, frame capture to PNG (eyes side by side), CPU time per frame.

    cfg = HeadlessConfig(eye_size=(320, 320), stereo=True)
    with HeadlessDisplay(cfg) as display, SceneRenderer(display.ctx, scene) as renderer:
        display.look_at(renderer.anchor("lamp"), seconds=0.5)
        display.walk([(0, 1.6, -1.0)], speed=0.8)
        display.press()                              # SELECT at what the gaze ray hits
        for frame in display.frames(max_frames=120):  # begin .. end of each frame is bracketed
            renderer.update(state, frame.dt)
            renderer.draw(frame.views, frame.targets, ar_mode=display.blend_mode)
        display.capture("out.png")
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xrstory.render.view import Fov, Pose, View, stereo_views
from xrstory.xr.backend import Frame, InputEvent, InputKind

BLEND_MODES = ("opaque", "alpha_blend", "additive")


@dataclass
class HeadlessConfig:
    eye_size: tuple[int, int] = (640, 640)  # pixels per eye (w, h)
    stereo: bool = True
    fps: float = 90.0  # fixed timestep = 1 / fps seconds of display time per frame
    ipd: float = 0.063  # metres between the eyes
    fov: Fov = field(default_factory=Fov)
    start: Pose = field(default_factory=Pose)  # head pose at frame 0
    blend_mode: str = "opaque"  # or "alpha_blend" / "additive" (AR)
    background: str | Path | None = None  # AR: image standing in for the passthrough camera
    samples: int = 0  # MSAA samples per pixel (0: none); resolved at end of frame
    pace: bool = False  # sleep to real time (a viewer), instead of running as fast as possible

    def __post_init__(self):
        w, h = self.eye_size
        if w < 1 or h < 1 or w > 8192 or h > 8192:
            raise ValueError(f"eye_size {self.eye_size}: width and height must be 1..8192 pixels")
        if self.fps <= 0:
            raise ValueError(f"fps {self.fps}: must be > 0")
        if self.blend_mode not in BLEND_MODES:
            raise ValueError(f"blend_mode '{self.blend_mode}' is not one of {', '.join(BLEND_MODES)}")


@dataclass
class FrameTiming:
    index: int
    cpu_ms: float  # CPU time of this thread over the frame body (our Python + GL driver calls)
    wall_ms: float  # wall time from begin to end of frame, GL finished


def _slerp(q0, q1, t: float) -> tuple[float, float, float, float]:
    a, b = np.asarray(q0, np.float64), np.asarray(q1, np.float64)
    dot = float(a @ b)
    if dot < 0:
        b, dot = -b, -dot
    if dot > 0.9995:
        q = a + (b - a) * t
    else:
        th = math.acos(dot)
        q = (math.sin((1 - t) * th) * a + math.sin(t * th) * b) / math.sin(th)
    q /= np.linalg.norm(q)
    return tuple(float(v) for v in q)


class _HeadScript:
    """A queue of head moves played at the display's fixed timestep."""

    def __init__(self, start: Pose):
        self.pose = start
        self.steps: deque = deque()
        self._step_t = 0.0
        self._from: Pose | None = None

    def advance(self, dt: float, emit) -> Pose:
        budget = dt
        while self.steps and budget >= 0:
            kind, args = self.steps[0]
            if kind == "press":
                emit(args)
                self.steps.popleft()
                continue
            if self._from is None:
                self._from, self._step_t = self.pose, 0.0
            self._step_t += budget
            budget = 0.0
            done = self._apply(kind, args)
            if not done:
                break
            self.steps.popleft()
            self._from = None
            budget = -1.0  # moves take at least one frame each; presses after them fire now
            while self.steps and self.steps[0][0] == "press":
                emit(self.steps.popleft()[1])
        return self.pose

    def _apply(self, kind: str, args) -> bool:
        start = self._from
        if kind == "look":
            target, seconds = args
            goal = Pose.look_at(start.position, target)
            t = 1.0 if seconds <= 0 else min(self._step_t / seconds, 1.0)
            self.pose = Pose(start.position, _slerp(start.orientation, goal.orientation, t))
            return t >= 1.0
        if kind == "hold":
            return self._step_t >= args
        if kind == "walk":
            points, speed, look_target = args
            path = [np.asarray(start.position, np.float64)] + [np.asarray(p, np.float64) for p in points]
            dist = self._step_t * speed
            for a, b in zip(path, path[1:], strict=False):
                seg = float(np.linalg.norm(b - a))
                if dist <= seg and seg > 0:
                    pos = a + (b - a) * (dist / seg)
                    target = look_target if look_target is not None else pos + (b - a)
                    self.pose = Pose.look_at(pos, target) if look_target is not None else \
                        Pose(tuple(pos), Pose.look_at(pos, (target[0], pos[1], target[2])).orientation)
                    return False
                dist -= seg
            end = path[-1]
            orient = Pose.look_at(end, look_target).orientation if look_target is not None else self.pose.orientation
            self.pose = Pose(tuple(float(v) for v in end), orient)
            return True
        raise ValueError(f"unknown head script step '{kind}'")


class HeadlessDisplay:
    """A ``DisplayBackend`` without a display: EGL context, per-eye framebuffers, scripted head."""

    name = "headless"

    def __init__(self, config: HeadlessConfig | None = None, ctx=None):
        self.config = config or HeadlessConfig()
        self.blend_mode = self.config.blend_mode
        self._given_ctx = ctx
        self.ctx = None
        self.targets: list = []
        self._resolve: list = []
        self._owned: list = []
        self._script = _HeadScript(self.config.start)
        self._events: list[InputEvent] = []
        self._exit = False
        self._time = 0.0
        self.timings: list[FrameTiming] = []
        self.background: np.ndarray | None = None
        self.last_frame: Frame | None = None

    # -- context manager: native handles ----------------------------------------------
    def __enter__(self) -> HeadlessDisplay:
        import moderngl

        self.ctx = self._given_ctx or moderngl.create_standalone_context(backend="egl", require=330)
        n_eyes = 2 if self.config.stereo else 1
        size = self.config.eye_size
        for _ in range(n_eyes):
            color = self.ctx.texture(size, 4)
            depth = self.ctx.depth_renderbuffer(size)
            fbo = self.ctx.framebuffer([color], depth)
            self._owned += [fbo, color, depth]
            self._resolve.append(fbo)
            if self.config.samples:
                ms_color = self.ctx.renderbuffer(size, 4, samples=self.config.samples)
                ms_depth = self.ctx.depth_renderbuffer(size, samples=self.config.samples)
                ms = self.ctx.framebuffer([ms_color], ms_depth)
                self._owned += [ms, ms_color, ms_depth]
                self.targets.append(ms)
            else:
                self.targets.append(fbo)
        if self.config.background is not None:
            from xrstory.render.ar import load_background
            self.background = load_background(self.config.background, size)
        return self

    def __exit__(self, *exc) -> None:
        for obj in reversed(self._owned):
            obj.release()
        self._owned, self.targets, self._resolve = [], [], []
        if self._given_ctx is None and self.ctx is not None:
            self.ctx.release()
        self.ctx = None

    # -- scripted input ----------------------------------------------------------------
    @property
    def head(self) -> Pose:
        return self._script.pose

    def set_head(self, pose: Pose) -> None:
        self._script.pose = pose

    def look_at(self, target, seconds: float = 0.0) -> None:
        """Turn the head to look at ``target`` (world point, metres) over ``seconds``."""
        self._script.steps.append(("look", (tuple(float(v) for v in target), float(seconds))))

    def walk(self, path, speed: float = 1.0, look_at=None) -> None:
        """Walk the head through ``path`` (world points at eye height) at ``speed`` m/s, facing
        where it goes, or ``look_at`` a fixed point."""
        if speed <= 0:
            raise ValueError(f"walk speed {speed}: must be > 0 m/s")
        target = None if look_at is None else tuple(float(v) for v in look_at)
        self._script.steps.append(("walk", ([tuple(map(float, p)) for p in path], float(speed), target)))

    def hold(self, seconds: float) -> None:
        self._script.steps.append(("hold", float(seconds)))

    def press(self, kind: InputKind = InputKind.SELECT, hand: str = "") -> None:
        """After the moves queued so far, emit ``kind`` aimed along the gaze (head -Z)."""
        self._script.steps.append(("press", (kind, hand)))

    def inject(self, event: InputEvent) -> None:
        """Deliver ``event`` with the next frame."""
        self._events.append(event)

    def request_exit(self) -> None:
        self._exit = True

    @property
    def script_done(self) -> bool:
        return not self._script.steps

    # -- the frame loop ----------------------------------------------------------------
    def views(self, head: Pose) -> list[View]:
        if self.config.stereo:
            return stereo_views(head, self.config.ipd, self.config.fov)
        return [View(head, self.config.fov)]

    def frames(self, max_frames: int | None = None):
        """Yield frames at a fixed timestep until ``max_frames``, ``request_exit`` or a break.
        End of frame (MSAA resolve, GL finish, timing) runs even when the body breaks out."""
        if self.ctx is None:
            raise RuntimeError("HeadlessDisplay.frames() outside 'with HeadlessDisplay(...)'")
        dt = 1.0 / self.config.fps
        index = 0
        self._exit = False
        while not self._exit and (max_frames is None or index < max_frames):
            cpu0, wall0 = time.thread_time(), time.perf_counter()
            now = self._time

            def emit(args, now=now):
                kind, hand = args
                self._events.append(InputEvent(kind, now, hand, aim=self._script.pose))

            head = self._script.advance(dt if index else 0.0, emit)
            events, self._events = self._events, []
            frame = Frame(index=index, time=now, dt=dt if index else 0.0, views=self.views(head),
                          targets=list(self.targets), should_render=True, head=head, input_events=events)
            try:
                yield frame
            finally:
                self._end_frame(frame, cpu0, wall0)
            index += 1
            self._time += dt
            if self.config.pace:
                time.sleep(max(0.0, dt - (time.perf_counter() - wall0)))

    def _end_frame(self, frame: Frame, cpu0: float, wall0: float) -> None:
        if self.config.samples:
            for src, dst in zip(self.targets, self._resolve, strict=True):
                self.ctx.copy_framebuffer(dst, src)
        self.ctx.finish()
        frame.cpu_ms = (time.thread_time() - cpu0) * 1e3
        self.timings.append(FrameTiming(frame.index, frame.cpu_ms, (time.perf_counter() - wall0) * 1e3))
        self.last_frame = frame

    # -- pictures ----------------------------------------------------------------------
    def eye_images(self) -> list[np.ndarray]:
        """Each eye's last frame, (h, w, 4) uint8, top row first (premultiplied in AR modes)."""
        w, h = self.config.eye_size
        out = []
        for fbo in self._resolve:
            data = fbo.read(components=4, alignment=1)
            out.append(np.frombuffer(data, np.uint8).reshape(h, w, 4)[::-1].copy())
        return out

    def image(self) -> np.ndarray:
        """Eyes side by side: (h, w * eyes, 3) uint8, composited over the background in AR."""
        eyes = self.eye_images()
        if self.blend_mode != "opaque":
            from xrstory.render.ar import composite
            bg = self.background if self.background is not None else np.zeros((*eyes[0].shape[:2], 3), np.uint8)
            eyes = [composite(e, bg, self.blend_mode) for e in eyes]
        else:
            eyes = [e[..., :3] for e in eyes]
        return np.concatenate(eyes, axis=1)

    def capture(self, path: str | Path) -> Path:
        """Write the last frame (eyes side by side) as a PNG."""
        from PIL import Image

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(self.image()).save(path)
        return path
