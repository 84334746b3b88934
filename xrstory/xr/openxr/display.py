"""``OpenXRDisplay``: the DisplayBackend on a real OpenXR runtime (SteamVR, Monado, Meta, WiVRn).

    from xrstory.xr.openxr import OpenXRConfig, OpenXRDisplay
    with OpenXRDisplay(OpenXRConfig(on_save=save)) as display:     # OpenXRUnavailable if no runtime
        renderer = SceneRenderer(display.ctx, scene)
        for frame in display.frames():          # xrWaitFrame / xrBeginFrame ... xrEndFrame
            if frame.should_render:
                renderer.draw(frame.views, frame.targets)

``frames()`` ends when the runtime exits the session (after ``request_exit()`` or on its own),
when the instance is lost, or when a lost session cannot be recreated within
``recreate_timeout_s``; ``exit_reason`` says which. ``on_save`` is called before any of these.
While the session is not running the loop sleeps between event polls (no CPU spinning).
"""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack

import moderngl
import xr

from xrstory.render.view import Pose
from xrstory.xr.backend import Frame, InputEvent, InputKind
from xrstory.xr.openxr.blend import choose_blend_mode
from xrstory.xr.openxr.config import OpenXRConfig
from xrstory.xr.openxr.errors import OpenXRUnavailable
from xrstory.xr.openxr.events import poll_events
from xrstory.xr.openxr.instance import MNDX_EGL, XrInstance
from xrstory.xr.openxr.lifecycle import Action, Lifecycle, SessionState
from xrstory.xr.openxr.session import XrSession

log = logging.getLogger("xrstory.xr.openxr")
LOST_ERRORS = (xr.SessionLostError, xr.InstanceLostError)
BLEND_ENUMS = {"opaque": xr.EnvironmentBlendMode.OPAQUE, "additive": xr.EnvironmentBlendMode.ADDITIVE,
               "alpha_blend": xr.EnvironmentBlendMode.ALPHA_BLEND}


class OpenXRDisplay:
    name = "openxr"

    def __init__(self, config: OpenXRConfig | None = None):
        self.config = config or OpenXRConfig()
        self.blend_mode = "opaque"
        self.lifecycle = Lifecycle()
        self.instance: XrInstance | None = None
        self.session: XrSession | None = None
        self.ctx: moderngl.Context | None = None  # the renderer draws with this
        self.exit_reason = ""  # exit_requested | runtime_exit | instance_lost | loss_timeout (session)
        self.saves: list[str] = []  # reasons on_save was called with
        self._gl = None
        self._stack = ExitStack()
        self._done = False
        self._exit_requested = False
        self._index = 0
        self._last_time: float | None = None
        self._pending: list[InputEvent] = []
        self._frames_gen = None
        self._instance_lost = False
        self._instance_generation = 0
        self.recoveries = 0  # sessions recreated after a loss
        self._rebase = False
        self._time_offset = 0.0

    # -- setup -----------------------------------------------------------------------
    def __enter__(self) -> OpenXRDisplay:
        try:
            self._open_instance()
            if not self.config.headless:
                self._open_graphics()
                self.blend_mode = choose_blend_mode(self.instance.blend_modes, self.config)
            self._open_session()
        except BaseException:
            self._close_session()
            self._close_instance()
            self._stack.close()
            raise
        log.info("OpenXR display ready: %s, blend %s, space %s", self.instance.system_name, self.blend_mode,
                 self.session.spaces.world_kind)
        return self

    def _open_instance(self) -> None:
        inst = XrInstance(self.config)
        self.instance = inst.__enter__()
        self._instance_generation += 1
        if not self.config.headless:
            # The spec requires this call before xrCreateSession with an OpenGL binding.
            req = xr.get_opengl_graphics_requirements_khr(inst.handle, inst.system_id)
            log.debug("OpenGL requirements: min %s max %s", req.min_api_version_supported,
                      req.max_api_version_supported)

    def _close_instance(self) -> None:
        if self.instance is not None:
            self.instance.__exit__(None, None, None)
            self.instance = None

    def _open_graphics(self) -> None:
        if self.instance.has(MNDX_EGL):
            from xrstory.xr.openxr.egl import EGLContext

            self._gl = self._stack.enter_context(EGLContext())
        else:
            from xrstory.xr.openxr.glx import GLXContext

            self._gl = self._stack.enter_context(GLXContext())
        self.ctx = moderngl.create_context(require=330)  # attaches to the current context

    def _open_session(self) -> None:
        self.session = XrSession(self.instance, self.config, self._gl, self.ctx, self.blend_mode)
        self.session.__enter__()
        self.lifecycle.on_recreated()

    def _close_session(self) -> None:
        if self.session is not None:
            self.session.__exit__(None, None, None)
            self.session = None

    # -- the frame loop --------------------------------------------------------------
    def frames(self):
        """Yield one ``Frame`` per runtime frame while the session runs (see module docstring)."""
        self._frames_gen = self._frames()
        return self._frames_gen

    def _frames(self):
        while not self._done:
            self._handle_events()
            if self._done:
                return
            if not self.lifecycle.running or self.config.headless:
                if self.config.headless and self.lifecycle.running:
                    yield self._headless_frame()
                time.sleep(self.config.idle_poll_s)  # the runtime decides when we run: wait, don't spin
                continue
            try:
                frame_state = xr.wait_frame(self.session.handle, xr.FrameWaitInfo())
                xr.begin_frame(self.session.handle, xr.FrameBeginInfo())
            except xr.SessionLossPending:
                self._act(self.lifecycle.on_state(SessionState.LOSS_PENDING), "session loss pending")
                continue
            except LOST_ERRORS as exc:
                self._on_lost(exc)
                continue
            yield from self._one_frame(frame_state)

    def _one_frame(self, frame_state):
        s = self.session
        t0 = time.perf_counter()
        display_time = frame_state.predicted_display_time  # XrTime, nanoseconds
        seconds = display_time / 1e9
        if self._rebase and self._last_time is not None:
            # A recreated instance may count time from another epoch: keep our clock monotonic.
            period = frame_state.predicted_display_period / 1e9 or 1 / 90
            self._time_offset = self._last_time + period - seconds
        self._rebase = False
        seconds += self._time_offset  # seconds on the display's clock, continuous across recoveries
        render = bool(frame_state.should_render) and self.lifecycle.should_render
        views, xr_views, head = [], [], Pose()
        try:
            views, xr_views, head = s.locate(display_time)
        except LOST_ERRORS as exc:
            self._on_lost(exc)
            return
        render = render and bool(views)
        events = self._pending
        self._pending = []
        if s.input is not None and self.lifecycle.state == SessionState.FOCUSED:
            events += s.input.poll(display_time, seconds)
        targets = s.chains.acquire() if render else []
        frame = Frame(index=self._index, time=seconds,
                      dt=0.0 if self._last_time is None else seconds - self._last_time,
                      views=views, targets=targets, should_render=render, head=head, input_events=events)
        self._index += 1
        self._last_time = seconds
        try:
            yield frame
        finally:
            # Always end the frame we began, also when the consumer breaks out of the loop.
            try:
                if render:
                    s.chains.release()
                layers = [s.layer.build(xr_views)] if render else []
                xr.end_frame(s.handle, xr.FrameEndInfo(display_time=display_time,
                                                       environment_blend_mode=BLEND_ENUMS[self.blend_mode],
                                                       layers=layers))
            except LOST_ERRORS as exc:
                self._on_lost(exc)
            frame.cpu_ms = (time.perf_counter() - t0) * 1000.0

    def _headless_frame(self) -> Frame:
        seconds = time.monotonic()
        frame = Frame(index=self._index, time=seconds,
                      dt=0.0 if self._last_time is None else seconds - self._last_time,
                      views=[], targets=[], should_render=False, input_events=self._pending)
        self._pending = []
        self._index += 1
        self._last_time = seconds
        return frame

    # -- lifecycle -------------------------------------------------------------------
    def _handle_events(self) -> None:
        try:
            events = poll_events(self.instance.handle)
        except xr.InstanceLostError as exc:
            self._on_lost(exc)
            return
        for kind, value in events:
            if kind == "state":
                old = self.lifecycle.state.value
                actions = self.lifecycle.on_state(value)
                self._transition(old, str(value))
                self._act(actions, f"session {value}")
            elif kind == "instance_loss":
                self._on_lost(xr.InstanceLostError("instance loss pending"))
            elif kind == "lost_events":
                log.warning("the runtime dropped %s events", value)
            if self._done:
                return

    def _transition(self, old: str, new: str) -> None:
        log.info("OpenXR session %s -> %s", old, new)
        self._pending.append(InputEvent(InputKind.LIFECYCLE, time.monotonic(), value=new))
        if self.config.on_state is not None:
            self.config.on_state(old, new)

    def _on_lost(self, exc: BaseException) -> None:
        if self._done:
            return
        instance_lost = not isinstance(exc, xr.SessionLostError)
        log.warning("OpenXR %s lost: %s", "instance" if instance_lost else "session", exc or type(exc).__name__)
        old = self.lifecycle.state.value
        # Both are worth a bounded retry: a crashed runtime service is often restarted.
        actions = self.lifecycle.on_lost(recoverable=True)
        self._instance_lost = self._instance_lost or instance_lost
        self._transition(old, SessionState.LOST.value)
        self._act(actions, "instance lost" if instance_lost else "session lost")

    def _act(self, actions: list[Action], reason: str) -> None:
        for action in actions:
            if action == Action.BEGIN:
                self.session.begin()
            elif action == Action.END:
                self.session.end()
            elif action == Action.SAVE:
                self._save(reason)
            elif action == Action.DESTROY:
                self._close_session()
            elif action == Action.RECREATE:
                self._recreate()
            elif action == Action.EXIT:
                self.exit_reason = self.exit_reason or ("exit_requested" if self._exit_requested
                                                        else "runtime_exit")
                self._done = True

    def _save(self, reason: str) -> None:
        self.saves.append(reason)
        if self.config.on_save is not None:
            try:
                self.config.on_save(reason)
            except Exception:  # a failed save must not keep a dying session alive; it is logged
                log.exception("on_save(%r) failed", reason)

    def _recreate(self) -> None:
        """Try to get the system and a new session until ``recreate_timeout_s``; sleep between tries."""
        deadline = time.monotonic() + self.config.recreate_timeout_s
        while True:
            try:
                if self._instance_lost:
                    self._close_instance()  # a lost instance is only good for destroying
                    self._open_instance()
                    self._instance_lost = False
                else:
                    self.instance.find_system()
                self._open_session()
                log.info("OpenXR %s recreated", "instance and session" if self._recreated_instance() else "session")
                self.recoveries += 1
                self._rebase = True
                return
            except xr.InstanceLostError as exc:
                log.info("OpenXR instance lost while recreating: %s", exc)
                self._close_session()
                self._instance_lost = True
            except (OpenXRUnavailable, xr.XrException) as exc:
                log.info("OpenXR not back yet: %s", exc)
                self._close_session()
                if self.instance is None:
                    self._instance_lost = True
            if time.monotonic() + self.config.retry_interval_s > deadline:
                self.exit_reason = self.exit_reason or ("instance_lost" if self._instance_lost else "loss_timeout")
                break
            time.sleep(self.config.retry_interval_s)  # wait for the runtime; never spin
        self._done = True

    def _recreated_instance(self) -> bool:
        return self._instance_generation > 1

    def request_exit(self) -> None:
        """Ask the runtime to end the session (xrRequestExitSession); frames() ends after EXITING."""
        self._exit_requested = True
        if self.session is not None and self.lifecycle.running:
            try:
                xr.request_exit_session(self.session.handle)
                return
            except xr.XrException as exc:
                log.warning("xrRequestExitSession: %s", exc)
        self._save("exit requested")
        self.exit_reason = self.exit_reason or "exit_requested"
        self._done = True

    def haptic(self, hand: str, seconds: float = 0.1, amplitude: float = 0.5) -> None:
        """A vibration on ``hand``'s controller where the runtime and device support it."""
        if self.session is not None and self.session.input is not None:
            self.session.input.haptic(hand, seconds, amplitude)

    def __exit__(self, *exc) -> None:
        if self._frames_gen is not None:
            self._frames_gen.close()  # ends an open frame before the session goes
            self._frames_gen = None
        self._close_session()
        self._close_instance()
        self._stack.close()
