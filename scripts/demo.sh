#!/usr/bin/env bash
# One command from a fresh clone: simulator + bridge + a local mosquitto, one round trip shown.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/orangetv2mqtt demo "$@"
