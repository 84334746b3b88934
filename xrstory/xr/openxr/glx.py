"""A desktop OpenGL context (hidden GLFW window on X11) for XR_KHR_opengl_enable's Xlib binding.

Used on a desktop with a display when the runtime has no XR_MNDX_egl_enable (SteamVR, WiVRn,
Monado with a display). Not exercised in CI (no X server there): CI runs the EGL path.

    with GLXContext() as gl:
        binding = gl.xr_binding()     # xr.GraphicsBindingOpenGLXlibKHR
"""

from __future__ import annotations


class GLXContext:
    def __init__(self, major: int = 4, minor: int = 5):
        self.major, self.minor = major, minor
        self._window = None

    def __enter__(self) -> GLXContext:
        import glfw

        if not glfw.init():
            raise RuntimeError("GLFW could not initialise (no X display? set DISPLAY, or use graphics='egl')")
        glfw.window_hint(glfw.VISIBLE, glfw.FALSE)
        glfw.window_hint(glfw.DOUBLEBUFFER, glfw.FALSE)
        glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, self.major)
        glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, self.minor)
        glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
        self._window = glfw.create_window(1, 1, "xrstory", None, None)
        if not self._window:
            glfw.terminate()
            raise RuntimeError(f"could not create an OpenGL {self.major}.{self.minor} core context with GLFW")
        self.make_current()
        glfw.swap_interval(0)  # the runtime paces frames (xrWaitFrame), not the window
        return self

    def make_current(self) -> None:
        import glfw

        glfw.make_context_current(self._window)

    def xr_binding(self):
        import xr
        from OpenGL import GLX

        self.make_current()
        return xr.GraphicsBindingOpenGLXlibKHR(x_display=GLX.glXGetCurrentDisplay(),
                                               glx_drawable=GLX.glXGetCurrentDrawable(),
                                               glx_context=GLX.glXGetCurrentContext())

    def __exit__(self, *exc) -> None:
        import glfw

        if self._window is not None:
            glfw.destroy_window(self._window)
            glfw.terminate()
            self._window = None
