#!/usr/bin/env bash
# Create (or reuse) the pinned slak_mm environment.
#
# Usage: source <(bash tools/setup_env.sh --print-activate)   # not needed
#        bash tools/setup_env.sh        # install / verify, idempotent
#
# Environment variables:
#   SLAK_MM_VENV   virtualenv location (default: ~/.cache/slak_mm/venv).
#                  Shared between clones so that the slow parts (torch
#                  download, mmcv build) happen once per machine.
#   PYTHON         interpreter used to create the venv (default: python3).
#
# The mmcv 2.1.0 ops build (~10 min on 2 cores) is cached by pip's wheel
# cache, so a fresh venv on the same machine reinstalls it in seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SLAK_MM_VENV:-$HOME/.cache/slak_mm/venv}"
PY="${PYTHON:-python3}"

log() { printf '[setup_env] %s\n' "$*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtualenv $VENV"
    mkdir -p "$(dirname "$VENV")"
    "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)
VPY="$VENV/bin/python"

# Fast path: nothing changed since the last successful set-up.
stamp="$VENV/.slak_mm_stamp"
want="$(cat "$ROOT/requirements.txt" "$ROOT/requirements/tests.txt" \
        "$ROOT/tools/setup_env.sh" | sha1sum | cut -d' ' -f1)"
# (slak_mm must be the editable install of THIS checkout)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
    && (cd / && "$VPY" -c "import mmcv._ext, mmseg, mmdet, mmpretrain, os, \
slak_mm; assert os.path.dirname(os.path.dirname(os.path.realpath(\
slak_mm.__file__))) == os.path.realpath('$ROOT')") 2>/dev/null; then
    log "environment up to date: $VENV"
    exit 0
fi

# Build tools. setuptools<82 keeps pkg_resources, which mmcv's setup.py and
# mmengine's package utilities import.
"${PIP[@]}" install -q "pip==24.3.1" "setuptools<82" wheel ninja psutil

# torch + torchvision first: mmcv's ops are compiled against this torch.
"${PIP[@]}" install -q "torch===2.13.0" "torchvision==0.28.0" \
    "mmengine==0.10.7"

if ! "$VPY" -c "import mmcv, mmcv._ext; assert mmcv.__version__ == '2.1.0'" \
        2>/dev/null; then
    log "building mmcv 2.1.0 with ops (first time ~10 min, then cached)"
    MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
        "${PIP[@]}" install --no-build-isolation "mmcv==2.1.0"
fi

"${PIP[@]}" install -q -r "$ROOT/requirements.txt" \
    -r "$ROOT/requirements/tests.txt"
"${PIP[@]}" install -q --no-build-isolation --no-deps -e "$ROOT"

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
