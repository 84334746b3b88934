"""``xrstory serve``: load the local model and serve it as an OpenAI-compatible endpoint.

Heavy imports (torch, transformers) happen inside the command, so registering it in
``xrstory.cli`` costs nothing for the other commands.

  xrstory serve                                  # default model on 127.0.0.1:8000
  xrstory serve --model path/to/model.gguf --adapter assets/adapters/lighthouse --port 9000
  xrstory serve --ignore-schema                  # behave like a server without structured output
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer


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
    ignore_schema: Annotated[bool, typer.Option(help="decode freely, ignoring response_format "
                                                     "(for testing clients)")] = False,
    force_schema: Annotated[Path | None, typer.Option(help="JSON Schema file used for every request "
                                                           "instead of the client's")] = None,
):
    """Serve the local model with structured output at /v1/chat/completions (OpenAI-compatible)."""
    from xrstory.mind.engine import EngineError, EngineSpec, choose_engine, load_engine
    from xrstory.mind.loader import ModelLoadError
    from xrstory.mind.server import ServedModel, ServerConfig
    from xrstory.mind.server_engine import LocalJsonEngine

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if device not in ("auto", "cpu", "cuda"):
        raise typer.BadParameter(f"--device must be auto, cpu or cuda, not {device!r}")
    forced = None
    if force_schema is not None:
        try:
            forced = json.loads(force_schema.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise typer.BadParameter(f"--force-schema {force_schema}: {exc}") from None
    config = ServerConfig(host=host, port=port, model_name=name, ignore_schema=ignore_schema,
                          force_schema=forced)
    try:
        name_, why = choose_engine(engine, model=model)
        if name_ == "remote":
            raise ValueError("--engine remote: xrstory serve serves a local model")
        loaded = load_engine(EngineSpec(engine=name_, model=model, adapter=adapter, threads=threads, device=device))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    except (FileNotFoundError, ModelLoadError, EngineError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(3) from None
    with loaded:
        json_engine = LocalJsonEngine(loaded)
        typer.echo(f"loaded {loaded.source} on engine {name_} ({why}) in {loaded.load_ms:.0f} ms; "
                   f"warm-up {json_engine.warm_up_ms:.0f} ms")
        served = ServedModel(json_engine, config)
        typer.echo(f"serving at {served.base_url} (Ctrl-C to stop)", err=True)
        try:
            served.serve_forever()
        except KeyboardInterrupt:
            typer.echo("stopped", err=True)
