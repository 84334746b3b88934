"""Options ``xrstory play`` and ``xrstory run`` read the same way: the eye size and the decoding
engine (said once, with the reason, before the models load). Bad values exit 2 with the value named."""

from __future__ import annotations

import typer
from rich.console import Console


def eye_size_of(text: str, err: Console) -> tuple[int, int]:
    """'640x480' -> (640, 480); anything else exits 2 naming the value."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        err.print(f"[red]error[/red] --eye-size must be WxH, got '{text}'")
        raise typer.Exit(2) from None
    if w <= 0 or h <= 0:
        err.print(f"[red]error[/red] --eye-size must be positive, got '{text}'")
        raise typer.Exit(2)
    return w, h


def say_engine(engine: str, scene, base: str | None, remote: str | None, adapter: str | None,
               console: Console, err: Console) -> str:
    """Which decoding engine the session will use and why (printed); a bad ``--engine`` exits 2."""
    from xrstory.mind.engine import choose_engine
    from xrstory.runtime.components import resolve_adapter

    try:
        name, why = choose_engine(engine, model=base, remote_url=remote, adapter=resolve_adapter(scene, adapter))
    except ValueError as exc:
        err.print(f"[red]error[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    console.print(f"decoding engine: {name} ({why})", highlight=False)
    return name
