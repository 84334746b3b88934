"""``xrstory serve``: load the local model and serve it as an OpenAI-compatible endpoint.

Heavy imports (torch, transformers) happen inside the command, so registering it in
``xrstory.cli`` costs nothing for the other commands. A model or adapter that cannot be
loaded, a port that cannot be bound, or a bad option ends with a one-line error and exit 2.

  xrstory serve                                  # default model on 127.0.0.1:8000
  xrstory serve --model path/to/model.gguf --adapter assets/adapters/lighthouse --port 9000
  XRSTORY_API_KEY=secret xrstory serve --host 0.0.0.0   # on a LAN: clients send the key
  xrstory serve --ignore-schema                  # behave like a server without structured output
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer


def _fail(message: str) -> typer.Exit:
    typer.echo(f"xrstory serve: {message}", err=True)
    return typer.Exit(2)


def serve_command(
    host: Annotated[str, typer.Option(help="address to bind (loopback unless the network is trusted)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port (0: any free port)")] = 8000,
    model: Annotated[str | None, typer.Option(help="Hugging Face id or folder, or a .gguf file "
                                                   "(default: SmolLM2-135M-Instruct)")] = None,
    adapter: Annotated[Path | None, typer.Option(help="LoRA adapter folder (PEFT)")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda (torch engine)")] = "auto",
    engine: Annotated[str, typer.Option("--engine", help="auto (torch with CUDA, llama.cpp on a CPU), "
                                                         "llamacpp or torch")] = "auto",
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="engine CPU threads")] = None,
    name: Annotated[str, typer.Option(help="model name reported to clients")] = "xrstory",
    api_key: Annotated[str | None, typer.Option(envvar="XRSTORY_API_KEY",
                                                help="require 'Authorization: Bearer KEY' (env XRSTORY_API_KEY)")] = None,
    max_connections: Annotated[int, typer.Option(min=1, help="connections handled at once (503 beyond)")] = 32,
    max_queued: Annotated[int, typer.Option(min=1, help="requests waiting for the model (429 beyond)")] = 8,
    request_timeout: Annotated[float, typer.Option(min=0.1, help="seconds a request may wait and generate")] = 120.0,
    ignore_schema: Annotated[bool, typer.Option(help="decode freely, ignoring response_format "
                                                     "(for testing clients)")] = False,
    force_schema: Annotated[Path | None, typer.Option(help="JSON Schema file used for every request "
                                                           "instead of the client's")] = None,
):
    """Serve the local model with structured output at /v1/chat/completions (OpenAI-compatible)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if device not in ("auto", "cpu", "cuda"):
        raise _fail(f"--device must be auto, cpu or cuda, not {device!r}")
    if api_key is not None and not api_key.strip():
        raise _fail("--api-key (or XRSTORY_API_KEY) is empty")
    if host not in ("127.0.0.1", "localhost", "::1") and api_key is None:
        typer.echo(f"warning: serving on {host} without --api-key: anyone on the network can use the model",
                   err=True)
    forced = None
    if force_schema is not None:
        try:
            forced = json.loads(force_schema.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _fail(f"--force-schema {force_schema}: {exc}") from None
        if not isinstance(forced, dict):
            raise _fail(f"--force-schema {force_schema}: a JSON Schema must be an object")
    # heavy imports (torch) only once the options are known to be good
    from xrstory.mind.engine import EngineSpec, choose_engine, load_engine
    from xrstory.mind.server import ServedModel, ServerConfig
    from xrstory.mind.server_engine import LocalJsonEngine

    try:
        name_, why = choose_engine(engine, model=model)
        if name_ == "remote":
            raise _fail("--engine remote: xrstory serve serves a local model")
        loaded = load_engine(EngineSpec(engine=name_, model=model, adapter=adapter, threads=threads, device=device))
    except typer.Exit:
        raise
    except Exception as exc:  # broad on purpose: any load failure is the user's model, adapter or engine
        raise _fail(f"cannot load the model ({model or 'default'}"
                    f"{f', adapter {adapter}' if adapter else ''}) on engine {engine}: "
                    f"{type(exc).__name__}: {exc}") from None
    with loaded:
        try:
            json_engine = LocalJsonEngine(loaded)
        except Exception as exc:
            raise _fail(f"cannot warm up the decoding engine for {loaded.source}: {type(exc).__name__}: {exc}") from None
        context = json_engine.context_tokens
        config = ServerConfig(host=host, port=port, model_name=name, ignore_schema=ignore_schema,
                              force_schema=forced, api_key=api_key, context_tokens=context,
                              max_connections=max_connections, max_queued=max_queued,
                              request_timeout_s=request_timeout)
        typer.echo(f"loaded {loaded.source} on engine {name_} ({why}) in {loaded.load_ms:.0f} ms; "
                   f"warm-up {json_engine.warm_up_ms:.0f} ms; context {context} tokens")
        try:
            served = ServedModel(json_engine, config)
        except OSError as exc:
            raise _fail(f"cannot listen on {host}:{port}: {exc}") from None
        typer.echo(f"serving at {served.base_url} (Ctrl-C to stop)", err=True)
        try:
            served.serve_forever()
        except KeyboardInterrupt:
            typer.echo("stopped", err=True)
