"""One OpenXR session and what hangs on it: graphics binding, reference spaces, swapchains,
the projection layer and the input actions. Destroyed and recreated as a unit after a loss.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack

import xr

from xrstory.render.view import Pose, View
from xrstory.xr.openxr.config import OpenXRConfig
from xrstory.xr.openxr.instance import STEREO, OwnsXrHandle, XrInstance
from xrstory.xr.openxr.layers import ProjectionLayer
from xrstory.xr.openxr.spaces import ReferenceSpaces, to_pose, to_view
from xrstory.xr.openxr.swapchain import EyeSwapchains

log = logging.getLogger("xrstory.xr.openxr")
VIEW_VALID = xr.ViewStateFlags.POSITION_VALID_BIT | xr.ViewStateFlags.ORIENTATION_VALID_BIT


class XrSession(OwnsXrHandle):
    def __init__(self, instance: XrInstance, config: OpenXRConfig, gl, ctx, blend_mode: str):
        self.instance = instance
        self.config = config
        self.gl = gl  # EGLContext / GLXContext, or None for a headless session
        self.ctx = ctx
        self.blend_mode = blend_mode
        self.handle = None
        self.spaces: ReferenceSpaces | None = None
        self.chains: EyeSwapchains | None = None
        self.layer: ProjectionLayer | None = None
        self.input = None
        self._binding = None  # kept alive as long as the session
        self._stack = ExitStack()

    def _create(self) -> None:
        self._binding = self.gl.xr_binding() if self.gl is not None else None
        self.handle = xr.create_session(self.instance.handle, xr.SessionCreateInfo(
            next=self._binding, system_id=self.instance.system_id))
        self._stack.callback(self._destroy)
        if self.gl is not None:
            self.gl.make_current()  # Monado switches GL contexts inside xrCreateSession
        self.spaces = self._stack.enter_context(ReferenceSpaces(self.handle, self.config.reference_space))
        if self.gl is not None:
            self.chains = self._stack.enter_context(EyeSwapchains(
                self.handle, self.ctx, self.instance.view_sizes,
                depth=self.config.depth_layer and self.instance.has("XR_KHR_composition_layer_depth")))
            self.layer = ProjectionLayer(self.chains, self.spaces.world, self.config.near, self.config.far,
                                         self.blend_mode)
        if self.config.input and not self.config.headless:
            from xrstory.xr.openxr.input import XrInput

            self.input = self._stack.enter_context(XrInput(self.instance.handle, self.handle, self.spaces))

    def begin(self) -> None:
        xr.begin_session(self.handle, xr.SessionBeginInfo(primary_view_configuration_type=STEREO))

    def end(self) -> None:
        xr.end_session(self.handle)

    def locate(self, display_time) -> tuple[list[View], list, Pose]:
        """Eye views in the world space at ``display_time``: (our Views, XrViews for the layer, head)."""
        state, xr_views = xr.locate_views(self.handle, xr.ViewLocateInfo(
            view_configuration_type=STEREO, display_time=display_time, space=self.spaces.world))
        if (int(state.view_state_flags) & int(VIEW_VALID)) != int(VIEW_VALID):
            return [], [], Pose()  # not tracked: nothing sensible to draw this frame
        head = self.spaces.head(display_time) or to_pose(xr_views[0].pose)
        return [to_view(v) for v in xr_views], list(xr_views), head

    def _destroy(self) -> None:
        self._destroy_handle(xr.destroy_session, "xrDestroySession")

    def __exit__(self, *exc) -> None:
        self._stack.close()
        if self.gl is not None:
            try:
                self.gl.make_current()  # the runtime may have switched contexts while tearing down
            except Exception as e:  # teardown: report and go on
                log.debug("make_current after session teardown: %s", e)
