"""The OpenXR display backend (pyopenxr): any conformant runtime, VR or AR overlay.

    from xrstory.xr.openxr import OpenXRConfig, OpenXRDisplay, OpenXRUnavailable

See display.py for the frame loop and docs/OPENXR.md for runtimes, headsets and CI (Monado).
Importing this package needs pyopenxr, moderngl and PyOpenGL, not torch.
"""

from xrstory.xr.openxr.config import OpenXRConfig
from xrstory.xr.openxr.display import OpenXRDisplay
from xrstory.xr.openxr.errors import InstanceLost, OpenXRUnavailable
from xrstory.xr.openxr.lifecycle import Lifecycle, SessionState

__all__ = ["InstanceLost", "Lifecycle", "OpenXRConfig", "OpenXRDisplay", "OpenXRUnavailable", "SessionState"]
