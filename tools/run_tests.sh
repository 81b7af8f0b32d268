#!/usr/bin/env bash
# Set up the pinned environment (idempotent) and run the test suite.
# Usage: bash tools/run_tests.sh [pytest args]   e.g. -m "not slow" -x
# Real sample data is read from $SLAK_MM_SHARED_DATA (default:
# ../shared/data next to the repository); tests that need it are skipped
# when it is absent.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SLAK_MM_VENV:-$HOME/.cache/slak_mm/venv}"
bash "$ROOT/tools/setup_env.sh"
cd "$ROOT"
exec "$VENV/bin/python" -m pytest tests -ra "$@"
