"""Load GLSL programs by name from ``shaders/`` (``NAME.vert`` + ``NAME.frag``, GLSL 330 core).

A line ``#include "FILE"`` pastes ``shaders/FILE`` in (shared lighting code); ``#line``
directives around it keep the driver's line numbers those of the including file.

A compile or link error is raised as ``ShaderError`` naming the shader file and line, e.g.
``shaders/scene.frag:42: error: 'foo' undeclared``, whatever the driver's own format.

EGL context and print the result.
"""

from __future__ import annotations

import re
from pathlib import Path

DEFAULT_SHADERS_DIR = Path(__file__).resolve().parents[2] / "shaders"

# Mesa: "0:12(3): error: ..."; NVIDIA: "0(12) : error ..."; AMD/Intel: "ERROR: 0:12: ..."
_LINE_PATTERNS = [re.compile(r"^\s*(?:ERROR:\s*)?\d+:(\d+)(?:\(\d+\))?:?\s*(.*)$"),
                  re.compile(r"^\s*\d+\((\d+)\)\s*:\s*(.*)$")]


class ShaderError(RuntimeError):
    """A shader that failed to load, compile or link; ``.file`` and ``.line`` say where."""

    def __init__(self, message: str, file: Path | None = None, line: int | None = None):
        super().__init__(message)
        self.file, self.line = file, line


def _locate(driver_message: str, files: dict[str, Path]) -> tuple[Path | None, int | None, str]:
    """Rewrite a driver's error log so each line names the shader file and line."""
    stage = "fragment" if "fragment" in driver_message.lower()[:200] else "vertex"
    path = files.get(stage)
    first_file, first_line, out = None, None, []
    for raw in driver_message.splitlines():
        for pat in _LINE_PATTERNS:
            m = pat.match(raw)
            if m:
                line = int(m.group(1))
                out.append(f"{path}:{line}: {m.group(2).strip()}")
                if first_line is None:
                    first_file, first_line = path, line
                break
        else:
            if raw.strip() and not set(raw.strip()) <= {"="} and raw.strip() not in (
                    "vertex_shader", "fragment_shader", "GLSL Compiler failed"):
                out.append(raw.strip())
    return first_file, first_line, "\n".join(out)


_INCLUDE = re.compile(r'^\s*#include\s+"([^"]+)"\s*$')


def _expand(path: Path) -> str:
    out = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        m = _INCLUDE.match(line)
        if m:
            inc = path.parent / m.group(1)
            if not inc.is_file():
                raise ShaderError(f"{path}:{n}: included file '{m.group(1)}' not found", path, n)
            out += [inc.read_text(), f"#line {n + 1}"]
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def _define(source: str, defines: dict[str, int] | None) -> str:
    """``#define NAME VALUE`` lines after the ``#version`` line; ``#line 2`` keeps the driver's
    line numbers those of the file."""
    if not defines:
        return source
    first, _, rest = source.partition("\n")
    lines = "".join(f"#define {k} {int(v)}\n" for k, v in defines.items())
    return f"{first}\n{lines}#line 2\n{rest}"


def load_program(ctx, name: str, shaders_dir: str | Path | None = None, fragment: str | None = None,
                 defines: dict[str, int] | None = None):
    """Compile ``shaders_dir/NAME.vert`` and ``NAME.frag`` (or ``FRAGMENT.frag``) into a
    ``moderngl.Program``; ``defines``: preprocessor constants both stages see (compile-time
    choices: llvmpipe runs both sides of a branch on a uniform)."""
    import moderngl

    folder = Path(shaders_dir) if shaders_dir else DEFAULT_SHADERS_DIR
    files = {"vertex": folder / f"{name}.vert", "fragment": folder / f"{fragment or name}.frag"}
    for stage, path in files.items():
        if not path.is_file():
            raise ShaderError(f"{path}: {stage} shader '{name}' not found in {folder}", path)
    sources = {stage: _define(_expand(path), defines) for stage, path in files.items()}
    try:
        return ctx.program(vertex_shader=sources["vertex"], fragment_shader=sources["fragment"])
    except moderngl.Error as exc:
        text = str(exc)
        # moderngl names the failing stage in its message; keep only that stage's file
        lowered = text.lower()
        if "fragment_shader" in lowered or "fragment shader" in lowered:
            files = {"fragment": files["fragment"]}
            files["vertex"] = files["fragment"]
        elif "vertex_shader" in lowered or "vertex shader" in lowered:
            files = {"vertex": files["vertex"], "fragment": files["vertex"]}
        file, line, located = _locate(text, files)
        if line is None:  # a link error has no line: name both files
            raise ShaderError(f"{files['vertex']} + {files['fragment']}: {text.strip()}", None) from None
        raise ShaderError(located, file, line) from None


def available(shaders_dir: str | Path | None = None) -> list[str]:
    folder = Path(shaders_dir) if shaders_dir else DEFAULT_SHADERS_DIR
    return sorted(p.stem for p in folder.glob("*.vert") if (folder / f"{p.stem}.frag").is_file())
