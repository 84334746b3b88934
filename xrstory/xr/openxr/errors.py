"""Errors of the OpenXR backend, with messages a player can act on."""

from __future__ import annotations

HEADLESS_HINT = "run with --display headless to play without a headset"


class OpenXRUnavailable(RuntimeError):
    """No OpenXR runtime, no headset, or a runtime without what we need. The message says what
    was missing and suggests --display headless."""

    def __init__(self, what: str, detail: str = ""):
        self.what = what
        self.detail = detail
        msg = what + (f" ({detail})" if detail else "") + f"; {HEADLESS_HINT}"
        super().__init__(msg)


class InstanceLost(RuntimeError):
    """The runtime went away (crashed, was killed, or lost the instance)."""
