#!/usr/bin/env bash
# Create .venv (if missing) and install the given requirements file into it. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
req=${1:-requirements.txt}
python3 -m venv .venv 2>/dev/null || [ -x .venv/bin/python ]
.venv/bin/python -m pip install -q --upgrade pip
# torch first and alone: its pin must win over anything a later package asks for.
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -r "$req"
