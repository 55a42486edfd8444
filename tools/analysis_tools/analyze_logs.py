"""Plot training curves and compute training time from JSON-lines logs.

Reads this toolbox's ``<timestamp>.log.json`` files and the seed repositories'
``log/*.out`` files alike (the same records; the seed files lack the metadata
header line). Examples::

    python tools/analysis_tools/analyze_logs.py plot_curve run.log.json --keys loss bbox_mAP --out curves.png
    python tools/analysis_tools/analyze_logs.py plot_curve a.log.json b.out --keys loss --legend ours seed --out cmp.png
    python tools/analysis_tools/analyze_logs.py cal_train_time run.log.json
"""
from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path


def load_json_log(path: str | Path) -> list[dict]:
    """The train/val records of a JSON-lines log, in file order.

    The metadata header (``env_info`` / ``config`` / ``seed``) and non-JSON lines
    are skipped. Raises ``ValueError`` naming the file if it holds no record.
    """
    records = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "mode" in record and "epoch" in record:
                records.append(record)
    if not records:
        raise ValueError(f"{path}: no train/val records found (expected mmdetection JSON-lines log records)")
    return records


def curve(records: list[dict], key: str) -> tuple[list[float], list[float], str]:
    """x values, y values and x-axis name for ``key``.

    Train quantities are placed at the global iteration ``(epoch - 1) * iters_per_epoch + iter``
    (``iters_per_epoch`` = the largest logged train ``iter``); val metrics at their epoch.
    """
    per_epoch = max((int(r["iter"]) for r in records if r["mode"] == "train"), default=0)
    hits = [r for r in records if key in r]
    if not hits:
        available = sorted({k for r in records for k in r} - {"mode", "epoch", "iter"})
        raise KeyError(f"key {key!r} not found in the log; available: {', '.join(available)}")
    if all(r["mode"] == "train" for r in hits):
        xs = [(int(r["epoch"]) - 1) * per_epoch + int(r["iter"]) for r in hits]
        axis = "iter"
    else:
        hits = [r for r in hits if r["mode"] != "train"]
        xs = [int(r["epoch"]) for r in hits]
        axis = "epoch"
    return xs, [float(r[key]) for r in hits], axis


def plot_curve(args) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    logs = [load_json_log(p) for p in args.json_logs]
    legends = args.legend or [f"{Path(p).name}: {k}" for p in args.json_logs for k in args.keys]
    expected = len(args.json_logs) * len(args.keys)
    if len(legends) == len(args.json_logs) and len(args.keys) > 1:
        legends = [f"{leg}: {k}" for leg in legends for k in args.keys]
    if len(legends) != expected:
        raise SystemExit(f"--legend needs {len(args.json_logs)} or {expected} names, got {len(legends)}")
    fig, axes = plt.subplots(len(args.keys), 1, figsize=(8, 3.2 * len(args.keys)), squeeze=False)
    names = iter(legends)
    for row, key in enumerate(args.keys):
        ax = axes[row][0]
        for records in logs:
            xs, ys, axis = curve(records, key)
            ax.plot(xs, ys, marker="o" if axis == "epoch" else None, markersize=3, label=next(names))
            ax.set_xlabel(axis)
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    if args.title:
        fig.suptitle(args.title)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"saved {args.out}")


def train_time_stats(records: list[dict], include_outliers: bool = False) -> dict:
    """Per-epoch mean iteration time and the summary mmdetection's ``cal_train_time`` prints.

    The first train record of each epoch (data-loader start-up) is left out unless ``include_outliers``.
    """
    per_epoch: dict[int, list[float]] = defaultdict(list)
    for r in records:
        if r["mode"] == "train" and "time" in r:
            per_epoch[int(r["epoch"])].append(float(r["time"]))
    if not per_epoch:
        raise ValueError("no train records with 'time' in the log")
    if not include_outliers:
        per_epoch = {e: v[1:] if len(v) > 1 else v for e, v in per_epoch.items()}
    means = {e: statistics.fmean(v) for e, v in sorted(per_epoch.items())}
    slowest = max(means, key=means.get)
    fastest = min(means, key=means.get)
    return {"epoch_means": means, "slowest_epoch": slowest, "fastest_epoch": fastest,
            "std_over_epochs": statistics.pstdev(means.values()),
            "average_iter_time": statistics.fmean(means.values())}


def cal_train_time(args) -> None:
    for path in args.json_logs:
        stats = train_time_stats(load_json_log(path), args.include_outliers)
        print(f"-----Analyze train time of {path}-----")
        print(f"slowest epoch {stats['slowest_epoch']}, average time is "
              f"{stats['epoch_means'][stats['slowest_epoch']]:.4f} s/iter")
        print(f"fastest epoch {stats['fastest_epoch']}, average time is "
              f"{stats['epoch_means'][stats['fastest_epoch']]:.4f} s/iter")
        print(f"time std over epochs is {stats['std_over_epochs']:.4f}")
        print(f"average iter time: {stats['average_iter_time']:.4f} s/iter")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Analyze mmdetection-style JSON-lines training logs")
    sub = parser.add_subparsers(dest="task", required=True)
    p = sub.add_parser("plot_curve", help="plot loss / metric curves to a PNG")
    p.add_argument("json_logs", nargs="+", help="JSON-lines logs (ours: *.log.json; seeds: log/*.out)")
    p.add_argument("--keys", nargs="+", default=["loss"], help="keys to plot, e.g. loss loss_cls bbox_mAP")
    p.add_argument("--legend", nargs="+", default=None, help="one name per log (or per log and key)")
    p.add_argument("--title", default=None)
    p.add_argument("--out", default="curves.png", help="output PNG (default: curves.png)")
    p.set_defaults(func=plot_curve)
    t = sub.add_parser("cal_train_time", help="per-epoch average iteration time")
    t.add_argument("json_logs", nargs="+")
    t.add_argument("--include-outliers", action="store_true",
                   help="also count the first record of each epoch (slow data-loader start-up)")
    t.set_defaults(func=cal_train_time)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
