"""Which environment blend mode to submit with: what the runtime supports, what the scene allows.

VR is OPAQUE. An AR overlay (asked for, and allowed by the scene) prefers ALPHA_BLEND (video
see-through), then ADDITIVE (optical see-through); with neither, OPAQUE (XR_FB_passthrough for
those runtimes is not done yet, see docs/OPENXR.md).
"""

from __future__ import annotations

import logging

from xrstory.xr.openxr.config import OpenXRConfig
from xrstory.xr.openxr.errors import OpenXRUnavailable

log = logging.getLogger("xrstory.xr.openxr")

AR_ORDER = ("alpha_blend", "additive", "opaque")
VR_ORDER = ("opaque", "alpha_blend", "additive")


def choose_blend_mode(supported: list[str], config: OpenXRConfig) -> str:
    """One of "opaque", "additive", "alpha_blend"; raises OpenXRUnavailable when none fits."""
    if not supported:
        raise OpenXRUnavailable("the OpenXR runtime reports no environment blend modes")
    if config.blend != "auto":
        if config.blend != "opaque" and not config.ar_allowed:
            log.warning("blend '%s' asked for but the scene does not allow AR; using opaque", config.blend)
            return choose_blend_mode(supported, OpenXRConfig(blend="auto", ar=False))
        if config.blend not in supported:
            raise OpenXRUnavailable(f"blend mode '{config.blend}' is not supported by this runtime "
                                    f"(it offers {', '.join(supported)})")
        return config.blend
    order = AR_ORDER if (config.ar and config.ar_allowed) else VR_ORDER
    if config.ar and not config.ar_allowed:
        log.warning("AR asked for but the scene does not allow it; using VR")
    return next(m for m in order if m in supported) if any(m in supported for m in order) else supported[0]


def clear_alpha(blend_mode: str) -> float:
    """Alpha of the clear colour: transparent for AR so the world shows through, opaque for VR."""
    return 1.0 if blend_mode == "opaque" else 0.0
