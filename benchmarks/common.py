"""Timing and memory helpers shared by the benchmark scripts.

Every script compares our implementation with a reference measured in the same
run: repetitions are interleaved (ours, ref, ours, ref, ...) so drifting machine
load hits both alike, and medians are reported. A script ends with one line
``RESULT key=value ...`` whose ratios are reference time / our time (> 1: we are faster).
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time
from typing import Callable

import torch


def base_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small sizes and few repetitions (< 2 min on 2 CPU cores)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--reps", type=int, default=None, help="timed repetitions per candidate (default: 3 quick, 7 full)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    return p


def setup(args) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)


def _sync(device) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def time_interleaved(candidates: dict[str, Callable[[], object]], reps: int, warmup: int = 1,
                     device="cpu") -> dict[str, float]:
    """Median wall time in seconds of each zero-argument callable, repetitions interleaved."""
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    _sync(device)
    times: dict[str, list[float]] = {k: [] for k in candidates}
    for _ in range(reps):
        for name, fn in candidates.items():
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def peak_memory_bytes(fn: Callable[[], object], device="cpu") -> int:
    """Peak memory allocated by torch while ``fn`` runs (CUDA allocator stats, or the CPU profiler's memory events)."""
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    # self_cpu_memory_usage counts each allocation / free once (cpu_memory_usage repeats it in every parent event)
    events = sorted((e for e in prof.events() if e.self_cpu_memory_usage != 0), key=lambda e: e.time_range.start)
    current = peak = 0
    for e in events:
        current += e.self_cpu_memory_usage
        peak = max(peak, current)
    return peak


def machine_line() -> str:
    dev = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    return (f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
            f"device {dev}, torch {torch.__version__}, python {platform.python_version()}")


def print_result(**values) -> None:
    """Print the closing ``RESULT key=value ...`` line (floats with 3 significant decimals)."""
    parts = [f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()]
    print("RESULT " + " ".join(parts), flush=True)
