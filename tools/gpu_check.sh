#!/usr/bin/env bash
# The GPU check, in one go: the `cuda` tests (tests/test_cuda.py) and the
# GPU rows of the benchmark (img/s and peak memory of SLaK-T/S/B and
# SW-v1/v2 against mmpretrain's ConvNeXt-T/S/B measured in the same run;
# batch 64 and 128 at 224x224; training under AMP fp16, inference in
# train and deploy form in fp16, bf16 and fp32), written to OUT_DIR.
#
# Made for a bare GPU machine: Python with torch, torchvision and Triton,
# no mm* packages, no network. The pure-Python wheels it needs (mmengine,
# mmcv-lite, mmpretrain and their small dependencies; ~3.5 MB, pinned by
# requirements/constraints.txt) are fetched beforehand on a machine that
# reaches PyPI, and carried with the checkout:
#
#   bash tools/gpu_check.sh --download .gpu_wheels     # here, with PyPI
#   bash tools/gpu_check.sh OUT_DIR [.gpu_wheels]      # on the GPU machine
#
# mmcv-lite has no compiled ops, and mmseg / mmdet import them when they are
# imported: the check is scoped to what runs without them (the layers, the
# backbones, sparse training with mmengine's Runner, mmpretrain models).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
WHEELS_PINNED=(mmengine mmcv-lite mmpretrain addict yapf termcolor
               platformdirs modelindex ordered-set mat4py importlib-metadata)

pin() {  # the version requirements/constraints.txt pins for a name
    local name="$1" key="${1//-/[-_]}"
    [ "$name" = mmcv-lite ] && key=mmcv
    grep -i -E "^${key}==" "$ROOT/requirements/constraints.txt" |
        sed "s/^[^=]*==/${name}==/" || echo "$name"
}

if [ "${1:-}" = --download ]; then
    DEST="${2:?usage: gpu_check.sh --download DIR}"
    specs=()
    for name in "${WHEELS_PINNED[@]}"; do specs+=("$(pin "$name")"); done
    "$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation py --abi none --platform any -d "$DEST" "${specs[@]}"
    du -sh "$DEST"
    exit 0
fi

OUT="$(mkdir -p "${1:?usage: gpu_check.sh OUT_DIR [WHEEL_DIR]}" && cd "$1" && pwd)"
WHEELS="${2:-$ROOT/.gpu_wheels}"
T0=$(date +%s)
say() { printf '[gpu_check %4ds] %s\n' "$(($(date +%s) - T0))" "$*" | tee -a "$OUT/gpu_check.log"; }

DEPS="$(mktemp -d)/site"
if ! "$PY" -c 'import mmengine, mmpretrain' 2>/dev/null; then
    say "installing the carried wheels from $WHEELS into $DEPS"
    "$PY" -m pip install -q --no-index --no-deps --target "$DEPS" \
        "$WHEELS"/*.whl
fi
export PYTHONPATH="$ROOT:$DEPS${PYTHONPATH:+:$PYTHONPATH}"
cd "$ROOT"
"$PY" - <<'EOF' | tee -a "$OUT/gpu_check.log"
import torch, mmengine, mmcv, mmpretrain
print(f'torch {torch.__version__} (CUDA {torch.version.cuda}), '
      f'device {torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"}, '
      f'mmengine {mmengine.__version__}, mmcv {mmcv.__version__}, '
      f'mmpretrain {mmpretrain.__version__}')
EOF

say "cuda tests"
status=0
"$PY" -m pytest tests/test_cuda.py -m cuda -ra -p no:cacheprovider \
    --junitxml "$OUT/cuda_tests.xml" 2>&1 | tee "$OUT/cuda_tests.txt" ||
    status=$?
say "cuda tests done (pytest exit $status)"

say "GPU benchmark"
bench() {  # NAME, then benchmark.py arguments
    local name="$1"; shift
    "$PY" tools/analysis/benchmark.py --device cuda --models tiny small base \
        --shiftwise v1 v2 --batch-sizes 64 128 --input-size 224 \
        --repeats 3 --warmup 1 --out-dir "$OUT/$name" "$@" 2>&1 |
        tee "$OUT/$name.txt" || status=$?
    say "benchmark $name done"
}
bench train_amp_fp16 --modes train --dtype fp16
bench infer_fp16 --modes eval deploy --dtype fp16
bench infer_bf16 --modes eval deploy --dtype bf16
bench infer_fp32 --modes eval deploy --dtype fp32
say "done (exit $status); output in $OUT"
exit "$status"
