"""A display-less Mesa EGL OpenGL context for OpenXR's ``XR_MNDX_egl_enable`` binding.

Why ctypes on ``libEGL.so.1`` instead of PyOpenGL's EGL module: ``import xr`` switches
PyOpenGL to GLX mode, and its ``eglGetPlatformDisplay`` route gave EGL_BAD_DISPLAY here;
plain ``eglGetDisplay(EGL_DEFAULT_DISPLAY)`` with ``EGL_PLATFORM=surfaceless`` in the
environment works on Mesa (llvmpipe, no GPU, no X). The context is made current with no
surface; ModernGL then attaches with ``moderngl.create_context(require=330)``.

    with EGLContext() as egl:          # current on this thread
        binding = egl.xr_binding()     # xr.GraphicsBindingEGLMNDX for SessionCreateInfo.next
"""

from __future__ import annotations

import ctypes
import os
from ctypes import c_int32, c_void_p

EGL_DEFAULT_DISPLAY = c_void_p(0)
EGL_NO_CONTEXT = c_void_p(0)
EGL_NO_SURFACE = c_void_p(0)
EGL_NONE = 0x3038
EGL_RED_SIZE, EGL_GREEN_SIZE, EGL_BLUE_SIZE, EGL_ALPHA_SIZE = 0x3024, 0x3023, 0x3022, 0x3021
EGL_RENDERABLE_TYPE, EGL_OPENGL_BIT = 0x3040, 0x0008
EGL_SURFACE_TYPE, EGL_PBUFFER_BIT = 0x3033, 0x0001
EGL_OPENGL_API = 0x30A2
EGL_CONTEXT_MAJOR_VERSION, EGL_CONTEXT_MINOR_VERSION = 0x3098, 0x30FB
EGL_CONTEXT_OPENGL_PROFILE_MASK, EGL_CONTEXT_OPENGL_CORE_PROFILE_BIT = 0x30FD, 0x0001


class EGLError(RuntimeError):
    pass


def _load_egl() -> ctypes.CDLL:
    try:
        lib = ctypes.CDLL("libEGL.so.1")
    except OSError as exc:
        raise EGLError(f"libEGL.so.1 not found ({exc}); install libegl1 libegl-mesa0 libgl1-mesa-dri") from None
    lib.eglGetDisplay.restype = c_void_p
    lib.eglGetDisplay.argtypes = [c_void_p]
    lib.eglInitialize.argtypes = [c_void_p, ctypes.POINTER(c_int32), ctypes.POINTER(c_int32)]
    lib.eglChooseConfig.argtypes = [c_void_p, ctypes.POINTER(c_int32), ctypes.POINTER(c_void_p), c_int32,
                                    ctypes.POINTER(c_int32)]
    lib.eglBindAPI.argtypes = [ctypes.c_uint]
    lib.eglCreateContext.restype = c_void_p
    lib.eglCreateContext.argtypes = [c_void_p, c_void_p, c_void_p, ctypes.POINTER(c_int32)]
    lib.eglMakeCurrent.argtypes = [c_void_p, c_void_p, c_void_p, c_void_p]
    lib.eglDestroyContext.argtypes = [c_void_p, c_void_p]
    lib.eglTerminate.argtypes = [c_void_p]
    lib.eglGetError.restype = c_int32
    lib.eglGetProcAddress.restype = c_void_p
    lib.eglGetProcAddress.argtypes = [ctypes.c_char_p]
    return lib


def _attribs(*pairs: int):
    values = [*pairs, EGL_NONE]
    return (c_int32 * len(values))(*values)


class EGLContext:
    """An OpenGL 4.5 core (3.3 at least) context on the default EGL display, current while open."""

    def __init__(self, major: int = 4, minor: int = 5):
        self.major, self.minor = major, minor
        self.display = c_void_p(0)
        self.config = c_void_p(0)
        self.context = c_void_p(0)
        self._egl: ctypes.CDLL | None = None

    def _fail(self, what: str) -> EGLError:
        code = self._egl.eglGetError() if self._egl else 0
        hint = ""
        if os.environ.get("EGL_PLATFORM") != "surfaceless":
            hint = " (without a display, set EGL_PLATFORM=surfaceless)"
        return EGLError(f"{what} failed: EGL error 0x{code:04x}{hint}")

    def __enter__(self) -> EGLContext:
        egl = self._egl = _load_egl()
        self.display = c_void_p(egl.eglGetDisplay(EGL_DEFAULT_DISPLAY))
        if not self.display.value:
            raise self._fail("eglGetDisplay")
        major, minor = c_int32(), c_int32()
        if not egl.eglInitialize(self.display, ctypes.byref(major), ctypes.byref(minor)):
            raise self._fail("eglInitialize")
        cfg, count = c_void_p(), c_int32()
        # No surface, so no depth in the config: depth comes from the swapchains' own images.
        want = _attribs(EGL_RED_SIZE, 8, EGL_GREEN_SIZE, 8, EGL_BLUE_SIZE, 8, EGL_ALPHA_SIZE, 8,
                        EGL_RENDERABLE_TYPE, EGL_OPENGL_BIT, EGL_SURFACE_TYPE, EGL_PBUFFER_BIT)
        if not egl.eglChooseConfig(self.display, want, ctypes.byref(cfg), 1, ctypes.byref(count)) or count.value < 1:
            raise self._fail("eglChooseConfig (RGBA8, OpenGL)")
        self.config = cfg
        if not egl.eglBindAPI(EGL_OPENGL_API):
            raise self._fail("eglBindAPI(EGL_OPENGL_API)")
        for major_v, minor_v in ((self.major, self.minor), (3, 3)):  # 3.3 is ModernGL's floor
            ctx = egl.eglCreateContext(self.display, self.config, EGL_NO_CONTEXT, _attribs(
                EGL_CONTEXT_MAJOR_VERSION, major_v, EGL_CONTEXT_MINOR_VERSION, minor_v,
                EGL_CONTEXT_OPENGL_PROFILE_MASK, EGL_CONTEXT_OPENGL_CORE_PROFILE_BIT))
            if ctx:
                self.context = c_void_p(ctx)
                self.version = (major_v, minor_v)
                break
        else:
            raise self._fail("eglCreateContext (OpenGL 3.3+ core)")
        self.make_current()
        return self

    def make_current(self) -> None:
        """Make this context current on the calling thread (again: xrCreateSession switches contexts)."""
        if not self._egl.eglMakeCurrent(self.display, EGL_NO_SURFACE, EGL_NO_SURFACE, self.context):
            raise self._fail("eglMakeCurrent (surfaceless)")

    def xr_binding(self):
        """``xr.GraphicsBindingEGLMNDX`` for this context (keep it alive as long as the session)."""
        import xr

        # the address of eglGetProcAddress itself: the runtime looks up the rest of EGL through it
        proc = c_void_p.from_address(ctypes.addressof(self._egl.eglGetProcAddress)).value
        # pyopenxr types these fields with PyOpenGL's EGL pointer types when PyOpenGL has EGL
        types = dict(xr.GraphicsBindingEGLMNDX._fields_)
        return xr.GraphicsBindingEGLMNDX(
            get_proc_address=ctypes.cast(proc, xr.PFN_xrEglGetProcAddressMNDX),
            display=ctypes.cast(self.display, types["display"]),
            config=ctypes.cast(self.config, types["config"]),
            context=ctypes.cast(self.context, types["context"]))

    def __exit__(self, *exc) -> None:
        if self._egl is None:
            return
        if self.display.value:
            self._egl.eglMakeCurrent(self.display, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT)
            if self.context.value:
                self._egl.eglDestroyContext(self.display, self.context)
            self._egl.eglTerminate(self.display)
        self.context = c_void_p(0)
        self.display = c_void_p(0)
