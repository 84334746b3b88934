"""Prints a session's conversation to the terminal as it happens (rich)."""

from __future__ import annotations

from rich.console import Console


class ConversationPrinter:
    def __init__(self, scene, console: Console | None = None):
        self.console = console or Console()
        self.names = {c.id: c.name for c in scene.characters}
        self.names["player"] = "Player"

    def __call__(self, e: dict) -> None:
        kind = e["event"]
        t = f"[dim]{e.get('scene_time', 0):7.2f}s[/dim]"
        c = self.console
        if kind == "PlayerHeard":
            c.print(f"{t} [bold cyan]Player[/bold cyan] → {self.names.get(e['addressed'], e['addressed'])}: "
                    f"{e['text']}", highlight=False)
        elif kind == "PlayerPressed":
            c.print(f"{t} [bold cyan]Player[/bold cyan] presses the {e['target']}", highlight=False)
        elif kind == "ReplyDone":
            extra = f" [yellow](fallback: {e.get('fallback_reason') or 'no reason'})[/yellow]" if e.get("fallback") else ""
            c.print(f"{t} [bold magenta]{self.names.get(e['character'], e['character'])}[/bold magenta] "
                    f"[dim]({e['emotion']})[/dim]: {e['say']}{extra}", highlight=False)
        elif kind == "TriggerFired":
            c.print(f"{t}   [green]✓ {e['trigger']}[/green] by {e['by']} → beat {e['beat_after']}", highlight=False)
        elif kind == "TriggerRefused":
            c.print(f"{t}   [red]✗ {e['trigger']}[/red] by {e['by']}: {e['reason']}", highlight=False)
        elif kind == "LineStopped" and e.get("interrupted"):
            c.print(f"{t}   [yellow]… {self.names.get(e['character'], e['character'])} interrupted after "
                    f"{e['words_spoken']} words[/yellow]", highlight=False)
        elif kind == "StoryEnded":
            c.print(f"{t} [bold green]THE END[/bold green]: {e['text']}", highlight=False)
        elif kind == "ExpectationFailed":
            c.print(f"{t} [bold red]expectation failed[/bold red] line {e['line']}: {e['text']}\n"
                    f"         expected: {e['expected']}\n         actual:   {e['actual']}", highlight=False)
        elif kind == "WorkerFailed":
            c.print(f"{t} [bold red]{e['worker']} worker failed[/bold red]: {e['error']}", highlight=False)
