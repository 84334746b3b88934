#!/usr/bin/env bash
# The main job: set up when needed, then run the demo scene's headless playthrough with the
# default offline models, printing the conversation and writing a report.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/xrstory validate scenes/lighthouse
# The full arc of the demo story, spoken: TTS -> VAD -> Whisper -> model -> TTS -> mixer -> story -> render.
exec .venv/bin/xrstory run scenes/lighthouse/playthroughs/full_arc.play --report reports/demo "$@"
