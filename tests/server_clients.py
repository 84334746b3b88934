"""Raw HTTP clients for the server tests: exact bytes on a socket, so a test can send what no
well-behaved client library would (negative lengths, half a request, a hang-up mid-reply)."""

from __future__ import annotations

import json
import socket


def request_bytes(body: bytes | str, path: str = "/v1/chat/completions", headers: dict | None = None,
                  length: str | None = "auto") -> bytes:
    body = body.encode() if isinstance(body, str) else body
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    if length == "auto":
        lines.append(f"Content-Length: {len(body)}")
    elif length is not None:
        lines.append(f"Content-Length: {length}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chat_body(content: str = "Say hi.", max_tokens: int = 8, stream: bool = False, **extra) -> str:
    return json.dumps({"model": "xrstory", "messages": [{"role": "user", "content": content}],
                       "max_tokens": max_tokens, "stream": stream, **extra})


def exchange(port: int, data: bytes, timeout: float = 30.0, shut_write: bool = False) -> tuple[int, dict | str]:
    """Send ``data``, read the whole response; (status, JSON body or SSE text)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if shut_write:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            part = sock.recv(65536)
            if not part:
                break
            chunks.append(part)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    if not head:
        raise ConnectionError("the server closed the connection without a response")
    status = int(head.split(b" ", 2)[1])
    text = body.decode("utf-8", "replace")
    if b"application/json" in head:
        return status, json.loads(text)
    return status, text
