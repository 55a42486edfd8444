"""Hook base class with mmcv 1.x's method names, so hooks written for mmdetection 2.x port directly.

A runner calls, in order: ``before_run``; per epoch ``before_train_epoch``,
per iteration ``before_train_iter`` / ``after_train_iter``, then
``after_train_epoch`` (and the ``val`` variants in a val phase); ``after_run``.
Hooks read runner state: ``epoch``, ``iter`` (global), ``inner_iter``,
``max_epochs``, ``max_iters``, ``model``, ``optimizer``, ``outputs``,
``log_buffer``, ``data_loader``, ``work_dir``, ``logger``, ``meta``, ``rank``,
``world_size``, ``mode``.
"""
from __future__ import annotations

PRIORITIES = {"HIGHEST": 0, "VERY_HIGH": 10, "HIGH": 30, "ABOVE_NORMAL": 40, "NORMAL": 50,
              "BELOW_NORMAL": 60, "LOW": 70, "VERY_LOW": 90, "LOWEST": 100}


def get_priority(priority: int | str) -> int:
    """Priority as an int: 0..100 or one of the names in :data:`PRIORITIES` (lower runs first)."""
    if isinstance(priority, int):
        if not 0 <= priority <= 100:
            raise ValueError(f"hook priority must be in 0..100, got {priority}")
        return priority
    if isinstance(priority, str) and priority.upper() in PRIORITIES:
        return PRIORITIES[priority.upper()]
    raise ValueError(f"unknown hook priority {priority!r}; use an int 0..100 or one of {list(PRIORITIES)}")


class Hook:
    """Base class: every method is a no-op; subclasses override what they need."""

    def before_run(self, runner): pass
    def after_run(self, runner): pass
    def before_epoch(self, runner): pass
    def after_epoch(self, runner): pass
    def before_iter(self, runner): pass
    def after_iter(self, runner): pass

    def before_train_epoch(self, runner): self.before_epoch(runner)
    def before_val_epoch(self, runner): self.before_epoch(runner)
    def after_train_epoch(self, runner): self.after_epoch(runner)
    def after_val_epoch(self, runner): self.after_epoch(runner)
    def before_train_iter(self, runner): self.before_iter(runner)
    def before_val_iter(self, runner): self.before_iter(runner)
    def after_train_iter(self, runner): self.after_iter(runner)
    def after_val_iter(self, runner): self.after_iter(runner)

    @staticmethod
    def every_n_epochs(runner, n: int) -> bool:
        return n > 0 and (runner.epoch + 1) % n == 0

    @staticmethod
    def every_n_inner_iters(runner, n: int) -> bool:
        return n > 0 and (runner.inner_iter + 1) % n == 0

    @staticmethod
    def every_n_iters(runner, n: int) -> bool:
        return n > 0 and (runner.iter + 1) % n == 0

    @staticmethod
    def end_of_epoch(runner) -> bool:
        return runner.inner_iter + 1 == len(runner.data_loader)

    @staticmethod
    def is_last_epoch(runner) -> bool:
        return runner.epoch + 1 == runner._max_epochs

    @staticmethod
    def is_last_iter(runner) -> bool:
        return runner.iter + 1 == runner._max_iters
