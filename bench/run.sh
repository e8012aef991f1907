#!/usr/bin/env bash
# Replay engine benchmarks; installs its tools into $MODELROLLOUT_CACHE/bench-bin.
# Usage: bash bench/run.sh [--seconds 10] [--docs]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  make install
fi
exec .venv/bin/python bench/run.py "$@"
