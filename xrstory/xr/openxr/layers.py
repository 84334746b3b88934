"""The projection layer (both eyes, with depth where the runtime takes it) submitted at xrEndFrame."""

from __future__ import annotations

import ctypes

import xr

from xrstory.xr.openxr.swapchain import EyeSwapchains


class ProjectionLayer:
    """Builds the ``XrCompositionLayerProjection`` of one frame; keeps the ctypes structs alive."""

    def __init__(self, chains: EyeSwapchains, space, near: float, far: float, blend_mode: str):
        self.chains = chains
        self.space = space
        self.near, self.far = near, far
        # AR: the runtime blends our alpha over the world, so tell it the alpha is meaningful.
        flags = xr.CompositionLayerFlags.NONE
        if blend_mode != "opaque":
            flags = (xr.CompositionLayerFlags.BLEND_TEXTURE_SOURCE_ALPHA_BIT
                     | xr.CompositionLayerFlags.UNPREMULTIPLIED_ALPHA_BIT)
        self.flags = flags
        self._keep: list = []

    def build(self, xr_views) -> ctypes.c_void_p:
        """A pointer to the layer for ``FrameEndInfo.layers`` (valid until the next build)."""
        self._keep = []
        views = []
        for eye, v in zip(self.chains.eyes, xr_views, strict=True):
            w, h = eye.size
            rect = xr.Rect2Di(offset=xr.Offset2Di(0, 0), extent=xr.Extent2Di(w, h))
            depth_info = None
            if eye.depth is not None:
                depth_info = xr.CompositionLayerDepthInfoKHR(
                    sub_image=xr.SwapchainSubImage(swapchain=eye.depth, image_rect=rect, image_array_index=0),
                    min_depth=0.0, max_depth=1.0, near_z=self.near, far_z=self.far)
                self._keep.append(depth_info)
            views.append(xr.CompositionLayerProjectionView(
                pose=v.pose, fov=v.fov,
                sub_image=xr.SwapchainSubImage(swapchain=eye.color, image_rect=rect, image_array_index=0),
                next=depth_info))
        layer = xr.CompositionLayerProjection(layer_flags=self.flags, space=self.space, views=views)
        self._keep.append(views)
        self._keep.append(layer)
        return ctypes.byref(layer)
