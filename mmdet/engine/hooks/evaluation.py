"""``EvalHook`` / ``DistEvalHook``: test the model on the val loader every ``interval`` epochs and log metrics.

Metrics from ``dataset.evaluate(results, logger, **eval_kwargs)`` go into the runner's
log buffer, so the logger hooks (which run after this hook) write the ``mode: 'val'``
record. With ``save_best`` the best checkpoint is kept as ``best_<key>_epoch_<n>.pth``.
"""
from __future__ import annotations

import math
import os

import torch.distributed as dist
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet.registry import HOOKS

from ..amp import autocast
from ..dist import get_dist_info, is_distributed
from .hook import Hook

_GREATER_KEYS = ("mAP", "AR", "acc", "top", "auc", "precision", "mDice", "mIoU", "mAcc", "aAcc")
_LESS_KEYS = ("loss",)
_COMPARE = {"greater": lambda a, b: a > b, "less": lambda a, b: a < b}
_WORST = {"greater": -math.inf, "less": math.inf}


@HOOKS.register_module()
class EvalHook(Hook):
    """Single-process evaluation.

    Args:
        dataloader: the val ``DataLoader`` (its dataset must implement ``evaluate``).
        start: first epoch (1-based) to evaluate; when the run starts at or after it, also evaluate
            before training. None: evaluate every ``interval`` epochs from the first.
        interval: evaluation period in epochs (``by_epoch``) or iterations.
        by_epoch: count epochs or iterations.
        save_best: metric name to track (``'auto'`` = the first metric returned), or None.
        rule: ``'greater'`` / ``'less'``; inferred from the metric name when None.
        greater_keys, less_keys: extra substrings that decide the rule for ``save_best``.
        out_dir: where the best checkpoint goes (default ``work_dir``).
        **eval_kwargs: forwarded to ``dataset.evaluate`` (``metric``, ``classwise``, ``iou_thrs`` ...).
    """

    def __init__(self, dataloader, start: int | None = None, interval: int = 1, by_epoch: bool = True,
                 save_best: str | None = None, rule: str | None = None, greater_keys=None, less_keys=None,
                 out_dir: str | None = None, **eval_kwargs):
        if interval <= 0:
            raise ValueError(f"evaluation interval must be positive, got {interval}")
        if start is not None and start < 0:
            raise ValueError(f"evaluation start must be >= 0, got {start}")
        if rule is not None and rule not in _COMPARE:
            raise ValueError(f"evaluation rule must be 'greater' or 'less', got {rule!r}")
        self.dataloader = dataloader
        self.start = start
        self.interval = interval
        self.by_epoch = by_epoch
        self.save_best = save_best
        self.rule = rule
        self.greater_keys = _GREATER_KEYS + tuple(greater_keys or ())
        self.less_keys = _LESS_KEYS + tuple(less_keys or ())
        self.out_dir = out_dir
        self.eval_kwargs = eval_kwargs
        self.best_ckpt_path: str | None = None
        self._initial_checked = False

    # --- when ---------------------------------------------------------------------------------
    def _should_evaluate(self, runner) -> bool:
        current = runner.epoch if self.by_epoch else runner.iter
        if self.start is None:
            period_hit = (self.every_n_epochs(runner, self.interval) if self.by_epoch
                          else self.every_n_iters(runner, self.interval))
            return period_hit
        if current + 1 < self.start:
            return False
        return (current + 1 - self.start) % self.interval == 0

    def before_run(self, runner):
        self.out_dir = self.out_dir or runner.work_dir
        if self.save_best is not None:
            self.best_ckpt_path = runner.meta.get("hook_msgs", {}).get("best_ckpt")

    def before_train_epoch(self, runner):
        if self._initial_checked:
            return
        self._initial_checked = True
        if self.by_epoch and self.start is not None and runner.epoch >= self.start:
            self._do_evaluate(runner)

    def after_train_epoch(self, runner):
        if self.by_epoch and self._should_evaluate(runner):
            self._do_evaluate(runner)

    def after_train_iter(self, runner):
        if not self.by_epoch and self._should_evaluate(runner):
            self._do_evaluate(runner)

    # --- what ---------------------------------------------------------------------------------
    def _run_test(self, runner):
        from mmdet.apis.test import single_gpu_test
        with autocast(runner.device.type, runner.amp_dtype):
            return single_gpu_test(runner.model, self.dataloader, show=False)

    def _do_evaluate(self, runner) -> None:
        results = self._run_test(runner)
        self._evaluate_and_record(runner, results)

    def _evaluate_and_record(self, runner, results) -> None:
        metrics = self.dataloader.dataset.evaluate(results, logger=runner.logger, **self.eval_kwargs)
        for name, value in metrics.items():
            runner.log_buffer.output[name] = value
        runner.log_buffer.ready = True
        if self.save_best is not None and metrics:
            self._save_best(runner, metrics)

    def _resolve_key_and_rule(self, metrics: dict) -> tuple[str, str]:
        key = next(iter(metrics)) if self.save_best == "auto" else self.save_best
        if key not in metrics:
            raise KeyError(f"save_best={self.save_best!r} is not among the evaluation results {list(metrics)}")
        if self.rule is not None:
            return key, self.rule
        if any(k in key for k in self.less_keys):
            return key, "less"
        if any(k in key for k in self.greater_keys):
            return key, "greater"
        raise ValueError(f"cannot infer whether a larger {key!r} is better; set evaluation.rule to "
                         f"'greater' or 'less'")

    def _save_best(self, runner, metrics: dict) -> None:
        key, rule = self._resolve_key_and_rule(metrics)
        score = float(metrics[key])
        hook_msgs = runner.meta.setdefault("hook_msgs", {})
        if not _COMPARE[rule](score, hook_msgs.get("best_score", _WORST[rule])):
            return
        hook_msgs["best_score"] = score
        if self.best_ckpt_path and os.path.isfile(self.best_ckpt_path):
            os.remove(self.best_ckpt_path)
        unit, count = ("epoch", runner.epoch + 1) if self.by_epoch else ("iter", runner.iter + 1)
        name = f"best_{key}_{unit}_{count}.pth"
        self.best_ckpt_path = os.path.join(self.out_dir, name)
        hook_msgs["best_ckpt"] = self.best_ckpt_path
        runner.save_checkpoint(self.out_dir, filename_tmpl=name, create_symlink=False)
        runner.logger.info(f"Now best checkpoint is saved as {name}.")
        runner.logger.info(f"Best {key} is {score:0.4f} at {count} {unit}.")


@HOOKS.register_module()
class DistEvalHook(EvalHook):
    """Distributed evaluation: every rank tests its shard, rank 0 gathers and evaluates.

    Args:
        tmpdir: directory for CPU-side result collection (default ``<work_dir>/.eval_hook``).
        gpu_collect: gather results through the communication backend instead of files.
        broadcast_bn_buffer: copy rank 0's BatchNorm statistics to all ranks before testing.
    """

    def __init__(self, dataloader, start: int | None = None, interval: int = 1, by_epoch: bool = True,
                 save_best: str | None = None, rule: str | None = None, greater_keys=None, less_keys=None,
                 out_dir: str | None = None, tmpdir: str | None = None, gpu_collect: bool = False,
                 broadcast_bn_buffer: bool = True, **eval_kwargs):
        super().__init__(dataloader, start, interval, by_epoch, save_best, rule, greater_keys, less_keys,
                         out_dir, **eval_kwargs)
        self.tmpdir = tmpdir
        self.gpu_collect = gpu_collect
        self.broadcast_bn_buffer = broadcast_bn_buffer

    def _broadcast_bn_buffers(self, runner) -> None:
        for module in runner.model.modules():
            if isinstance(module, _BatchNorm) and module.track_running_stats:
                dist.broadcast(module.running_mean, 0)
                dist.broadcast(module.running_var, 0)

    def _run_test(self, runner):
        from mmdet.apis.test import multi_gpu_test
        if self.broadcast_bn_buffer and is_distributed():
            self._broadcast_bn_buffers(runner)
        tmpdir = self.tmpdir or os.path.join(runner.work_dir, ".eval_hook")
        with autocast(runner.device.type, runner.amp_dtype):
            return multi_gpu_test(runner.model, self.dataloader, tmpdir=tmpdir, gpu_collect=self.gpu_collect)

    def _do_evaluate(self, runner) -> None:
        results = self._run_test(runner)
        if get_dist_info()[0] == 0:
            self._evaluate_and_record(runner, results)
