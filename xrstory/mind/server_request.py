"""What ``xrstory serve`` accepts: the body's length, its JSON and the chat request in it.

Every rule here turns a bad request into ``RequestError`` (HTTP status, message naming the
field, the field's path), never an exception of another kind: the server answers each with a
JSON error and keeps serving. Pure functions of bytes and headers, so the fuzz test
(tests/test_fuzz_request_body.py) runs them without a socket.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

MAX_BODY_BYTES = 1 << 20  # 1 MiB: a chat request with a long history is a few kB
MAX_JSON_DEPTH = 32  # a reply schema is 4 deep; deeper nesting is an attack on the parser
MAX_MESSAGES = 256


class RequestError(ValueError):
    def __init__(self, message: str, param: str | None = None, status: int = 400):
        super().__init__(message)
        self.param = param
        self.status = status


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


def body_length(headers, limit: int = MAX_BODY_BYTES) -> int:
    """The request's Content-Length, checked: absent (411), not a non-negative integer (400),
    over ``limit`` (413). Chunked bodies are refused (411): the length must be known up front."""
    if (headers.get("Transfer-Encoding") or "").strip():
        raise RequestError("Transfer-Encoding is not supported; send a Content-Length", "Content-Length", 411)
    raw = headers.get("Content-Length")
    if raw is None:
        raise RequestError("Content-Length is required", "Content-Length", 411)
    text = raw.strip()
    if not text.isdigit() or not text.isascii():  # "-1", "abc", "1e3", "+5", " " are all refused
        raise RequestError(f"Content-Length must be a non-negative integer, got {raw[:40]!r}", "Content-Length")
    if len(text) > 12 or int(text) > limit:
        raise RequestError(f"request body of {text[:20]} bytes exceeds the limit of {limit}", "Content-Length", 413)
    return int(text)


def _depth(value: object) -> int:
    """Nesting depth of parsed JSON, iteratively (no recursion limit to hit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, d = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, d)
            if d > MAX_JSON_DEPTH:
                return d
            stack += [(v, d + 1) for v in (item.values() if isinstance(item, dict) else item)]
    return deepest


def _reject_constant(name: str) -> float:
    raise RequestError(f"request body holds {name}, which is not JSON")


def parse_json_body(body: bytes) -> dict:
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise RequestError(f"request body is not UTF-8: {exc}") from None
    except RecursionError:
        raise RequestError(f"request body nests deeper than {MAX_JSON_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise RequestError(f"request body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise RequestError("request body must be a JSON object")
    if _depth(data) > MAX_JSON_DEPTH:
        raise RequestError(f"request body nests deeper than {MAX_JSON_DEPTH} levels")
    return data


def _number(data: dict, name: str, low: float, high: float) -> float:
    value = data.get(name)
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not low <= value <= high:
        raise RequestError(f"{name} must be between {low:g} and {high:g}, got {value!r}", name)
    return float(value)


def _schema(fmt: object) -> dict | None:
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        raise RequestError(f"response_format must be an object, got {type(fmt).__name__}", "response_format")
    kind = fmt.get("type", "text")
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict):
            raise RequestError("response_format.json_schema must be an object with a 'schema'",
                               "response_format.json_schema")
        schema = spec.get("schema")
        if not isinstance(schema, dict):
            raise RequestError("response_format.json_schema.schema must be an object",
                               "response_format.json_schema.schema")
        return schema
    if kind == "json_object":
        return {"type": "object"}
    if kind != "text":
        raise RequestError(f"response_format.type {str(kind)[:40]!r} is not one of text, json_object, json_schema",
                           "response_format.type")
    return None


def parse_request(body: bytes, *, default_max_tokens: int, max_tokens_limit: int) -> ChatRequest:
    """Validate a chat completions request body; every error names the field."""
    data = parse_json_body(body)
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty list", "messages")
    if len(messages) > MAX_MESSAGES:
        raise RequestError(f"'messages' holds {len(messages)} items, more than {MAX_MESSAGES}", "messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
            raise RequestError(f"messages[{i}].role must be system, user or assistant", f"messages[{i}].role")
        if not isinstance(m.get("content"), str):
            raise RequestError(f"messages[{i}].content must be a string", f"messages[{i}].content")
    schema = _schema(data.get("response_format"))
    max_tokens = data.get("max_completion_tokens", data.get("max_tokens"))
    if max_tokens is None:
        max_tokens = default_max_tokens
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise RequestError(f"max_tokens must be a positive integer, got {max_tokens!r}", "max_tokens")
    temperature = _number(data, "temperature", 0, 2)
    penalties = {name: _number(data, name, -2, 2) for name in ("frequency_penalty", "presence_penalty")}
    stream = data.get("stream", False)
    if not isinstance(stream, bool | None):
        raise RequestError(f"stream must be true or false, got {stream!r}", "stream")
    options = data.get("stream_options") or {}
    if not isinstance(options, dict):
        raise RequestError("stream_options must be an object", "stream_options")
    return ChatRequest(messages=messages, schema=schema, max_tokens=min(max_tokens, max_tokens_limit),
                       temperature=temperature, **penalties, stream=bool(stream),
                       include_usage=bool(options.get("include_usage")))
