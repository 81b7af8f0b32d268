#!/usr/bin/env bash
# Usage: tools/dist_launch.sh SCRIPT NUM_PROCS [SCRIPT arguments]
# Runs tools/SCRIPT in NUM_PROCS processes with torch.distributed.run; the
# shared part of dist_train.sh and dist_test.sh. Multi-node: set NNODES,
# NODE_RANK, MASTER_ADDR, PORT; PYTHON chooses the interpreter.
SCRIPT=$1
NPROCS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$NPROCS" \
    --master_port="$PORT" \
    "$(dirname "$0")/$SCRIPT" \
    "${@:3}"
