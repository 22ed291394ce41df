#!/usr/bin/env bash
# The benchmark from a fresh clone, in one command: set-up, then bench/bench.py with your args.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python bench/bench.py "$@"
