"""The session's transcript: every event, as a dict with the scene time it happened at, kept in
order and handed to ``on_event`` (the terminal printer, a report) as it happens. Written to
``transcript.jsonl`` by the playthrough report."""

from __future__ import annotations

from collections.abc import Callable

from xrstory.runtime.events import Event


class Transcript:
    def __init__(self, scene_time: Callable[[], float], on_event: Callable[[Event, float], None] | None = None):
        self.events: list[dict] = []  # what is written out
        self.items: list[Event] = []  # the same events as objects (filter them with isinstance)
        self._scene_time = scene_time
        self._on_event = on_event or (lambda e, scene_time: None)

    def emit(self, event: Event) -> None:
        d = event.to_dict()
        d["scene_time"] = round(self._scene_time(), 3)
        self.events.append(d)
        self.items.append(event)
        self._on_event(event, d["scene_time"])
