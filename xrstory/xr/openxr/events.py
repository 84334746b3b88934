"""Draining OpenXR's event queue into plain tuples the display acts on.

    for kind, value in poll_events(instance):   # ("state", "READY"), ("instance_loss", t), ...
"""

from __future__ import annotations

import ctypes

import xr

STATE_NAMES = {int(s): s.name for s in xr.SessionState}


def poll_events(instance) -> list[tuple[str, object]]:
    """All pending events as (kind, value): kind is "state" (value: the state's name, e.g.
    "FOCUSED"), "instance_loss" (value: loss time, XrTime ns), "profile" (interaction profile
    changed), "lost_events" (value: count the runtime dropped) or "other" (value: type name)."""
    out: list[tuple[str, object]] = []
    while True:
        try:
            buf = xr.poll_event(instance)
        except xr.EventUnavailable:
            return out
        t = xr.StructureType(buf.type)
        if t == xr.StructureType.EVENT_DATA_SESSION_STATE_CHANGED:
            ev = ctypes.cast(ctypes.byref(buf), ctypes.POINTER(xr.EventDataSessionStateChanged)).contents
            out.append(("state", STATE_NAMES.get(int(ev.state), str(int(ev.state)))))
        elif t == xr.StructureType.EVENT_DATA_INSTANCE_LOSS_PENDING:
            ev = ctypes.cast(ctypes.byref(buf), ctypes.POINTER(xr.EventDataInstanceLossPending)).contents
            out.append(("instance_loss", int(ev.loss_time)))
        elif t == xr.StructureType.EVENT_DATA_INTERACTION_PROFILE_CHANGED:
            out.append(("profile", None))
        elif t == xr.StructureType.EVENT_DATA_EVENTS_LOST:
            ev = ctypes.cast(ctypes.byref(buf), ctypes.POINTER(xr.EventDataEventsLost)).contents
            out.append(("lost_events", int(ev.lost_event_count)))
        else:
            out.append(("other", t.name))
