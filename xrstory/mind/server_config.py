"""``xrstory serve``'s settings: where it listens, what a request may ask, and the limits that
keep it standing on a LAN (connections, queue, deadlines, the context)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"  # loopback by default; bind a LAN address only with an api_key
    port: int = 8000  # 0: any free port (tests), read it back from ``ServedModel.port``
    model_name: str = "xrstory"
    max_tokens_limit: int = 512  # cap on a request's max_tokens
    default_max_tokens: int = 160
    ignore_schema: bool = False  # emulate a server without structured output: decode freely
    force_schema: dict | None = None  # emulate a server that ignores the request's schema
    api_key: str | None = None  # when set, "Authorization: Bearer <api_key>" is required
    context_tokens: int | None = None  # the model's context: prompt + max_tokens must fit (None: unchecked)
    max_connections: int = 32  # handled at once; one more is refused with 503
    max_queued: int = 8  # requests waiting for the model; one more is refused with 429
    backlog: int = 128  # the listen queue of not yet accepted connections
    read_timeout_s: float = 10.0  # per socket read or write
    read_deadline_s: float = 20.0  # headers and body of one request, in all
    request_timeout_s: float = 120.0  # waiting in the queue plus generating

    def __post_init__(self):
        for name in ("max_connections", "max_queued", "backlog", "max_tokens_limit", "default_max_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"ServerConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("read_timeout_s", "read_deadline_s", "request_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ServerConfig.{name} must be > 0, got {getattr(self, name)}")
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError("ServerConfig.api_key must not be empty (None for no key)")
