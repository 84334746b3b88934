"""Errors of loading a model or an adapter, shared by the loader, the GGUF readers and the engines.

Each message names the file (or id) and what is wrong with it; commands print it and exit 2.
``loader.py`` re-exports these, so ``from xrstory.mind.loader import ModelLoadError`` keeps working.
"""

from __future__ import annotations


class ModelLoadError(RuntimeError):
    """The model could not be loaded; the message says which file or id, and why."""


class AdapterMismatchError(ModelLoadError):
    """The LoRA adapter was trained for another base model (missing modules or wrong shapes)."""


class ModelNotFoundError(ModelLoadError, FileNotFoundError):
    """A model file, model folder or adapter folder does not exist (also a FileNotFoundError)."""
