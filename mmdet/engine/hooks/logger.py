"""Logger hooks: the text log and ``<timestamp>.log.json`` in mmdetection 2.x's format, and TensorBoard.

JSON-lines file (rank 0): line 1 is ``runner.meta`` (``env_info``, ``config``, ``seed``,
``exp_name``); then one record per report. Train records: ``mode, epoch, iter`` (1-based
inner iteration), ``lr`` (first param group), ``memory`` (MB, CUDA only, max over ranks),
then the log buffer averages in insertion order (``data_time``, losses, ``loss``,
[``grad_norm``], ``time``). Val records: ``mode, epoch, iter, lr`` and the metrics.
Floats are rounded to 5 decimals. Text lines:
``Epoch [e][i/len]\\tlr: 1.000e-04, eta: 0:01:02, time: 0.707, data_time: 0.086, memory: 18859, loss_x: 0.6582, ...``
and ``Epoch(val) [e][i]\\tbbox_mAP: 0.2920, ...``.
"""
from __future__ import annotations

import datetime
import json
import os
from collections import OrderedDict

import torch

from mmdet.registry import HOOKS

from ..dist import all_reduce_dict, get_dist_info
from .hook import Hook

#: entries shown in the text line's fixed prefix (not repeated among the metrics)
_PREFIX_KEYS = ("mode", "epoch", "iter", "lr", "time", "data_time", "memory")


class LoggerHook(Hook):
    """Averages the log buffer every ``interval`` iterations and hands the result to :meth:`log`.

    Args:
        interval: report period in iterations (inner iterations when ``by_epoch``).
        ignore_last: skip the incomplete window at the end of an epoch.
        reset_flag: clear the buffer output after reporting (forced on for the last logger hook).
        by_epoch: report epoch/inner-iteration counters (else global iterations).
    """

    def __init__(self, interval: int = 10, ignore_last: bool = True, reset_flag: bool = False,
                 by_epoch: bool = True):
        self.interval = interval
        self.ignore_last = ignore_last
        self.reset_flag = reset_flag
        self.by_epoch = by_epoch

    def log(self, runner):
        raise NotImplementedError

    def before_run(self, runner):
        last_logger = [h for h in runner.hooks if isinstance(h, LoggerHook)][-1]
        last_logger.reset_flag = True

    def before_epoch(self, runner):
        runner.log_buffer.clear()

    def _report(self, runner):
        if runner.log_buffer.ready:
            self.log(runner)
            if self.reset_flag:
                runner.log_buffer.clear_output()

    def after_train_iter(self, runner):
        if self.by_epoch and self.every_n_inner_iters(runner, self.interval):
            runner.log_buffer.average(self.interval)
        elif not self.by_epoch and self.every_n_iters(runner, self.interval):
            runner.log_buffer.average(self.interval)
        elif self.end_of_epoch(runner) and not self.ignore_last:
            runner.log_buffer.average(self.interval)
        self._report(runner)

    def after_train_epoch(self, runner):
        self._report(runner)

    def after_val_epoch(self, runner):
        runner.log_buffer.average()
        self.log(runner)
        if self.reset_flag:
            runner.log_buffer.clear_output()

    # --- shared record fields -------------------------------------------------------------------
    @staticmethod
    def get_mode(runner) -> str:
        if runner.mode == "train":
            return "train" if "time" in runner.log_buffer.output else "val"
        return runner.mode

    def get_epoch(self, runner) -> int:
        return runner.epoch + 1 if runner.mode == "train" else runner.epoch

    def get_iter(self, runner, inner_iter: bool = False) -> int:
        return runner.inner_iter + 1 if (self.by_epoch and inner_iter) else runner.iter + 1

    def get_lr(self, runner):
        """First param group's lr (a dict of them when the optimizer is a dict)."""
        lrs = runner.current_lr()
        if isinstance(lrs, dict):
            return {k: v[0] for k, v in lrs.items()}
        return lrs[0]

    def log_record(self, runner) -> "OrderedDict[str, object]":
        """The mmdet record for the current buffer output."""
        record = OrderedDict(mode=self.get_mode(runner), epoch=self.get_epoch(runner),
                             iter=self.get_iter(runner, inner_iter=True))
        record["lr"] = self.get_lr(runner)
        if "time" in runner.log_buffer.output and torch.cuda.is_available():
            memory = torch.cuda.max_memory_allocated() / (1024 * 1024)
            record["memory"] = int(all_reduce_dict({"memory": memory}, op="max")["memory"])
        record.update(runner.log_buffer.output)
        return record


def _round_floats(value):
    if isinstance(value, float):
        return round(value, 5)
    if isinstance(value, (list, tuple)):
        return [_round_floats(v) for v in value]
    if isinstance(value, dict):
        return {k: _round_floats(v) for k, v in value.items()}
    return value


@HOOKS.register_module()
class TextLoggerHook(LoggerHook):
    """Text lines through ``runner.logger`` plus the JSON-lines file ``<work_dir>/<timestamp>.log.json``.

    Args:
        interval_exp_name: log ``Exp name: <config>`` every this many iterations (and at epoch ends).
        out_dir: directory of the JSON file (default: ``work_dir``).
    """

    def __init__(self, by_epoch: bool = True, interval: int = 10, ignore_last: bool = True,
                 reset_flag: bool = False, interval_exp_name: int = 1000, out_dir: str | None = None):
        super().__init__(interval, ignore_last, reset_flag, by_epoch)
        self.interval_exp_name = interval_exp_name
        self.out_dir = out_dir
        self.json_log_path: str | None = None
        self._time_sum = 0.0
        self._start_iter = 0

    def before_run(self, runner):
        super().before_run(runner)
        self._start_iter = runner.iter
        out_dir = self.out_dir or runner.work_dir
        self.json_log_path = os.path.join(out_dir, f"{runner.timestamp}.log.json")
        if runner.meta:
            self._dump({k: v for k, v in runner.meta.items() if k != "hook_msgs"})

    def _dump(self, record: dict) -> None:
        if get_dist_info()[0] != 0:
            return
        os.makedirs(os.path.dirname(self.json_log_path), exist_ok=True)
        with open(self.json_log_path, "a") as f:
            f.write(json.dumps(_round_floats(record)) + "\n")

    def _eta(self, runner, iter_time: float) -> str:
        self._time_sum += iter_time * self.interval
        mean_time = self._time_sum / (runner.iter - self._start_iter + 1)
        return str(datetime.timedelta(seconds=int(mean_time * (runner.max_iters - runner.iter - 1))))

    def _text(self, runner, record: dict) -> str:
        if record["mode"] == "train":
            lr = record["lr"]
            lr_text = (" ".join(f"lr_{k}: {v:.3e}" for k, v in lr.items()) if isinstance(lr, dict)
                       else f"lr: {lr:.3e}")
            head = (f"Epoch [{record['epoch']}][{record['iter']}/{len(runner.data_loader)}]\t" if self.by_epoch
                    else f"Iter [{record['iter']}/{runner.max_iters}]\t")
            head += f"{lr_text}, "
            if "time" in record:
                head += (f"eta: {self._eta(runner, record['time'])}, time: {record['time']:.3f}, "
                         f"data_time: {record['data_time']:.3f}, ")
                if "memory" in record:
                    head += f"memory: {record['memory']}, "
        else:
            head = (f"Epoch({record['mode']}) [{record['epoch']}][{record['iter']}]\t" if self.by_epoch
                    else f"Iter({record['mode']}) [{record['iter']}]\t")
        items = [f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}"
                 for k, v in record.items() if k not in _PREFIX_KEYS]
        return head + ", ".join(items)

    def log(self, runner):
        if "exp_name" in (runner.meta or {}) and (
                self.every_n_iters(runner, self.interval_exp_name)
                or (self.by_epoch and self.end_of_epoch(runner))):
            runner.logger.info(f"Exp name: {runner.meta['exp_name']}")
        record = self.log_record(runner)
        runner.logger.info(self._text(runner, record))
        self._dump(record)


@HOOKS.register_module()
class TensorboardLoggerHook(LoggerHook):
    """Scalars to TensorBoard (``<work_dir>/tf_logs``); skipped with one message when tensorboard is missing."""

    def __init__(self, log_dir: str | None = None, interval: int = 10, ignore_last: bool = True,
                 reset_flag: bool = False, by_epoch: bool = True):
        super().__init__(interval, ignore_last, reset_flag, by_epoch)
        self.log_dir = log_dir
        self.writer = None

    def before_run(self, runner):
        super().before_run(runner)
        if get_dist_info()[0] != 0:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            runner.logger.warning("TensorboardLoggerHook skipped: tensorboard is not installed "
                                  "(pip install tensorboard to enable it)")
            return
        self.writer = SummaryWriter(self.log_dir or os.path.join(runner.work_dir, "tf_logs"))

    def log(self, runner):
        record = self.log_record(runner)  # on every rank: it may all-reduce the memory figure
        if self.writer is None:
            return
        mode, step = record["mode"], runner.iter + 1
        for key, value in record.items():
            if key in ("mode", "epoch", "iter") or not isinstance(value, (int, float)):
                continue
            self.writer.add_scalar(f"{mode}/{key}", value, step)

    def after_run(self, runner):
        if self.writer is not None:
            self.writer.close()
