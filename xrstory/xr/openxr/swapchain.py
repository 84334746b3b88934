"""Per-eye swapchains (colour and depth) with their images wrapped as ModernGL framebuffers.

    with EyeSwapchains(session, ctx, sizes=[(w, h), (w, h)], depth=True) as chains:
        fbos = chains.acquire()      # one moderngl.Framebuffer per eye, colour + depth attached
        ...draw...
        chains.release()

The images are GL textures the runtime owns. ModernGL cannot attach a foreign depth texture
(``external_texture`` makes colour textures only), so each (colour image, depth image) pair gets a
plain GL framebuffer object, wrapped with ``ctx.detect_framebuffer``. Without a depth swapchain
each eye gets its own depth renderbuffer and no depth layer is submitted.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass, field

import moderngl
import xr
from OpenGL import GL

log = logging.getLogger("xrstory.xr.openxr")

GL_RGBA8, GL_SRGB8_ALPHA8 = 0x8058, 0x8C43
GL_DEPTH_COMPONENT16, GL_DEPTH_COMPONENT24, GL_DEPTH_COMPONENT32F = 0x81A5, 0x81A6, 0x8CAC
# Linear RGBA8 first: the renderer writes display-ready (gamma-encoded) colours, as headless does.
COLOR_FORMATS = (GL_RGBA8, GL_SRGB8_ALPHA8)
DEPTH_FORMATS = (GL_DEPTH_COMPONENT32F, GL_DEPTH_COMPONENT24, GL_DEPTH_COMPONENT16)


@dataclass
class EyeChain:
    size: tuple[int, int]  # (width, height) pixels
    color: object  # XrSwapchain
    color_images: list[int]  # GL texture names
    depth: object | None = None
    depth_images: list[int] = field(default_factory=list)
    own_depth: moderngl.Renderbuffer | None = None
    fbos: dict = field(default_factory=dict)  # (colour index, depth index) -> (GL fbo name, Framebuffer)
    acquired: tuple[int, int] | None = None


class EyeSwapchains:
    def __init__(self, session, ctx: moderngl.Context, sizes: list[tuple[int, int]], depth: bool = True):
        self.session = session
        self.ctx = ctx
        self.sizes = sizes
        self.want_depth = depth
        self.eyes: list[EyeChain] = []
        self.color_format = 0
        self.depth_format = 0
        self._stack = ExitStack()

    def __enter__(self) -> EyeSwapchains:
        formats = [int(f) for f in xr.enumerate_swapchain_formats(self.session)]
        self.color_format = next((f for f in COLOR_FORMATS if f in formats), 0)
        if not self.color_format:
            raise RuntimeError(f"the OpenXR runtime offers no RGBA8 swapchain format (offers {formats})")
        if self.want_depth:
            self.depth_format = next((f for f in DEPTH_FORMATS if f in formats), 0)
        try:
            for size in self.sizes:
                color = self._swapchain(size, self.color_format, xr.SwapchainUsageFlags.COLOR_ATTACHMENT_BIT
                                        | xr.SwapchainUsageFlags.SAMPLED_BIT)
                eye = EyeChain(size, color, _images(color))
                if self.depth_format:
                    eye.depth = self._swapchain(size, self.depth_format,
                                                xr.SwapchainUsageFlags.DEPTH_STENCIL_ATTACHMENT_BIT)
                    eye.depth_images = _images(eye.depth)
                else:
                    eye.own_depth = self.ctx.depth_renderbuffer(size)
                self.eyes.append(eye)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        log.info("swapchains: %s, colour 0x%x, depth %s", " + ".join(f"{w}x{h}" for w, h in self.sizes),
                 self.color_format, hex(self.depth_format) if self.depth_format else "ours (not submitted)")
        return self

    def _swapchain(self, size, fmt, usage):
        sc = xr.create_swapchain(self.session, xr.SwapchainCreateInfo(
            usage_flags=usage, format=fmt, sample_count=1, width=size[0], height=size[1],
            face_count=1, array_size=1, mip_count=1))
        self._stack.callback(_destroy_swapchain, sc)
        return sc

    @property
    def has_depth(self) -> bool:
        return bool(self.depth_format)

    def acquire(self) -> list[moderngl.Framebuffer]:
        """Acquire and wait for one colour (and depth) image per eye; their framebuffers, in eye order."""
        out = []
        for eye in self.eyes:
            ci = _acquire(eye.color)
            di = _acquire(eye.depth) if eye.depth is not None else 0
            eye.acquired = (ci, di)
            out.append(self._framebuffer(eye, ci, di))
        return out

    def release(self) -> None:
        for eye in self.eyes:
            if eye.acquired is None:
                continue
            eye.acquired = None
            xr.release_swapchain_image(eye.color, xr.SwapchainImageReleaseInfo())
            if eye.depth is not None:
                xr.release_swapchain_image(eye.depth, xr.SwapchainImageReleaseInfo())

    def _framebuffer(self, eye: EyeChain, ci: int, di: int) -> moderngl.Framebuffer:
        key = (ci, di)
        if key not in eye.fbos:
            fbo = int(GL.glGenFramebuffers(1))
            GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, fbo)
            GL.glFramebufferTexture2D(GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_TEXTURE_2D,
                                      eye.color_images[ci], 0)
            if eye.depth is not None:
                GL.glFramebufferTexture2D(GL.GL_FRAMEBUFFER, GL.GL_DEPTH_ATTACHMENT, GL.GL_TEXTURE_2D,
                                          eye.depth_images[di], 0)
            else:
                GL.glFramebufferRenderbuffer(GL.GL_FRAMEBUFFER, GL.GL_DEPTH_ATTACHMENT, GL.GL_RENDERBUFFER,
                                             eye.own_depth.glo)
            status = GL.glCheckFramebufferStatus(GL.GL_FRAMEBUFFER)
            GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, 0)
            if status != GL.GL_FRAMEBUFFER_COMPLETE:
                raise RuntimeError(f"swapchain framebuffer incomplete: status 0x{int(status):x} "
                                   f"(colour 0x{self.color_format:x}, depth 0x{self.depth_format:x})")
            eye.fbos[key] = (fbo, self.ctx.detect_framebuffer(fbo))
        return eye.fbos[key][1]

    def __exit__(self, *exc) -> None:
        for eye in self.eyes:
            for fbo, _ in eye.fbos.values():
                GL.glDeleteFramebuffers(1, [fbo])
            eye.fbos.clear()
            if eye.own_depth is not None:
                eye.own_depth.release()
        self.eyes = []
        self._stack.close()


def _images(swapchain) -> list[int]:
    return [int(img.image) for img in xr.enumerate_swapchain_images(swapchain, xr.SwapchainImageOpenGLKHR)]


def _acquire(swapchain) -> int:
    index = xr.acquire_swapchain_image(swapchain, xr.SwapchainImageAcquireInfo())
    xr.wait_swapchain_image(swapchain, xr.SwapchainImageWaitInfo(timeout=xr.INFINITE_DURATION))
    return int(index)


def _destroy_swapchain(sc) -> None:
    try:
        xr.destroy_swapchain(sc)
    except xr.XrException as exc:  # after a loss the runtime may refuse; the session takes it down
        log.debug("xrDestroySwapchain: %s", exc)
