"""Momentum schedule hooks with mmcv 1.x names and semantics (``momentum_config`` in configs).

``momentum_config = dict(policy='cyclic', target_ratio=(0.85 / 0.95, 1), cyclic_times=1, step_ratio_up=0.4)``
becomes ``CyclicMomentumUpdaterHook(...)`` (same naming rule as ``lr_config``: an all-lower-case
policy is title-cased, then ``'MomentumUpdaterHook'`` is appended; :func:`build_momentum_hook`).

The scheduled value is a group's ``momentum`` (SGD, RMSprop) or ``betas[0]`` (Adam, AdamW;
``betas[1]`` is kept); its base value is recorded in the group's ``initial_momentum``. The
mechanism (per-group update, warmup, epoch / iteration progress, dict of optimizers, resume)
is :class:`~.lr_updater.ParamUpdaterHook`, shared with the lr hooks. Warmup divides the regular
momentum by the lr warmup factor ``f`` (so it starts high): ``constant``: ``m / ratio``;
``linear``: ``m / (1 - (1 - t / warmup_iters) * (1 - ratio))``; ``exp``: ``m / ratio ** (1 - t / warmup_iters)``.
"""
from __future__ import annotations

from mmdet.registry import HOOKS

from .hook import Hook
from .lr_updater import (CyclicSchedule, ParamUpdaterHook, _optimizers, anneal_function, build_policy_hook,
                         check_iteration_based, check_min_value, check_pct_start, check_per_group_arg, check_step,
                         cosine_annealed, one_cycle_phase_ends, per_group_values, piecewise_anneal, step_decayed)


class MomentumUpdaterHook(ParamUpdaterHook):
    """Base of the momentum hooks: subclasses define :meth:`get_momentum` (the regular momentum of one group).

    Args:
        by_epoch: the regular schedule advances per epoch (else per iteration).
        warmup: None, 'constant', 'linear' or 'exp'.
        warmup_iters: warmup length in iterations.
        warmup_ratio: in (0, 1]; the first warmup iteration's momentum is ``regular / warmup_ratio``.
    """

    param_name = "momentum"

    def __init__(self, by_epoch: bool = True, warmup: str | None = None, warmup_iters: int = 0,
                 warmup_ratio: float = 0.9):
        super().__init__(by_epoch, warmup, warmup_iters, warmup_ratio)

    def read_param(self, group: dict) -> float:
        if "momentum" in group:
            return group["momentum"]
        if "betas" in group:
            return group["betas"][0]
        keys = sorted(k for k in group if k != "params")
        raise ValueError(f"{type(self).__name__}: a param group has neither 'momentum' (SGD, RMSprop) nor 'betas' "
                         f"(Adam, AdamW), so momentum_config cannot schedule it; its keys: {keys}")

    def write_param(self, group: dict, value: float) -> None:
        if "momentum" in group:
            group["momentum"] = value
        else:
            group["betas"] = (value, group["betas"][1])

    def apply_warmup(self, value: float, factor: float) -> float:
        return value / factor

    def get_momentum(self, runner, base_momentum: float) -> float:
        """The regular momentum of a group whose initial momentum is ``base_momentum`` at the runner's epoch/iter."""
        raise NotImplementedError

    def scheduled_value(self, runner, group: dict) -> float:
        return self.get_momentum(runner, group["initial_momentum"])

    @property
    def base_momentum(self):
        """Initial momentum of every group (a list, or a dict of lists), recorded by ``before_run``."""
        return self.base_values

    def get_regular_momentum(self, runner):
        """Regular (un-warmed) momentum of every group: a list, or a dict of lists for a dict of optimizers."""
        return self.regular_values(runner)

    def get_warmup_momentum(self, cur_iter: int, regular_momentum, warmup_iters: int):
        """``regular_momentum`` divided by the warmup factor of global iteration ``cur_iter`` (< ``warmup_iters``)."""
        return self.warmup_values(cur_iter, regular_momentum, warmup_iters)

    def current_momentum(self, runner):
        """The momentum of every group for the training iteration at ``(runner.epoch, runner.iter)``."""
        return self.current_values(runner)


@HOOKS.register_module()
class StepMomentumUpdaterHook(MomentumUpdaterHook):
    """``momentum = max(base_momentum * gamma ** k, min_momentum)``, k = number of milestones <= progress
    (or ``progress // step`` for an int).

    Args:
        step: milestone list (epochs or iterations) or a period.
        gamma: decay factor per milestone.
        min_momentum: lower bound of the momentum, or None.
    """

    def __init__(self, step: int | list[int], gamma: float = 0.5, min_momentum: float | None = None, **kwargs):
        self.step = check_step(step)
        self.gamma = gamma
        self.min_momentum = min_momentum
        super().__init__(**kwargs)

    def get_momentum(self, runner, base_momentum: float) -> float:
        return step_decayed(base_momentum, self._progress(runner)[0], self.step, self.gamma, self.min_momentum)


@HOOKS.register_module()
class CosineAnnealingMomentumUpdaterHook(MomentumUpdaterHook):
    """Cosine from the base momentum to ``min_momentum`` (or ``base * min_momentum_ratio``) over
    max_epochs / max_iters: ``m = target + 0.5 * (base - target) * (1 + cos(pi * progress / max_progress))``."""

    def __init__(self, min_momentum: float | None = None, min_momentum_ratio: float | None = None, **kwargs):
        check_min_value(min_momentum, min_momentum_ratio, type(self).__name__, "momentum")
        self.min_momentum = min_momentum
        self.min_momentum_ratio = min_momentum_ratio
        super().__init__(**kwargs)

    def get_momentum(self, runner, base_momentum: float) -> float:
        return cosine_annealed(base_momentum, *self._progress(runner), self.min_momentum, self.min_momentum_ratio)


@HOOKS.register_module()
class CyclicMomentumUpdaterHook(CyclicSchedule, MomentumUpdaterHook):
    """Cyclic momentum, the mirror of :class:`~.lr_updater.CyclicLrUpdaterHook` (per iteration).

    With ``P = max_iters // cyclic_times``, ``U = int(step_ratio_up * P)``, cycle ``c = iter // P``,
    position ``p = iter % P`` and ``low = 1 - gamma ** c * (1 - target_ratio[0])``::

        p <  U: m = anneal(base, base * low, p / U)
        p >= U: m = anneal(base * low, base * target_ratio[1], (p - U) / (P - U))

    The defaults take momentum 0.95 down to 0.85 while the cyclic lr rises, then back to 0.95.

    Args:
        by_epoch: must be False.
        target_ratio: momentum at the end of the up / down phases relative to the initial momentum.
        cyclic_times: number of cycles.
        step_ratio_up: fraction of each cycle in the first phase, in [0, 1).
        anneal_strategy: 'cos' or 'linear'.
        gamma: cycle decay ratio in (0, 1]: the excursion from the initial momentum shrinks by gamma per cycle.
    """

    def __init__(self, by_epoch: bool = False, target_ratio=(0.85 / 0.95, 1), cyclic_times: int = 1,
                 step_ratio_up: float = 0.4, anneal_strategy: str = "cos", gamma: float = 1, **kwargs):
        self._setup_cyclic(by_epoch, target_ratio, cyclic_times, step_ratio_up, anneal_strategy, gamma)
        super().__init__(by_epoch=by_epoch, **kwargs)

    def get_momentum(self, runner, base_momentum: float) -> float:
        return self.cyclic_value(runner, base_momentum)


@HOOKS.register_module()
class OneCycleMomentumUpdaterHook(MomentumUpdaterHook):
    """One-cycle momentum (per iteration), the mirror of :class:`~.lr_updater.OneCycleLrUpdaterHook`.

    Phase ends (:func:`~.lr_updater.one_cycle_phase_ends` of ``max_iters``) ``e1 = pct_start * max_iters - 1``,
    (three_phase: ``e2 = 2 * pct_start * max_iters - 2``), ``max_iters - 1``; inside each phase
    ``anneal(start, end, (iter - previous end) / (end - previous end))`` with (start, end):
    ``max -> base``, ``base -> max`` (three_phase: then ``max -> max``). ``before_run`` stores each
    group's ``base_momentum`` / ``max_momentum`` in the group (kept when resuming) and sets its momentum to max.

    Args:
        base_momentum / max_momentum: lower / upper momentum; a number, a list (one per group) or
            a dict (one entry per optimizer name).
        pct_start: fraction of the run in the first phase.
        anneal_strategy: 'cos' or 'linear'.
        three_phase: use the three-phase schedule.
    """

    def __init__(self, base_momentum=0.85, max_momentum=0.95, pct_start: float = 0.3, anneal_strategy: str = "cos",
                 three_phase: bool = False, **kwargs):
        check_iteration_based(kwargs.setdefault("by_epoch", False), type(self).__name__)
        check_per_group_arg(base_momentum, "base_momentum")
        check_per_group_arg(max_momentum, "max_momentum")
        check_pct_start(pct_start)
        self._base_momentum = base_momentum
        self._max_momentum = max_momentum
        self.pct_start = pct_start
        self.anneal_func = anneal_function(anneal_strategy)
        self.three_phase = three_phase
        super().__init__(**kwargs)

    def before_run(self, runner) -> None:
        for name, optim in _optimizers(runner).items():
            lows = per_group_values(self._base_momentum, name, optim, "base_momentum")
            highs = per_group_values(self._max_momentum, name, optim, "max_momentum")
            for group, low, high in zip(optim.param_groups, lows, highs):
                group.setdefault("base_momentum", low)
                group.setdefault("max_momentum", high)
                self.write_param(group, group["max_momentum"])
        super().before_run(runner)

    def get_momentum(self, runner, param_group: dict) -> float:
        """The momentum of ``param_group`` (holding ``base_momentum`` / ``max_momentum``) at ``runner.iter``."""
        low, high = param_group["base_momentum"], param_group["max_momentum"]
        values = [(high, low), (low, high), (high, high)] if self.three_phase else [(high, low), (low, high)]
        ends = one_cycle_phase_ends(runner.max_iters, self.pct_start, self.three_phase)
        phases = [(end, start, stop) for end, (start, stop) in zip(ends, values)]
        return piecewise_anneal(runner.iter, phases, self.anneal_func)

    def scheduled_value(self, runner, group: dict) -> float:
        return self.get_momentum(runner, group)


def build_momentum_hook(momentum_config: dict | Hook | None) -> Hook | None:
    """The momentum hook for a config's ``momentum_config``: ``policy='cyclic'`` -> ``CyclicMomentumUpdaterHook``
    (see :func:`~.lr_updater.build_policy_hook`)."""
    return build_policy_hook(momentum_config, "momentum_config", "MomentumUpdaterHook", "cyclic",
                             "dict(policy='cyclic', target_ratio=(0.85 / 0.95, 1), cyclic_times=1, step_ratio_up=0.4)")
