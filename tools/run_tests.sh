#!/usr/bin/env bash
# Set up the pinned environment (idempotent) and run the test suite.
# Usage: bash tools/run_tests.sh              # everything but `slow` tests
#        bash tools/run_tests.sh -m slow      # the long end-to-end runs
#        bash tools/run_tests.sh [pytest args], e.g. tests/test_models -x
# Real sample data is read from $SLAK_MM_SHARED_DATA (default:
# ../shared/data next to the repository); tests that need it are skipped
# when it is absent.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SLAK_MM_VENV:-$HOME/.cache/slak_mm/venv}"
bash "$ROOT/tools/setup_env.sh"
cd "$ROOT"
if [ $# -eq 0 ]; then
    set -- -m "not slow"
fi
exec "$VENV/bin/python" -m pytest tests -ra "$@"
