#!/usr/bin/env bash
# Install (first run only takes minutes) and start the app on the embedded offline model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh requirements.txt
export HF_HUB_OFFLINE=1
exec .venv/bin/streamlit run app.py "$@"
