"""Remote replies are held to the local contract (issue 20, item 5).

On main: a reply naming 4 triggers kept them all (the schema allows 2); with two "say" keys the
first was spoken and the last committed; a lone "\\udc00" escape was accepted and broke the save
and the transcript; ``timeout_s`` was per read, so a trickling server held a 3 s turn for 18 s;
a barge-in waited for the server's next chunk.

The misbehaving servers here are small stand-ins written in the test (``_Hostile``): the point is
a server that breaks the contract (ignores the schema, trickles, stalls), which the real
``xrstory serve`` never does. Everything on the client side is the real ``RemoteMind``.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from helpers import lighthouse_fixture

from xrstory.mind.fallback import validate_reply
from xrstory.mind.remote import RemoteConfig, RemoteMind
from xrstory.mind.reply import Reply, Sentence
from xrstory.story import Story

scene = lighthouse_fixture()


def _chunk(content: str) -> bytes:
    payload = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
               "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}]}
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


class _Hostile(ThreadingHTTPServer):
    """Streams ``pieces`` as SSE chunks, ``gap_s`` apart, then stops (or stalls if ``stall``)."""

    daemon_threads = True

    def __init__(self, pieces: list[str], gap_s: float = 0.0, stall: bool = False):
        self.pieces, self.gap_s, self.stall = pieces, gap_s, stall
        self.gone = threading.Event()  # set when a write fails: the client dropped the connection

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(h):
                h.rfile.read(int(h.headers["Content-Length"]))
                h.send_response(200)
                h.send_header("Content-Type", "text/event-stream")
                h.send_header("Connection", "close")
                h.end_headers()
                try:
                    for p in self.pieces:
                        h.wfile.write(_chunk(p))
                        h.wfile.flush()
                        time.sleep(self.gap_s)
                    if self.stall:
                        for _ in range(200):  # a server that has gone quiet; probes the socket
                            time.sleep(0.05)
                            h.wfile.write(b": keep-alive\n\n")
                            h.wfile.flush()
                    h.wfile.write(b"data: [DONE]\n\n")
                except OSError:
                    self.gone.set()

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


@pytest.fixture
def hostile():
    servers = []

    def make(*a, **k):
        servers.append(_Hostile(*a, **k))
        return servers[-1]

    yield make
    for s in servers:
        s.shutdown()
        s.server_close()


def _turn(url, scene, story, timeout_s=3.0, should_stop=None, max_triggers=2):
    with RemoteMind(RemoteConfig(base_url=url, timeout_s=timeout_s, max_triggers=max_triggers), scene) as mind:
        return list(mind.respond(story, "maren", "Can you light the stove?", should_stop=should_stop))


def _reply(events) -> Reply:
    return next(e for e in events if isinstance(e, Reply))


def test_no_more_triggers_than_the_schema_allows(scene):
    maren = scene.character("maren")
    allowed = ["light_stove", "share_tea", "open_cellar"]
    text = json.dumps({"triggers": allowed + ["light_lamp"], "say": "Aye.", "emotion": "happy"})
    assert validate_reply(text, allowed, maren, max_triggers=2).triggers == ("light_stove", "share_tea")
    assert validate_reply(text, allowed, maren, max_triggers=0).triggers == ()


def test_duplicate_keys_and_lone_surrogates_end_in_the_fallback(scene):
    maren = scene.character("maren")
    dup = '{"triggers": [], "say": "Spoken.", "emotion": "neutral", "say": "Committed."}'
    reply = validate_reply(dup, [], maren)
    assert reply.fallback and "'say' twice" in reply.fallback_reason
    lone = '{"triggers": [], "say": "Broken \\udc00 text.", "emotion": "neutral"}'
    reply = validate_reply(lone, [], maren)
    assert reply.fallback and "surrogate" in reply.fallback_reason
    reply.say.encode("utf-8")  # what a save or transcript does with it


def test_a_schema_ignoring_server_is_capped_end_to_end(scene, hostile):
    story = Story(scene)
    allowed = story.allowed_triggers("maren")
    body = json.dumps({"triggers": [allowed[0]] * 4, "say": "Aye, I will. Done \udc00 now.",
                       "emotion": "happy"}, ensure_ascii=True)
    server = hostile([body[i:i + 7] for i in range(0, len(body), 7)])
    events = _turn(server.url, scene, story)
    reply = _reply(events)
    assert reply.fallback and "surrogate" in reply.fallback_reason and reply.triggers == ()
    for e in events:
        if isinstance(e, Sentence | Reply):
            (e.text if isinstance(e, Sentence) else e.say).encode("utf-8")  # no lone surrogate reached TTS


def test_a_trickling_server_cannot_hold_the_turn_past_its_deadline(scene, hostile):
    body = json.dumps({"triggers": [], "say": "Aye " * 60, "emotion": "happy"})
    server = hostile(list(body), gap_s=0.1)  # ~25 s in all, a chunk every 0.1 s: no read times out
    t0 = time.monotonic()
    reply = _reply(_turn(server.url, scene, Story(scene), timeout_s=1.5))
    took = time.monotonic() - t0
    assert reply.fallback and "TurnDeadline" in reply.fallback_reason
    assert took < 2.5, f"the turn took {took:.1f} s with a 1.5 s deadline"


def test_barge_in_cuts_a_silent_server_at_once(scene, hostile):
    server = hostile(['{"triggers": [], "say": "Aye'], stall=True)
    cut_at: list[float] = []

    def should_stop() -> bool:
        if not cut_at and time.monotonic() - t0 > 0.5:
            cut_at.append(time.monotonic())
        return bool(cut_at)

    t0 = time.monotonic()
    reply = _reply(_turn(server.url, scene, Story(scene), timeout_s=30, should_stop=should_stop))
    lag = time.monotonic() - cut_at[0]
    assert reply.fallback and reply.triggers == ()
    assert lag < 0.3, f"barge-in took {lag:.2f} s to end the turn"
    assert server.gone.wait(5), "the connection was not dropped after the barge-in"


def test_four_triggers_from_a_server_are_capped_at_the_schemas_max_items(scene, hostile):
    story = Story(scene)
    for trigger, by in [("light_stove", "maren"), ("open_cellar", "player"), ("fetch_oil", "tobias")]:
        assert story.apply(trigger, by=by).fired
    allowed = story.allowed_triggers("maren")
    assert len(allowed) == 2, allowed
    body = json.dumps({"triggers": allowed * 2, "say": "Aye.", "emotion": "happy"})
    server = hostile([body])
    reply = _reply(_turn(server.url, scene, story, max_triggers=1))  # maxItems 1
    assert reply.triggers == tuple(allowed[:1])
