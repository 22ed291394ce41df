#!/usr/bin/env bash
# One command from a fresh clone: the whole test suite (unit + integration with a real broker).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q "$@"
