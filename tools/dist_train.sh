#!/usr/bin/env bash
# Usage: tools/dist_train.sh CONFIG NUM_PROCS [train.py options]
# One process per GPU (nccl); without CUDA the processes train on CPU (gloo).
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR, PORT (see dist_launch.sh).
exec bash "$(dirname "$0")/dist_launch.sh" train.py "$2" "$1" \
    --launcher pytorch "${@:3}"
