"""torch.distributed helpers: process-group setup from launcher env vars, rank info and result gathering.

``init_dist('pytorch')`` reads what ``torchrun`` exports (``RANK``, ``LOCAL_RANK``,
``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``); ``'slurm'`` and ``'mpi'`` read
their schedulers' variables. NCCL is used on GPUs; without CUDA the group falls
back to gloo, so the same configs (``dist_params=dict(backend='nccl')``) run on CPU.
"""
from __future__ import annotations

import functools
import inspect
import os
import pickle
import shutil
import subprocess
import tempfile
from typing import Any, Callable

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_dist_info() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` when no process group is initialised."""
    if is_distributed():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _env_int(name: str, launcher: str) -> int:
    if name not in os.environ:
        raise RuntimeError(f"--launcher {launcher} needs the environment variable {name}; start the job with "
                           f"torchrun / tools/dist_train.sh (or use --launcher none for a single process)")
    return int(os.environ[name])


def _setup_env_from_slurm(port: int | None) -> None:
    os.environ["RANK"] = os.environ["SLURM_PROCID"]
    os.environ["WORLD_SIZE"] = os.environ["SLURM_NTASKS"]
    os.environ["LOCAL_RANK"] = os.environ.get("SLURM_LOCALID", "0")
    if "MASTER_ADDR" not in os.environ:
        nodes = subprocess.run(["scontrol", "show", "hostnames", os.environ["SLURM_NODELIST"]],
                               capture_output=True, text=True, check=True).stdout.split()
        os.environ["MASTER_ADDR"] = nodes[0]
    if port is not None:
        os.environ["MASTER_PORT"] = str(port)
    os.environ.setdefault("MASTER_PORT", "29500")


def _setup_env_from_mpi() -> None:
    os.environ["RANK"] = os.environ["OMPI_COMM_WORLD_RANK"]
    os.environ["WORLD_SIZE"] = os.environ["OMPI_COMM_WORLD_SIZE"]
    os.environ["LOCAL_RANK"] = os.environ.get("OMPI_COMM_WORLD_LOCAL_RANK", "0")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29500")


def init_dist(launcher: str = "pytorch", backend: str = "nccl", port: int | None = None, **kwargs) -> None:
    """Initialise the default process group for ``launcher`` in {'pytorch', 'slurm', 'mpi'}.

    ``backend='nccl'`` without a usable GPU falls back to ``'gloo'``. On GPUs each process
    takes ``cuda:LOCAL_RANK``. Extra ``kwargs`` go to ``init_process_group`` (e.g. ``timeout``).
    """
    if launcher == "slurm":
        _setup_env_from_slurm(port)
    elif launcher == "mpi":
        _setup_env_from_mpi()
    elif launcher != "pytorch":
        raise ValueError(f"unknown launcher {launcher!r}; use 'pytorch' (torchrun), 'slurm' or 'mpi'")
    rank, world_size = _env_int("RANK", launcher), _env_int("WORLD_SIZE", launcher)
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if backend == "nccl" and not torch.cuda.is_available():
        backend = "gloo"
    if torch.cuda.is_available() and backend == "nccl":
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
    dist.init_process_group(backend=backend, rank=rank, world_size=world_size, **kwargs)


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def process_device(gpu_ids: list[int] | None, distributed: bool) -> torch.device:
    """The device this process computes on: its current CUDA device when distributed (set by :func:`init_dist`),
    else ``cuda:gpu_ids[0]``; the CPU when CUDA is unavailable."""
    if not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", torch.cuda.current_device() if distributed else (gpu_ids or [0])[0])


def wrap_distributed(model: torch.nn.Module, device: torch.device, **ddp_kwargs) -> torch.nn.Module:
    """``DistributedDataParallel`` on ``device`` (``device_ids`` only for CUDA); ``ddp_kwargs`` such as
    ``find_unused_parameters`` are passed on.

    Buffers are synced once at construction and not before every forward, as mmcv's ``MMDistributedDataParallel``
    (``broadcast_buffers=False``); torch releases that deprecate ``broadcast_buffers`` spell this
    ``forward_sync_buffers=False``.
    """
    ddp = torch.nn.parallel.DistributedDataParallel
    no_forward_sync = ("forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(ddp).parameters
                       else "broadcast_buffers")
    return ddp(model, device_ids=[device.index] if device.type == "cuda" else None,
               **{no_forward_sync: False}, **ddp_kwargs)


def master_only(func: Callable) -> Callable:
    """Decorator: run ``func`` on rank 0 only (returns None elsewhere)."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if get_dist_info()[0] == 0:
            return func(*args, **kwargs)
        return None
    return wrapper


def _comm_device() -> torch.device:
    """Device that tensors must live on for collectives of the default group."""
    if is_distributed() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_dict(values: dict[str, float | torch.Tensor], op: str = "mean") -> dict[str, float]:
    """Reduce a dict of scalars over ranks in one collective; ``op`` in {'mean', 'sum', 'max'}.

    Every rank must pass the same keys in the same order. Returns python floats.
    """
    if op not in ("mean", "sum", "max"):
        raise ValueError(f"all_reduce_dict op must be 'mean', 'sum' or 'max', got {op!r}")
    keys = list(values)
    if not is_distributed() or not keys:
        return {k: float(v) for k, v in values.items()}
    flat = torch.stack([torch.as_tensor(values[k], dtype=torch.float64).detach().reshape(()).cpu() for k in keys])
    flat = flat.to(_comm_device())
    dist.all_reduce(flat, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
    if op == "mean":
        flat /= dist.get_world_size()
    return dict(zip(keys, flat.cpu().tolist()))


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``obj`` from rank ``src`` on every rank (a no-op without a process group)."""
    if not is_distributed():
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=src, device=_comm_device())
    return holder[0]


def _interleave(parts: list[list], size: int) -> list:
    """Undo ``DistributedSampler``'s round-robin split (rank r holds r, r+W, ...) and drop its padding."""
    ordered = [item for group in zip(*parts) for item in group]
    return ordered[:size]


def collect_results_cpu(result_part: list, size: int, tmpdir: str | None = None) -> list | None:
    """Gather per-rank result lists through files in ``tmpdir``; rank 0 gets all ``size`` results, others None."""
    rank, world_size = get_dist_info()
    if world_size == 1:
        return list(result_part)[:size]
    if tmpdir is None:
        tmpdir = broadcast_object(tempfile.mkdtemp(prefix=".dist_test_") if rank == 0 else None)
    else:
        os.makedirs(tmpdir, exist_ok=True)
    with open(os.path.join(tmpdir, f"part_{rank}.pkl"), "wb") as f:
        pickle.dump(list(result_part), f, protocol=pickle.HIGHEST_PROTOCOL)
    dist.barrier()
    if rank != 0:
        dist.barrier()
        return None
    parts = []
    for r in range(world_size):
        with open(os.path.join(tmpdir, f"part_{r}.pkl"), "rb") as f:  # files this job just wrote
            parts.append(pickle.load(f))
    shutil.rmtree(tmpdir, ignore_errors=True)
    dist.barrier()
    return _interleave(parts, size)


def collect_results_gpu(result_part: list, size: int) -> list | None:
    """Gather per-rank result lists through the communication backend (GPU tensors under NCCL)."""
    rank, world_size = get_dist_info()
    if world_size == 1:
        return list(result_part)[:size]
    parts: list = [None] * world_size
    dist.all_gather_object(parts, list(result_part))
    return _interleave(parts, size) if rank == 0 else None
