#!/usr/bin/env bash
# Create (or reuse) the pinned slak_mm environment.
#
# Usage: bash tools/setup_env.sh        # install / verify, idempotent
#
# Environment variables:
#   SLAK_MM_VENV   virtualenv location (default: $SLAK_MM_CACHE/venv).
#   SLAK_MM_CACHE  per-machine cache (default: ~/.cache/slak_mm): the venv,
#                  the built mmcv wheel (wheels/), the set-up logs (logs/).
#   PYTHON         interpreter used to create the venv (default: python3).
#   MAX_JOBS       parallel compile jobs for mmcv's ops (default: all cores).
#
# Every pip call gets `-c requirements/constraints.txt`, so no install can
# move an earlier pin. mmcv 2.1.0 is compiled from source with its ops
# (~27 min on 2 cores, measured); the wheel is kept under
# $SLAK_MM_CACHE/wheels/, keyed by Python and torch version, so a new venv
# on the same machine installs it in seconds, with or without pip's cache.
# Each stage prints its elapsed time; pip's full output goes to the log file
# whose path is printed first; long stages print a heartbeat every 60 s.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${SLAK_MM_CACHE:-$HOME/.cache/slak_mm}"
VENV="${SLAK_MM_VENV:-$CACHE/venv}"
PY="${PYTHON:-python3}"
CONSTRAINTS="$ROOT/requirements/constraints.txt"
JOBS="${MAX_JOBS:-$(nproc)}"
T0=$(date +%s)

log() { printf '[setup_env %4ds] %s\n' "$(($(date +%s) - T0))" "$*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtualenv $VENV"
    mkdir -p "$(dirname "$VENV")"
    "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
PIP=("$VPY" -m pip)

# Fast path: nothing changed since the last successful set-up, and slak_mm
# is the editable install of THIS checkout.
stamp="$VENV/.slak_mm_stamp"
want="$(cat "$ROOT/requirements.txt" "$ROOT/requirements/tests.txt" \
        "$ROOT/requirements/deploy.txt" "$CONSTRAINTS" \
        "$ROOT/tools/setup_env.sh" | sha1sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
    && (cd / && "$VPY" -c "import mmcv._ext, mmseg, mmdet, mmpretrain, os, \
slak_mm; assert os.path.dirname(os.path.dirname(os.path.realpath(\
slak_mm.__file__))) == os.path.realpath('$ROOT')") 2>/dev/null; then
    log "environment up to date: $VENV"
    exit 0
fi

mkdir -p "$CACHE/logs"
LOG="$CACHE/logs/setup_env_$(date +%Y%m%d_%H%M%S).log"
log "full pip log: $LOG"

# stage NAME CMD...: run CMD with its output in $LOG, a heartbeat every 60 s
# (elapsed time; for the mmcv build, ninja's [done/total] compile count),
# and the stage's time at the end. On failure, the log's tail is shown.
stage() {
    local name="$1"; shift
    local t=$(date +%s)
    log "$name ..."
    echo "===== $name: $*" >> "$LOG"
    (
        while sleep 60; do
            prog="$(grep -aoE '^ *\[[0-9]+/[0-9]+\]' "$LOG" | tail -n 1 | tr -d ' ' || true)"
            log "  ... $name, $(($(date +%s) - t)) s${prog:+, compiled $prog}"
        done
    ) &
    local beat=$!
    local rc=0
    "$@" >> "$LOG" 2>&1 || rc=$?
    kill "$beat" 2>/dev/null; wait "$beat" 2>/dev/null || true
    if [ "$rc" -ne 0 ]; then
        tail -n 40 "$LOG" >&2
        log "FAILED: $name (exit $rc); full log: $LOG"
        exit "$rc"
    fi
    log "$name done in $(($(date +%s) - t)) s"
}

pip_c() { "${PIP[@]}" install --progress-bar off -c "$CONSTRAINTS" "$@"; }

# Build tools. setuptools<82 keeps pkg_resources, which mmcv's setup.py and
# mmengine's package utilities import; the constraints hold it there.
stage "build tools (pip, setuptools, wheel, ninja)" \
    pip_c pip setuptools wheel ninja psutil
# torch + torchvision first: mmcv's ops are compiled against this torch.
stage "torch, torchvision, mmengine" pip_c torch torchvision mmengine

if ! "$VPY" -c "import mmcv, mmcv._ext; assert mmcv.__version__ == '2.1.0'" \
        2>/dev/null; then
    key="$("$VPY" -c 'import sys, torch; print("cp%d%d-torch%s" % (
        sys.version_info[0], sys.version_info[1], torch.__version__))')"
    WHEELS="$CACHE/wheels/$key"
    if ! ls "$WHEELS"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
        log "building mmcv 2.1.0 with ops, $JOBS parallel jobs (measured:" \
            "~27 min on 2 cores); the wheel goes to $WHEELS"
        mkdir -p "$WHEELS"
        stage "mmcv 2.1.0 build" env MMCV_WITH_OPS=1 MAX_JOBS="$JOBS" \
            "${PIP[@]}" wheel -v --no-build-isolation --no-deps \
            -c "$CONSTRAINTS" -w "$WHEELS" "mmcv==2.1.0"
    else
        log "using the cached mmcv wheel in $WHEELS"
    fi
    stage "mmcv 2.1.0 install" pip_c --no-deps "$WHEELS"/mmcv-2.1.0-*.whl
fi

stage "OpenMMLab toolboxes, test and export requirements" \
    pip_c -r "$ROOT/requirements.txt" -r "$ROOT/requirements/tests.txt" \
    -r "$ROOT/requirements/deploy.txt"
stage "slak_mm (editable)" \
    pip_c --no-build-isolation --no-deps -e "$ROOT"
stage "pip check" "${PIP[@]}" check

"$VPY" - <<'PY'
import mmcv, mmcv.ops, mmdet, mmengine, mmpretrain, mmseg, torch, torchvision
import slak_mm
print(f'[setup_env] torch {torch.__version__} torchvision '
      f'{torchvision.__version__} mmengine {mmengine.__version__} mmcv '
      f'{mmcv.__version__} mmdet {mmdet.__version__} mmseg '
      f'{mmseg.__version__} mmpretrain {mmpretrain.__version__} '
      f'slak_mm {slak_mm.__version__}')
PY
echo "$want" > "$stamp"
log "ready: $VENV (activate with: source $VENV/bin/activate)"
