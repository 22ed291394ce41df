#!/usr/bin/env bash
# Shared set-up for scripts/demo.sh, scripts/test.sh and CI: a virtualenv with the project and
# its test tools, and mosquitto when it is missing (Debian/Ubuntu). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
  echo "installing mosquitto (apt-get)…" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mosquitto mosquitto-clients >/dev/null
  # the package may start a system broker on 1883; the demo uses it, the tests start their own
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# install (again) only when pyproject.toml changed since the last successful install
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "installing orangetv2mqtt and its test tools into .venv…" >&2
  if ! .venv/bin/python -m pip install -q -e '.[test]' >.venv/pip.log 2>&1; then
    cat .venv/pip.log >&2
    exit 1
  fi
  rm -f .venv/.installed-* && touch "$stamp"
fi
