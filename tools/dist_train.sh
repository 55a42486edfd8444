#!/usr/bin/env bash
# Distributed training with torchrun: tools/dist_train.sh CONFIG GPUS [train.py args]
# Environment: NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), PORT (29500), PYTHON (python).
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 CONFIG GPUS [args for tools/train.py]" >&2
    exit 2
fi
source "$(dirname "$0")/dist_launch.sh"
torchrun_tool "$2" train.py "$1" --seed 0 --launcher pytorch "${@:3}"
