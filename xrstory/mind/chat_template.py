"""Which chat template a model runs with: its GGUF metadata's, or one the user gives.

A GGUF model carries its template in ``tokenizer.chat_template`` (a Jinja template, as Hugging
Face tokenizers use). A base model usually has none (Gemma 3 270M base, for one): then the
user gives a template file with ``--chat-template FILE`` on ``ask`` / ``play`` (or
``ModelSpec.chat_template``), and without one the load stops with ``NoChatTemplateError``
naming the model file and how to give one. Templates that ship with xrstory live in
``assets/chat_templates/`` (``gemma.jinja``: Gemma's turn markup, system text folded into the
first user turn as Gemma's own template does).

Both engines use it: the torch loader sets ``tokenizer.chat_template``; the llama.cpp engine
passes the text as ``CommonParams.chat_template`` (with ``use_jinja``).
"""

from __future__ import annotations

from pathlib import Path

from xrstory.mind.errors import ModelLoadError, ModelNotFoundError
from xrstory.mind.gguf_file import read_gguf

GGUF_TEMPLATE_KEY = "tokenizer.chat_template"
TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "assets" / "chat_templates"
MAX_TEMPLATE_BYTES = 256 * 1024


class NoChatTemplateError(ModelLoadError):
    """The model has no chat template and none was given."""


def how_to_give_template() -> str:
    shipped = sorted(p.name for p in TEMPLATES_DIR.glob("*.jinja")) if TEMPLATES_DIR.is_dir() else []
    return ("give one with --chat-template FILE (a Jinja chat template, as in a Hugging Face "
            "tokenizer_config.json) or ModelSpec(chat_template=FILE)"
            + (f"; shipped templates: {', '.join(str(TEMPLATES_DIR / n) for n in shipped)}" if shipped else ""))


def gguf_chat_template(gguf: str | Path) -> str | None:
    """The template in a GGUF file's metadata, or None. Bad files raise ``GGUFFileError``."""
    value = read_gguf(gguf, check_data=False).metadata.get(GGUF_TEMPLATE_KEY)
    return value if isinstance(value, str) and value.strip() else None


def read_template_file(path: str | Path) -> str:
    """A template file's text, checked to be a non-empty UTF-8 Jinja template."""
    path = Path(path)
    if not path.is_file():
        raise ModelNotFoundError(f"chat template file not found: {path}")
    if path.stat().st_size > MAX_TEMPLATE_BYTES:
        raise ModelLoadError(f"chat template {path} is {path.stat().st_size:,} bytes; a template is at most "
                             f"{MAX_TEMPLATE_BYTES:,}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ModelLoadError(f"chat template {path} is not UTF-8 text ({exc})") from None
    if "{{" not in text and "{%" not in text:
        raise ModelLoadError(f"chat template {path} holds no Jinja markup ({{{{ ... }}}} or {{% ... %}}); "
                             f"it must render the messages, e.g. {{% for message in messages %}}...")
    try:
        from jinja2 import TemplateSyntaxError
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True).parse(text)
    except ImportError:  # jinja2 comes with transformers; without it llama.cpp still checks
        pass
    except TemplateSyntaxError as exc:
        raise ModelLoadError(f"chat template {path}: Jinja syntax error on line {exc.lineno}: {exc.message}") from None
    return text


def chat_template_for(model: str | Path, override: str | Path | None = None) -> str:
    """The template to run ``model`` (a .gguf file) with: ``override``'s file, else the GGUF's own."""
    if override is not None:
        return read_template_file(override)
    template = gguf_chat_template(model)
    if template is None:
        raise NoChatTemplateError(f"model {model} has no chat template (no '{GGUF_TEMPLATE_KEY}' in its GGUF "
                                  f"metadata; it is probably a base model, not an instruct model): "
                                  + how_to_give_template())
    return template
