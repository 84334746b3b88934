"""Reference spaces (LOCAL, STAGE, VIEW) and conversion of OpenXR poses and views to ours.

``to_view(xr_view)`` gives the same ``xrstory.render.view.View`` the renderer takes in headless
mode (metres, +Y up, -Z forward, quaternion x, y, z, w, FOV angles in radians).
"""

from __future__ import annotations

import logging
from contextlib import ExitStack

import xr

from xrstory.render.view import Fov, Pose, View

log = logging.getLogger("xrstory.xr.openxr")

SPACE_TYPES = {
    "local": xr.ReferenceSpaceType.LOCAL,
    "stage": xr.ReferenceSpaceType.STAGE,
    "view": xr.ReferenceSpaceType.VIEW,
}


def to_pose(p) -> Pose:
    """``XrPosef`` -> Pose."""
    return Pose((float(p.position.x), float(p.position.y), float(p.position.z)),
                (float(p.orientation.x), float(p.orientation.y), float(p.orientation.z),
                 float(p.orientation.w)))


def to_view(v) -> View:
    """``XrView`` -> View."""
    f = v.fov
    return View(to_pose(v.pose), Fov(float(f.angle_left), float(f.angle_right), float(f.angle_up),
                                     float(f.angle_down)))


class ReferenceSpaces:
    """The app's world space (STAGE where the runtime has it, else LOCAL) and the VIEW (head) space."""

    def __init__(self, session, want: str = "stage"):
        self.session = session
        self.want = want
        self.world = None
        self.world_kind = ""
        self.view = None
        self._stack = ExitStack()

    def __enter__(self) -> ReferenceSpaces:
        available = {int(t) for t in xr.enumerate_reference_spaces(self.session)}
        kind = self.want
        if int(SPACE_TYPES[kind]) not in available:
            fallback = "local"
            log.warning("reference space %s not offered by the runtime; using %s", kind.upper(), fallback.upper())
            kind = fallback
        self.world = self._create(kind)
        self.world_kind = kind
        self.view = self._create("view")
        return self

    def _create(self, kind: str):
        space = xr.create_reference_space(self.session, xr.ReferenceSpaceCreateInfo(
            reference_space_type=SPACE_TYPES[kind], pose_in_reference_space=xr.Posef()))
        self._stack.callback(_destroy_space, space)
        return space

    def head(self, time) -> Pose | None:
        """The VIEW space located in the world space at ``time``, or None when not tracked."""
        loc = xr.locate_space(self.view, self.world, time)
        valid = xr.SpaceLocationFlags.POSITION_VALID_BIT | xr.SpaceLocationFlags.ORIENTATION_VALID_BIT
        if (int(loc.location_flags) & int(valid)) != int(valid):
            return None
        return to_pose(loc.pose)

    def __exit__(self, *exc) -> None:
        self._stack.close()


def _destroy_space(space) -> None:
    try:
        xr.destroy_space(space)
    except xr.XrException as exc:  # lost sessions may refuse; the handle is released with the session
        log.debug("xrDestroySpace: %s", exc)
