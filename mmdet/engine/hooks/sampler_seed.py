"""``DistSamplerSeedHook``: reshuffle distributed samplers differently every epoch (``sampler.set_epoch``)."""
from __future__ import annotations

from mmdet.registry import HOOKS

from .hook import Hook


@HOOKS.register_module()
class DistSamplerSeedHook(Hook):

    def before_epoch(self, runner):
        loader = runner.data_loader
        for sampler in (loader.sampler, getattr(loader.batch_sampler, "sampler", None)):
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(runner.epoch)
                return
