"""``xrstory serve``: an OpenAI-compatible chat completions server for the local model.

One GPU box can serve many players: clients (``RemoteMind``, or any OpenAI client) POST
``/v1/chat/completions`` with ``response_format={"type": "json_schema", ...}`` and get the
reply constrained to that schema by our own decoder (llguidance masks), streamed as
server-sent events when ``stream`` is true. Also ``GET /v1/models`` and ``GET /health``.

Built on the standard library's ``ThreadingHTTPServer``: connections are handled in threads,
generation is serialised by a lock (one model, one KV cache), so requests queue rather than
fail. Bad requests get HTTP 400 with an OpenAI-style error naming the field.

Emulating misbehaving servers (to exercise clients' fallbacks, see tests/test_mind_remote.py):
``ServerConfig.ignore_schema`` decodes freely whatever the request asks, and
``ServerConfig.force_schema`` constrains every reply to a schema of the server's choosing.

Run it:  .venv/bin/xrstory serve --port 8000      (then RemoteConfig(base_url="http://127.0.0.1:8000/v1"))
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

log = logging.getLogger("xrstory.mind.server")

MAX_BODY_BYTES = 1 << 20  # 1 MiB: a chat request with a long history is a few kB


class JsonEngine(Protocol):
    """What the server needs of a decoding engine (``server_engine.LocalJsonEngine`` fits)."""

    def generate_json(self, messages: list[dict], schema: dict | None, max_tokens: int,
                      on_token: Callable[[str], None], temperature: float = 0.0,
                      frequency_penalty: float = 0.0, presence_penalty: float = 0.0): ...


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"  # loopback by default; bind a LAN address only on a trusted network
    port: int = 8000  # 0: any free port (tests), read it back from ``ServedModel.port``
    model_name: str = "xrstory"
    max_tokens_limit: int = 512  # cap on a request's max_tokens
    default_max_tokens: int = 160
    ignore_schema: bool = False  # emulate a server without structured output: decode freely
    force_schema: dict | None = None  # emulate a server that ignores the request's schema


class RequestError(ValueError):
    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


@dataclass
class ChatRequest:
    messages: list[dict]
    schema: dict | None
    max_tokens: int
    temperature: float
    frequency_penalty: float
    presence_penalty: float
    stream: bool
    include_usage: bool


def parse_request(body: bytes, config: ServerConfig) -> ChatRequest:
    """Validate a chat completions request body; errors name the field."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestError(f"request body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise RequestError("request body must be a JSON object")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty list", "messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
            raise RequestError(f"messages[{i}].role must be system, user or assistant", f"messages[{i}].role")
        if not isinstance(m.get("content"), str):
            raise RequestError(f"messages[{i}].content must be a string", f"messages[{i}].content")
    schema: dict | None = None
    fmt = data.get("response_format") or {"type": "text"}
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            raise RequestError("response_format.json_schema.schema must be an object",
                               "response_format.json_schema.schema")
    elif kind == "json_object":
        schema = {"type": "object"}
    elif kind != "text":
        raise RequestError(f"response_format.type {kind!r} is not one of text, json_object, json_schema",
                           "response_format.type")
    max_tokens = data.get("max_completion_tokens", data.get("max_tokens")) or config.default_max_tokens
    if not isinstance(max_tokens, int) or max_tokens < 1:
        raise RequestError(f"max_tokens must be a positive integer, got {max_tokens!r}", "max_tokens")
    temperature = data.get("temperature", 0.0)
    if temperature is None:
        temperature = 0.0
    if not isinstance(temperature, int | float) or not 0 <= temperature <= 2:
        raise RequestError(f"temperature must be between 0 and 2, got {temperature!r}", "temperature")
    penalties = {}
    for name in ("frequency_penalty", "presence_penalty"):
        value = data.get(name) or 0.0
        if not isinstance(value, int | float) or not -2 <= value <= 2:
            raise RequestError(f"{name} must be between -2 and 2, got {value!r}", name)
        penalties[name] = float(value)
    if config.ignore_schema:
        schema = None
    elif config.force_schema is not None:
        schema = config.force_schema
    options = data.get("stream_options") or {}
    return ChatRequest(messages=messages, schema=schema, max_tokens=min(max_tokens, config.max_tokens_limit),
                       temperature=float(temperature), **penalties, stream=bool(data.get("stream", False)),
                       include_usage=bool(isinstance(options, dict) and options.get("include_usage")))


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # route the stdlib's access log to logging
        log.debug("%s " + fmt, self.address_string(), *args)

    def _json(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str, param: str | None = None) -> None:
        self._json(status, {"error": {"message": message, "type": "invalid_request_error"
                                      if status == 400 else "server_error", "param": param, "code": None}})

    def do_GET(self):
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            self._json(200, {"object": "list", "data": [
                {"id": self.server.config.model_name, "object": "model", "owned_by": "xrstory", "created": 0}]})
        elif self.path.rstrip("/") == "/health":
            self._json(200, {"status": "ok"})
        else:
            self._error(404, f"no route GET {self.path}")

    def do_POST(self):
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._error(404, f"no route POST {self.path} (only /v1/chat/completions)")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._error(413, f"request body of {length} bytes exceeds {MAX_BODY_BYTES}")
            return
        try:
            req = parse_request(self.rfile.read(length), self.server.config)
        except RequestError as exc:
            self._error(400, str(exc), exc.param)
            return
        cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        if req.stream:
            self._stream(req, cid)
        else:
            self._complete(req, cid)

    def _generate(self, req: ChatRequest, on_token: Callable[[str], None]):
        with self.server.lock:  # one generation at a time on the one model
            return self.server.engine.generate_json(req.messages, req.schema, req.max_tokens, on_token,
                                                    req.temperature, req.frequency_penalty, req.presence_penalty)

    def _complete(self, req: ChatRequest, cid: str) -> None:
        from xrstory.mind.server_engine import SchemaError

        try:
            gen = self._generate(req, lambda _t: None)
        except SchemaError as exc:
            self._error(400, str(exc), "response_format")
            return
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

    def _stream(self, req: ChatRequest, cid: str) -> None:
        from xrstory.mind.server_engine import SchemaError

        created, model = int(time.time()), self.server.config.model_name
        started = False

        def event(delta: dict, finish: str | None = None) -> None:
            nonlocal started
            if not started:  # headers only once we know the request is good
                started = True
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
            event({"role": "assistant", "content": ""})
            gen = self._generate(req, lambda text: event({"content": text}))
            event({}, gen.finish_reason)
            if req.include_usage:
                self._sse({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                           "choices": [], "usage": _usage(gen)})
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except SchemaError as exc:
            if not started:
                self._error(400, str(exc), "response_format")
        except (BrokenPipeError, ConnectionResetError):
            log.info("client went away during a streamed reply (%s)", cid)  # the lock is released
        except Exception as exc:  # the engine failed mid-stream: a 500 if nothing was sent yet
            log.exception("generation failed (%s)", cid)
            if not started:
                self._error(500, f"generation failed: {type(exc).__name__}: {exc}")
        self.close_connection = True

    def _sse(self, payload: dict) -> None:
        self.wfile.write(b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n")
        self.wfile.flush()


def _usage(gen) -> dict:
    return {"prompt_tokens": gen.prompt_tokens, "completion_tokens": gen.completion_tokens,
            "total_tokens": gen.prompt_tokens + gen.completion_tokens}


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a hung client never keeps the process alive

    def __init__(self, config: ServerConfig, engine: JsonEngine):
        self.config = config
        self.engine = engine
        self.lock = threading.Lock()
        super().__init__((config.host, config.port), _Handler)


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
