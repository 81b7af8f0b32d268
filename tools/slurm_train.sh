#!/usr/bin/env bash
# Usage: [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS="..."] \
#   tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py options]
# Trains with srun in GPUS processes (see slurm_launch.sh), the form of the
# toolboxes' slurm_train.sh; the other arguments go to tools/train.py.
#
# Long runs (docs/long_runs.md): pass --resume. It continues from the
# newest readable checkpoint in WORK_DIR, or starts when there is none, so
# the same command serves the first start and every restart. With
# slak_mm.PreemptionHook in the config, SIGTERM (preemption, scancel, the
# time limit) and SIGUSR1 make all processes save after the current
# iteration and exit with status 75. SLURM sends SIGUSR1 before the time
# limit, leaving time for the save, with "#SBATCH --signal=USR1@180" (or
# SRUN_ARGS="--signal=USR1@180"). Inside a batch job submitted with
# --requeue ("#SBATCH --requeue"), status 75 makes this script requeue the
# job (scontrol requeue), which runs it again; started from a login node,
# it exits 75 and the same command continues the run.
REQUEUE_EXIT_CODE=75  # slak_mm.engine.REQUEUE_EXIT_CODE

bash "$(dirname "$0")/slurm_launch.sh" train.py "$1" "$2" "$3" \
    --work-dir="$4" "${@:5}"
STATUS=$?
if [ "$STATUS" -eq "$REQUEUE_EXIT_CODE" ] && [ -n "$SLURM_JOB_ID" ]; then
    # a checkpoint was saved: run this batch job again
    scontrol requeue "$SLURM_JOB_ID"
fi
exit "$STATUS"
