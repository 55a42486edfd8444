#!/usr/bin/env bash
# Distributed testing with torchrun: tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args]
# Environment: NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), PORT (29500), PYTHON (python).
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 CONFIG CHECKPOINT GPUS [args for tools/test.py]" >&2
    exit 2
fi
source "$(dirname "$0")/dist_launch.sh"
torchrun_tool "$3" test.py "$1" "$2" --launcher pytorch "${@:4}"
