#!/usr/bin/env bash
# Usage: [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS="..."] \
#   tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py options]
# Tests with srun in GPUS processes (see slurm_launch.sh), the form of the
# toolboxes' slurm_test.sh; the other arguments go to tools/test.py. A test
# is not resumed: if it is preempted, run it again (a batch job submitted
# with --requeue is rerun by SLURM after a preemption).
exec bash "$(dirname "$0")/slurm_launch.sh" test.py "$1" "$2" "$3" "$4" \
    "${@:5}"
