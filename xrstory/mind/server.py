"""``xrstory serve``: an OpenAI-compatible chat completions server for the local model.

One GPU box can serve many players: clients (``RemoteMind``, or any OpenAI client) POST
``/v1/chat/completions`` with ``response_format={"type": "json_schema", ...}`` and get the
reply constrained to that schema by our own decoder (llguidance masks), streamed as
server-sent events when ``stream`` is true. Also ``GET /v1/models`` and ``GET /health``.

Fit to face a LAN (each limit a ``ServerConfig`` field; tests/test_server_*.py):
- at most ``max_connections`` connections are handled at once (one thread each); one more is
  answered 503 at once; the listen backlog is ``backlog``;
- every request is read against a per-read timeout and an overall deadline (a client that
  sends half a request is dropped), its body must carry a valid Content-Length within
  ``server_request.MAX_BODY_BYTES``; one request per connection;
- generation is serialised (one model, one KV cache): up to ``max_queued`` requests wait,
  the next gets 429; a request waits and generates for at most ``request_timeout_s``; a client
  that goes away is noticed between tokens and its generation stops;
- the prompt is counted against the model's context: too long is a 400 with the numbers;
- with ``api_key`` set, requests need ``Authorization: Bearer <key>`` (401 otherwise);
- every bad request is a 4xx JSON error naming the field, never a dropped connection.

Emulating misbehaving servers (to exercise clients' fallbacks, see tests/test_mind_remote.py):
``ServerConfig.ignore_schema`` decodes freely whatever the request asks, and
``ServerConfig.force_schema`` constrains every reply to a schema of the server's choosing.

Run it:  .venv/bin/python -m xrstory.cli serve --port 8000   (then RemoteConfig(base_url="http://127.0.0.1:8000/v1"))
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Protocol

from xrstory.mind.server_config import ServerConfig
from xrstory.mind.server_guard import (
    Cancelled,
    Deadlines,
    GenerationQueue,
    QueueFull,
    client_gone,
    drain,
    refuse_busy,
)
from xrstory.mind.server_request import (
    MAX_BODY_BYTES,  # noqa: F401  (re-exported)
    ChatRequest,
    RequestError,
    body_length,
    parse_request,
)

log = logging.getLogger("xrstory.mind.server")


class JsonEngine(Protocol):
    """What the server needs of a decoding engine (``server_engine.LocalJsonEngine`` fits).

    ``on_token`` may raise (``server_guard.Cancelled`` when the client has gone or the deadline
    passed): the engine must let it propagate, which stops the generation. ``count_prompt_tokens``
    lets the server check a prompt against the context first.
    """

    def generate_json(self, messages: list[dict], schema: dict | None, max_tokens: int,
                      on_token: Callable[[str], None], temperature: float = 0.0,
                      frequency_penalty: float = 0.0, presence_penalty: float = 0.0): ...


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def setup(self):
        self.timeout = self.server.config.read_timeout_s  # per read/write (StreamRequestHandler)
        super().setup()
        self.server.deadlines.watch(self.connection, self.server.config.read_deadline_s)

    def finish(self):
        self.server.deadlines.forget(self.connection)
        try:
            super().finish()
            drain(self.connection)
        except OSError:  # the client has gone; nothing left to flush to
            pass

    def handle(self):
        self.close_connection = True
        try:
            self.handle_one_request()  # one request per connection: the read deadline covers it all
        except OSError as exc:  # timeouts, resets, the deadline's shutdown: the client is gone
            log.info("connection from %s dropped: %s", self.address_string(), exc)

    def log_message(self, fmt, *args):  # route the stdlib's access log to logging
        log.debug("%s " + fmt, self.address_string(), *args)

    def send_error(self, code, message=None, explain=None):
        # the stdlib's own errors (bad request line, headers too long) as JSON too
        self._error(code, message or explain or "bad request")

    def _json(self, status: int, payload: dict, headers: dict | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str, param: str | None = None, headers: dict | None = None) -> None:
        kind = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
                429: "rate_limit_error"}.get(status, "invalid_request_error" if status < 500 else "server_error")
        self._json(status, {"error": {"message": message, "type": kind, "param": param, "code": None}}, headers)

    def _authorised(self) -> bool:
        key = self.server.config.api_key
        if key is None:
            return True
        given = self.headers.get("Authorization") or ""
        if hmac.compare_digest(given.encode(), f"Bearer {key}".encode()):
            return True
        self._error(401, "missing or wrong API key (send 'Authorization: Bearer <key>')",
                    headers={"WWW-Authenticate": "Bearer"})
        return False

    def do_GET(self):
        self.server.deadlines.forget(self.connection)
        if self.path.rstrip("/") == "/health":
            self._json(200, {"status": "ok"})
        elif not self._authorised():
            return
        elif self.path.rstrip("/") in ("/v1/models", "/models"):
            self._json(200, {"object": "list", "data": [
                {"id": self.server.config.model_name, "object": "model", "owned_by": "xrstory", "created": 0}]})
        else:
            self._error(404, f"no route GET {self.path[:200]}")

    def do_POST(self):
        cfg = self.server.config
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._error(404, f"no route POST {self.path[:200]} (only /v1/chat/completions)")
            return
        if not self._authorised():
            return
        try:
            body = self.rfile.read(body_length(self.headers))
            self.server.deadlines.forget(self.connection)  # read in full: the reply's clock starts
            req = parse_request(body, default_max_tokens=cfg.default_max_tokens,
                                max_tokens_limit=cfg.max_tokens_limit)
            if cfg.ignore_schema:
                req.schema = None
            elif cfg.force_schema is not None:
                req.schema = cfg.force_schema
            self.server.check_context(req)
        except RequestError as exc:
            self._error(exc.status, str(exc), exc.param)
            return
        cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        deadline = time.monotonic() + cfg.request_timeout_s
        try:
            if req.stream:
                self._stream(req, cid, deadline)
            else:
                self._complete(req, cid, deadline)
        except QueueFull as exc:
            self._error(429, str(exc), headers={"Retry-After": "1"})
        except Cancelled as exc:
            log.info("request %s stopped: %s", cid, exc)
            if not exc.client_gone and not getattr(self, "_started", False):
                self._error(503, str(exc), headers={"Retry-After": "1"})

    def _generate(self, req: ChatRequest, on_token: Callable[[str], None], deadline: float):
        """The one engine call, in the queue, stopped between tokens if the client goes or the
        deadline passes."""
        def gone() -> bool:
            return client_gone(self.connection)

        def guarded(text: str) -> None:
            Cancelled.check(gone, deadline)
            on_token(text)

        with self.server.queue.turn(gone, deadline):
            return self.server.engine.generate_json(req.messages, req.schema, req.max_tokens, guarded,
                                                    req.temperature, req.frequency_penalty, req.presence_penalty)

    def _complete(self, req: ChatRequest, cid: str, deadline: float) -> None:
        from xrstory.mind.server_engine import SchemaError

        try:
            gen = self._generate(req, lambda _t: None, deadline)
        except SchemaError as exc:
            self._error(400, str(exc), "response_format")
            return
        except (QueueFull, Cancelled):
            raise
        except Exception as exc:  # the engine failed: tell the client, keep serving others
            log.exception("generation failed (%s)", cid)
            self._error(500, f"generation failed: {type(exc).__name__}: {exc}")
            return
        self._json(200, {
            "id": cid, "object": "chat.completion", "created": int(time.time()),
            "model": self.server.config.model_name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": gen.text},
                         "finish_reason": gen.finish_reason}],
            "usage": _usage(gen)})

    def _stream(self, req: ChatRequest, cid: str, deadline: float) -> None:
        from xrstory.mind.server_engine import SchemaError

        created, model = int(time.time()), self.server.config.model_name
        self._started = False

        def event(delta: dict, finish: str | None = None) -> None:
            if not self._started:  # headers only once we know the request is good
                self._started = True
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
            chunk = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            self._sse(chunk)

        try:
            # compile the schema before answering 200, so a bad schema is a clean 400
            compile_schema = getattr(self.server.engine, "matcher", None)
            if req.schema is not None and compile_schema is not None:
                compile_schema(req.schema)
            gen = self._generate(req, lambda text: event({"role": "assistant", "content": text}
                                                         if not self._started else {"content": text}),
                                 deadline)
            if not self._started:
                event({"role": "assistant", "content": ""})
            event({}, gen.finish_reason)
            if req.include_usage:
                self._sse({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                           "choices": [], "usage": _usage(gen)})
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except SchemaError as exc:
            if not self._started:
                self._error(400, str(exc), "response_format")
        except (QueueFull, Cancelled):
            raise
        except OSError as exc:  # the client went away mid-stream (broken pipe, reset, timeout)
            log.info("client went away during a streamed reply (%s): %s", cid, exc)
        except Exception as exc:  # the engine failed mid-stream: a 500 if nothing was sent yet
            log.exception("generation failed (%s)", cid)
            if not self._started:
                self._error(500, f"generation failed: {type(exc).__name__}: {exc}")

    def _sse(self, payload: dict) -> None:
        self.wfile.write(b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n")
        self.wfile.flush()


def _usage(gen) -> dict:
    return {"prompt_tokens": gen.prompt_tokens, "completion_tokens": gen.completion_tokens,
            "total_tokens": gen.prompt_tokens + gen.completion_tokens}


class _Server(HTTPServer):
    """One thread per connection, at most ``max_connections`` of them (the 503 beyond)."""

    def __init__(self, config: ServerConfig, engine: JsonEngine):
        self.config = config
        self.engine = engine
        self.queue = GenerationQueue(config.max_queued)
        self.deadlines = Deadlines()
        self.request_queue_size = config.backlog  # read by server_activate's listen()
        self._slots = threading.BoundedSemaphore(config.max_connections)
        self._count_lock = threading.Lock()  # tokenizers are not safe to share between threads
        self.stats = {"connections": 0, "refused_busy": 0, "peak_connections": 0}
        self._active = 0
        self._stats_lock = threading.Lock()
        super().__init__((config.host, config.port), _Handler)

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            self.stats["refused_busy"] += 1
            refuse_busy(request)
            self.shutdown_request(request)
            return
        with self._stats_lock:
            self._active += 1
            self.stats["connections"] += 1
            self.stats["peak_connections"] = max(self.stats["peak_connections"], self._active)
        threading.Thread(target=self._work, args=(request, client_address), daemon=True,
                         name="xrstory-serve-conn").start()

    def _work(self, request, client_address) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            with self._stats_lock:
                self._active -= 1
            self._slots.release()

    def handle_error(self, request, client_address) -> None:
        log.exception("unexpected error serving %s", client_address)

    def check_context(self, req: ChatRequest) -> None:
        """400 with the numbers if prompt + max_tokens cannot fit the model's context."""
        limit = self.config.context_tokens
        if limit is None:
            return
        count = getattr(self.engine, "count_prompt_tokens", None)
        if count is None:
            return
        with self._count_lock:
            n = count(req.messages)
        if n + req.max_tokens > limit:
            raise RequestError(f"prompt of {n} tokens plus max_tokens {req.max_tokens} exceeds the model's "
                               f"context of {limit} tokens", "messages")

    def server_close(self) -> None:
        self.deadlines.close()
        super().server_close()


class ServedModel:
    """A running server (context manager): ``with ServedModel(engine, ServerConfig(port=0)) as s:``
    starts it in a background thread; ``s.base_url`` is what clients use; leaving stops it."""

    def __init__(self, engine: JsonEngine, config: ServerConfig | None = None):
        self.config = config or ServerConfig()
        self._server = _Server(self.config, engine)
        self._thread = threading.Thread(target=self._server.serve_forever, name="xrstory-serve", daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self.config.host}:{self.port}/v1"

    @property
    def stats(self) -> dict:
        """Connections handled and refused, their peak, the queue's peak, read deadlines hit."""
        srv = self._server
        return {**srv.stats, "peak_queued": srv.queue.peak_waiting, "read_deadlines_hit": srv.deadlines.expired}

    def __enter__(self) -> ServedModel:
        self._thread.start()
        log.info("serving %s at %s", self.config.model_name, self.base_url)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for a serve loop, so only if one runs
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (the CLI's way)."""
        log.info("serving %s at %s", self.config.model_name, self.base_url)
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()
