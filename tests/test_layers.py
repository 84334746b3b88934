"""The rooms show the architecture: the layer table in docs/ARCHITECTURE.md matches the imports
(every import of ours, at module level or inside a function), every package is in the table,
no library module has a ``__main__`` block, and nothing dispatches on class names in strings."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "xrstory"
TOP = ("cli", "bench")


def layer_table() -> dict[str, set[str]]:
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    text = text.split("## Layers", 1)[1].split("\n## ", 1)[0]  # the section with the table
    table: dict[str, set[str]] = {}
    for line in text.splitlines():
        m = re.match(r"\| `(\w+)` \|[^|]*\| (.*) \|$", line)
        if m:
            allowed = m.group(2)
            table[m.group(1)] = set() if allowed.strip() == "nothing of ours" else set(re.findall(r"`(\w+)`", allowed))
    return table


def layer_of(path: Path) -> str:
    return path.relative_to(PKG).parts[0].removesuffix(".py")


def our_imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
        for name in names:
            if name.startswith("xrstory."):
                yield node.lineno, name.split(".")[1]


def modules() -> list[Path]:
    return [p for p in sorted(PKG.rglob("*.py")) if p.parent != PKG or p.name not in ("__init__.py", "__main__.py")]


def test_the_table_names_every_layer():
    table = layer_table()
    layers = {layer_of(p) for p in modules()}
    assert layers == set(table), f"in the code, not the table: {layers - set(table)}; " \
                                 f"in the table, not the code: {set(table) - layers}"
    for layer, allowed in table.items():
        assert allowed <= set(table), f"{layer} may import unknown layers {allowed - set(table)}"


def test_no_layer_imports_one_it_may_not():
    table = layer_table()
    wrong = [f"{p.relative_to(ROOT)}:{line} imports xrstory.{target} ({layer} may import "
             f"{', '.join(sorted(table[layer])) or 'nothing of ours'})"
             for p in modules() for layer in [layer_of(p)] for line, target in our_imports(p)
             if target != layer and target not in table[layer]]
    assert not wrong, "\n".join(wrong)


def test_lower_layers_never_reach_the_top():
    table = layer_table()
    for layer, allowed in table.items():
        if layer not in TOP:
            assert not allowed & set(TOP), f"{layer} may import {allowed & set(TOP)}"


def test_no_main_blocks_in_library_modules():
    found = [str(p.relative_to(ROOT)) for p in modules()
             if layer_of(p) not in TOP and re.search(r"^if __name__ == .__main__.:", p.read_text(), re.M)]
    assert not found, found


def test_no_dispatch_on_class_names_in_strings():
    pattern = re.compile(r"""(type\([^)]*\)\.__name__|\.__class__\.__name__)\s*(==|!=|in\b)|"""
                         r"""(==|!=)\s*type\([^)]*\)\.__name__|kind = type\(\w+\)\.__name__""")
    found = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}" for p in modules()
             for n, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not found, "\n".join(found)
