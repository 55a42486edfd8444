# Sourced by tools/dist_train.sh and tools/dist_test.sh (not run by itself).
# torchrun_tool GPUS TOOL [ARGS...]: run tools/TOOL with torch.distributed.run, GPUS processes on this node.
# Environment: NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), PORT (29500), PYTHON (python).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

torchrun_tool() {
    local gpus=$1 tool=$2
    shift 2
    PYTHONPATH="$ROOT":${PYTHONPATH:-} \
    "${PYTHON:-python}" -m torch.distributed.run \
        --nnodes="${NNODES:-1}" \
        --node_rank="${NODE_RANK:-0}" \
        --master_addr="${MASTER_ADDR:-127.0.0.1}" \
        --nproc_per_node="$gpus" \
        --master_port="${PORT:-29500}" \
        "$ROOT/tools/$tool" "$@"
}
