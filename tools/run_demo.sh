#!/usr/bin/env bash
# The main job: set up the environment, prepare a small real ADE20K-format
# sample, train UperNet-SLaK-T on it briefly on CPU (or GPU) with
# tools/train.py, evaluate with tools/test.py (mIoU from mmseg's IoUMetric)
# and paint prediction overlays (PNG).
#
# Usage: bash tools/run_demo.sh [DATA_ROOT]
#   DATA_ROOT  an ADEChallengeData2016-layout folder; default: the sample
#              made by tools/prepare_sample_data.py under data/sample/.
# Environment: WORK_DIR (default work_dirs/demo_upernet_slak_t),
#              MAX_ITERS (default: the demo config's 200).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SLAK_MM_VENV:-$HOME/.cache/slak_mm/venv}"
CONFIG=configs/demo/upernet_slak_t_ade20k_sample.py
WORK_DIR="${WORK_DIR:-work_dirs/demo_upernet_slak_t}"

start=$(date +%s)
bash "$ROOT/tools/setup_env.sh"
setup_done=$(date +%s)
cd "$ROOT"
PY="$VENV/bin/python"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

if [ $# -ge 1 ]; then
    DATA_ROOT="$1"
else
    "$PY" tools/prepare_sample_data.py --out data/sample/ade20k
    DATA_ROOT=data/sample/ade20k/ADEChallengeData2016
fi
DATA_ROOT="$(cd "$DATA_ROOT" && pwd)"
OPTS=("train_dataloader.dataset.data_root=$DATA_ROOT"
      "val_dataloader.dataset.data_root=$DATA_ROOT"
      "test_dataloader.dataset.data_root=$DATA_ROOT")
if [ -n "${MAX_ITERS:-}" ]; then
    OPTS+=("train_cfg.max_iters=$MAX_ITERS" "train_cfg.val_interval=$MAX_ITERS"
           "default_hooks.checkpoint.interval=$MAX_ITERS")
fi

echo "[demo] training $CONFIG on $DATA_ROOT -> $WORK_DIR"
"$PY" tools/train.py "$CONFIG" --work-dir "$WORK_DIR" --cfg-options "${OPTS[@]}"
train_done=$(date +%s)

CKPT="$(cat "$WORK_DIR/last_checkpoint")"
OVERLAYS="$(cd "$WORK_DIR" && pwd)/overlays"
echo "[demo] testing $CKPT"
"$PY" tools/test.py "$CONFIG" "$CKPT" --work-dir "$WORK_DIR" \
    --show-dir "$OVERLAYS" --cfg-options "${OPTS[@]}"
end=$(date +%s)

"$PY" - "$WORK_DIR" "$OVERLAYS" <<'PY'
import glob, json, os, sys
work_dir, overlays = sys.argv[1:]
runs = sorted(glob.glob(os.path.join(work_dir, '*', '*.json')),
              key=os.path.getmtime)
metrics = json.load(open(runs[-1])) if runs else {}
pngs = sorted(glob.glob(os.path.join(overlays, '**', '*.png'),
                        recursive=True))
print(f'[demo] test metrics: {metrics}')
print(f'[demo] {len(pngs)} prediction overlays under {overlays}')
for p in pngs[:5]:
    print(f'[demo]   {p}')
if 'mIoU' not in metrics or not pngs:
    sys.exit('[demo] ERROR: no mIoU or no overlays were produced')
PY
echo "[demo] wall time: set-up $((setup_done - start)) s, training" \
     "$((train_done - setup_done)) s, test $((end - train_done)) s"
