#!/usr/bin/env bash
# Usage: tools/slurm_launch.sh SCRIPT PARTITION JOB_NAME [SCRIPT arguments]
# Runs tools/SCRIPT --launcher slurm in GPUS processes with srun (the form of
# the toolboxes' slurm_train.sh / slurm_test.sh); the shared part of
# slurm_train.sh and slurm_test.sh. Set GPUS (8), GPUS_PER_NODE (8),
# CPUS_PER_TASK (5), SRUN_ARGS (extra srun options, e.g.
# "--signal=USR1@180"); PYTHON chooses the interpreter.
SCRIPT=$1
PARTITION=$2
JOB_NAME=$3
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
PYTHON=${PYTHON:-python}

set -x
PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    $SRUN_ARGS \
    "$PYTHON" -u "$(dirname "$0")/$SCRIPT" "${@:4}" --launcher slurm
