"""The benchmark's figures as a rich table in the terminal (``xrstory bench`` without --json)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from xrstory.bench.rows import summary_rows


def print_table(doc: dict, console: Console) -> None:
    m = doc["machine"]
    title = (f"xrstory bench ({doc['mode']}) — {m.get('cpu')}, {m.get('cores')} cores, "
             f"{m['gpu'] if m.get('gpu') else 'no GPU'}; load {m.get('load_avg_start')} -> "
             f"{m.get('load_avg_end')}; commit {doc.get('commit')}{' (dirty)' if doc.get('dirty') else ''}")
    t = Table(title=title, title_justify="left")
    for col, kw in (("figure", {}), ("value", {"justify": "right", "no_wrap": True}), ("spread", {}),
                    ("target", {"no_wrap": True}), ("meets", {"no_wrap": True})):
        t.add_column(col, **kw)
    section = None
    for r in summary_rows(doc):
        if r.section != section:
            if section is not None:
                t.add_section()
            t.add_row(f"[bold]{r.section}[/bold]", "", "", "", "")
            section = r.section
        meets = "" if r.meets is None else ("[green]yes[/green]" if r.meets else "[red]no[/red]")
        t.add_row("  " + r.figure.strip(), r.value, r.spread, r.target, meets)
    console.print(t)
    for name, p in doc["parts"].items():
        color = "green" if p.get("status") == "ok" else "red"
        extra = f" — {p['error'].splitlines()[0][:160]}" if p.get("error") else ""
        secs = f" in {p['seconds']:.0f} s" if p.get("seconds") is not None else ""
        console.print(f"  [{color}]{name}[/{color}]: {p.get('status')}{secs}{extra}", highlight=False)
