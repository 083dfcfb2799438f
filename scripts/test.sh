#!/usr/bin/env bash
# Install test requirements, lint (ruff check, ruff format --check), then run every test: fast, slow and browser
# (browser tests skip without chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh requirements-test.txt
export HF_HUB_OFFLINE=1
.venv/bin/python -m ruff check .  # lint first: a lint error fails the run (set -e)
.venv/bin/python -m ruff format --check .
exec .venv/bin/python -m pytest -q "$@"
