"""Prints a session's conversation to the terminal as it happens (rich): the session's
transcript calls it with each event and the scene time it happened at."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console

from xrstory.runtime import events as ev


@dataclass(frozen=True)
class ExpectationFailed(ev.Event):
    """A playthrough expectation did not hold (the runner adds it to the transcript)."""

    line: int
    text: str
    expected: str
    actual: str


class ConversationPrinter:
    def __init__(self, scene, console: Console | None = None):
        self.console = console or Console()
        self.names = {c.id: c.name for c in scene.characters}
        self.names["player"] = "Player"

    def name(self, character: str) -> str:
        return self.names.get(character, character)

    def __call__(self, e: ev.Event, scene_time: float = 0.0) -> None:
        t = f"[dim]{scene_time:7.2f}s[/dim]"
        say = self.console.print
        match e:
            case ev.PlayerHeard():
                say(f"{t} [bold cyan]Player[/bold cyan] → {self.name(e.addressed)}: {e.text}", highlight=False)
            case ev.PlayerPressed():
                say(f"{t} [bold cyan]Player[/bold cyan] presses the {e.target}", highlight=False)
            case ev.ReplyDone():
                extra = f" [yellow](fallback: {e.fallback_reason or 'no reason'})[/yellow]" if e.fallback else ""
                say(f"{t} [bold magenta]{self.name(e.character)}[/bold magenta] [dim]({e.emotion})[/dim]: "
                    f"{e.say}{extra}", highlight=False)
            case ev.TriggerFired():
                say(f"{t}   [green]✓ {e.trigger}[/green] by {e.by} → beat {e.beat_after}", highlight=False)
            case ev.TriggerRefused():
                say(f"{t}   [red]✗ {e.trigger}[/red] by {e.by}: {e.reason}", highlight=False)
            case ev.LineStopped(interrupted=True):
                say(f"{t}   [yellow]… {self.name(e.character)} interrupted after {e.words_spoken} words[/yellow]",
                    highlight=False)
            case ev.StoryEnded():
                say(f"{t} [bold green]THE END[/bold green]: {e.text}", highlight=False)
            case ExpectationFailed():
                say(f"{t} [bold red]expectation failed[/bold red] line {e.line}: {e.text}\n"
                    f"         expected: {e.expected}\n         actual:   {e.actual}", highlight=False)
            case ev.WorkerFailed():
                say(f"{t} [bold red]{e.worker} worker failed[/bold red]: {e.error}", highlight=False)
