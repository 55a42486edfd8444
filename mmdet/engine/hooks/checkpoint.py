"""``CheckpointHook``: periodic checkpoints (rank 0), ``latest.pth``, pruning of old files."""
from __future__ import annotations

import glob
import os

import torch.distributed as dist

from mmdet.registry import HOOKS

from ..dist import get_dist_info, is_distributed
from .hook import Hook


@HOOKS.register_module()
class CheckpointHook(Hook):
    """Save ``epoch_{n}.pth`` / ``iter_{n}.pth`` every ``interval`` epochs / iterations.

    Args:
        interval: period in epochs (``by_epoch=True``) or iterations; -1 = only the last one (``save_last``).
        by_epoch: count epochs or iterations.
        save_optimizer: also store the optimizer state (needed to resume).
        out_dir: directory for the files (default: the runner's ``work_dir``).
        max_keep_ckpts: keep only the newest N ``epoch_*.pth`` / ``iter_*.pth`` files (-1 keeps all).
        save_last: always save at the end of training.
        sync_buffer: average buffers (BN statistics) over ranks before saving.
        **kwargs: forwarded to ``runner.save_checkpoint`` (e.g. ``meta=dict(CLASSES=...)``).
    """

    def __init__(self, interval: int = -1, by_epoch: bool = True, save_optimizer: bool = True,
                 out_dir: str | None = None, max_keep_ckpts: int = -1, save_last: bool = True,
                 sync_buffer: bool = False, **kwargs):
        self.interval = interval
        self.by_epoch = by_epoch
        self.save_optimizer = save_optimizer
        self.out_dir = out_dir
        self.max_keep_ckpts = max_keep_ckpts
        self.save_last = save_last
        self.sync_buffer = sync_buffer
        self.args = kwargs

    def before_run(self, runner):
        if not self.out_dir:
            self.out_dir = runner.work_dir
        if get_dist_info()[0] == 0:
            # temp files of writes killed half-way (the rename never happened)
            for stale in glob.glob(os.path.join(self.out_dir, ".tmp_*.pth")):
                os.unlink(stale)
            runner.logger.info(f"Checkpoints will be saved to {self.out_dir}")

    def after_train_epoch(self, runner):
        if not self.by_epoch:
            return
        if self.every_n_epochs(runner, self.interval) or (self.save_last and self.is_last_epoch(runner)):
            runner.logger.info(f"Saving checkpoint at {runner.epoch + 1} epochs")
            self._save(runner)

    def after_train_iter(self, runner):
        if self.by_epoch:
            return
        if self.every_n_iters(runner, self.interval) or (self.save_last and self.is_last_iter(runner)):
            runner.logger.info(f"Saving checkpoint at {runner.iter + 1} iterations")
            self._save(runner)

    def _sync_buffers(self, runner) -> None:
        buffers = [b for b in runner.model.buffers() if b.is_floating_point()]
        world_size = dist.get_world_size()
        for b in buffers:
            dist.all_reduce(b.data.div_(world_size))

    def _save(self, runner) -> None:
        if self.sync_buffer and is_distributed():
            self._sync_buffers(runner)
        if get_dist_info()[0] != 0:
            return
        path = runner.save_checkpoint(self.out_dir, save_optimizer=self.save_optimizer, **self.args)
        runner.meta.setdefault("hook_msgs", {})["last_ckpt"] = path
        if self.max_keep_ckpts > 0:
            self._remove_old()

    def _remove_old(self) -> None:
        """Delete all but the newest ``max_keep_ckpts`` periodic checkpoints (best / latest files are not touched)."""
        prefix = "epoch_" if self.by_epoch else "iter_"
        numbered = []
        for path in glob.glob(os.path.join(self.out_dir, f"{prefix}*.pth")):
            number = os.path.basename(path)[len(prefix):-4]
            if number.isdigit():
                numbered.append((int(number), path))
        for _, path in sorted(numbered)[:-self.max_keep_ckpts]:
            os.remove(path)

def find_latest_checkpoint(work_dir: str) -> str | None:
    """``latest.pth`` in ``work_dir`` if it exists, else the newest ``epoch_*.pth`` / ``iter_*.pth``."""
    latest = os.path.join(work_dir, "latest.pth")
    if os.path.isfile(latest):
        return latest
    candidates = []
    for path in glob.glob(os.path.join(work_dir, "*.pth")):
        stem = os.path.basename(path)[:-4]
        kind, _, number = stem.partition("_")
        if kind in ("epoch", "iter") and number.isdigit():
            candidates.append((int(number), path))
    return max(candidates)[1] if candidates else None

