"""``IterTimerHook``: pushes ``data_time`` (waiting for the batch) and ``time`` (whole iteration) into the log buffer."""
from __future__ import annotations

import time

from mmdet.registry import HOOKS

from .hook import Hook


@HOOKS.register_module()
class IterTimerHook(Hook):

    def before_epoch(self, runner):
        self._start = time.time()

    def before_iter(self, runner):
        runner.log_buffer.update({"data_time": time.time() - self._start})

    def after_iter(self, runner):
        runner.log_buffer.update({"time": time.time() - self._start})
        self._start = time.time()
