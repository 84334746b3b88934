#!/usr/bin/env bash
# Run the whole test suite, installing everything first when needed (scripts/setup.sh).
# Extra arguments go to pytest, e.g. scripts/test.sh -k story
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec .venv/bin/python -m pytest "$@"
