"""The OpenXR instance, system and view configuration: what the runtime offers and what we enable.

    with XrInstance(config) as inst:
        inst.system_name            # "Monado: Simulated HMD"
        inst.view_sizes             # [(w, h), (w, h)] recommended per eye, pixels
        inst.blend_modes            # ["opaque", ...] the runtime supports for stereo

Extensions: XR_KHR_opengl_enable (always, unless headless), XR_MNDX_egl_enable where offered
(a display-less EGL context), XR_MND_headless when asked, XR_KHR_composition_layer_depth when
present. A missing runtime or headset raises ``OpenXRUnavailable``
with a message that suggests ``--display headless``.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Self

import xr

from xrstory.xr.openxr.config import OpenXRConfig
from xrstory.xr.openxr.errors import OpenXRUnavailable

log = logging.getLogger("xrstory.xr.openxr")

KHR_OPENGL = "XR_KHR_opengl_enable"
MNDX_EGL = "XR_MNDX_egl_enable"
MND_HEADLESS = "XR_MND_headless"
KHR_DEPTH = "XR_KHR_composition_layer_depth"

BLEND_NAMES = {
    xr.EnvironmentBlendMode.OPAQUE: "opaque",
    xr.EnvironmentBlendMode.ADDITIVE: "additive",
    xr.EnvironmentBlendMode.ALPHA_BLEND: "alpha_blend",
}
STEREO = xr.ViewConfigurationType.PRIMARY_STEREO


def available_extensions() -> set[str]:
    try:
        props = xr.enumerate_instance_extension_properties()
    except xr.XrException as exc:
        raise OpenXRUnavailable("no OpenXR runtime is installed or active", _describe(exc)) from None
    return {p.extension_name.decode() if isinstance(p.extension_name, bytes) else str(p.extension_name)
            for p in props}


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}".strip().rstrip(":")


class OwnsXrHandle(ABC):
    """Base of the context managers that own one OpenXR handle (``XrInstance``, ``XrSession``).

    ``__enter__`` builds with ``_create``; when that fails part way it runs ``__exit__`` before
    re-raising, because Python does not call ``__exit__`` for an ``__enter__`` that raised and
    the handles made so far would leak. ``_destroy_handle`` is the common end of a handle: a
    lost runtime may refuse the destroy call, and the handle is gone either way.
    """

    handle = None

    @abstractmethod
    def _create(self) -> None:
        """Create the handle (and anything it needs) into ``self``."""

    @abstractmethod
    def __exit__(self, *exc) -> None:
        """Destroy what ``_create`` made, in reverse order; safe after a partial ``_create``."""

    def __enter__(self) -> Self:
        try:
            self._create()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _destroy_handle(self, destroy: Callable[[object], object], call_name: str) -> None:
        """``destroy(self.handle)`` once; a refusal is logged under ``call_name`` (e.g. xrDestroySession)."""
        if self.handle is None:
            return
        try:
            destroy(self.handle)
        except xr.XrException as exc:
            log.warning("%s: %s", call_name, _describe(exc))
        self.handle = None


def choose_extensions(available: set[str], config: OpenXRConfig) -> list[str]:
    """The instance extensions to enable for ``config`` from what the runtime ``available`` offers."""
    want: list[str] = []
    if config.headless:
        if MND_HEADLESS not in available:
            raise OpenXRUnavailable("the OpenXR runtime has no XR_MND_headless (asked for a headless session)")
        want.append(MND_HEADLESS)
        return want
    if KHR_OPENGL not in available:
        raise OpenXRUnavailable("the OpenXR runtime does not support OpenGL (XR_KHR_opengl_enable)")
    want.append(KHR_OPENGL)
    if config.graphics == "egl" and MNDX_EGL not in available:
        raise OpenXRUnavailable("the OpenXR runtime has no XR_MNDX_egl_enable (graphics='egl')")
    if config.graphics in ("egl", "auto") and MNDX_EGL in available:
        want.append(MNDX_EGL)
    if KHR_DEPTH in available:
        want.append(KHR_DEPTH)
    # XR_FB_passthrough is not enabled yet: no passthrough layer is built (docs/OPENXR.md, "Not yet").
    return want


class XrInstance(OwnsXrHandle):
    """Owns the ``XrInstance``; finds the HMD system and its stereo view configuration."""

    def __init__(self, config: OpenXRConfig):
        self.config = config
        self.handle = None
        self.extensions: list[str] = []
        self.system_id = None
        self.runtime_name = ""
        self.system_name = ""
        self.view_sizes: list[tuple[int, int]] = []  # recommended (width, height) per view, pixels
        self.max_sizes: list[tuple[int, int]] = []
        self.blend_modes: list[str] = []

    def _create(self) -> None:
        self.extensions = choose_extensions(available_extensions(), self.config)
        info = xr.InstanceCreateInfo(
            application_info=xr.ApplicationInfo(application_name=self.config.app_name, application_version=1,
                                                engine_name="xrstory", engine_version=1,
                                                api_version=xr.XR_API_VERSION_1_0),
            enabled_extension_names=self.extensions)
        try:
            self.handle = xr.create_instance(info)
        except xr.XrException as exc:
            raise OpenXRUnavailable("could not start the OpenXR runtime; is its service running "
                                    "(monado-service, SteamVR, WiVRn)?", _describe(exc)) from None
        props = xr.get_instance_properties(self.handle)
        self.runtime_name = props.runtime_name.decode() if isinstance(props.runtime_name, bytes) else str(
            props.runtime_name)
        self.find_system()
        log.info("OpenXR runtime %s, system '%s', extensions %s", self.runtime_name, self.system_name,
                 ", ".join(self.extensions))

    def find_system(self) -> None:
        """Look up the HMD (again after a session loss); raises OpenXRUnavailable without one."""
        try:
            self.system_id = xr.get_system(self.handle, xr.SystemGetInfo(
                form_factor=xr.FormFactor.HEAD_MOUNTED_DISPLAY))
        except xr.FormFactorUnavailableError:
            raise OpenXRUnavailable("the OpenXR runtime is running but no headset is connected") from None
        except xr.FormFactorUnsupportedError:
            raise OpenXRUnavailable("the OpenXR runtime does not drive head-mounted displays") from None
        sp = xr.get_system_properties(self.handle, self.system_id)
        self.system_name = sp.system_name.decode() if isinstance(sp.system_name, bytes) else str(sp.system_name)
        if self.config.headless:
            return
        views = xr.enumerate_view_configuration_views(self.handle, self.system_id, STEREO)
        scale = self.config.resolution_scale
        self.max_sizes = [(v.max_image_rect_width, v.max_image_rect_height) for v in views]
        self.view_sizes = [(min(int(v.recommended_image_rect_width * scale), v.max_image_rect_width),
                            min(int(v.recommended_image_rect_height * scale), v.max_image_rect_height))
                           for v in views]
        modes = xr.enumerate_environment_blend_modes(self.handle, self.system_id, STEREO)
        self.blend_modes = [BLEND_NAMES[xr.EnvironmentBlendMode(int(m))] for m in modes
                            if xr.EnvironmentBlendMode(int(m)) in BLEND_NAMES]

    def has(self, extension: str) -> bool:
        return extension in self.extensions

    def __exit__(self, *exc) -> None:
        self._destroy_handle(xr.destroy_instance, "xrDestroyInstance")
