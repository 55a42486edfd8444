"""Learning-rate schedule hooks with mmcv 1.x names and semantics (``lr_config`` in configs).

``lr_config = dict(policy='step', warmup='linear', warmup_iters=500, warmup_ratio=0.001, step=[8, 11])``
becomes ``StepLrUpdaterHook(warmup='linear', ...)`` through :func:`build_lr_hook`
(an all-lower-case policy is title-cased: ``'step'`` -> ``'Step'``; a policy with
capitals such as ``'CosineAnnealing'`` is used as is).

Every group's lr is a pure function of ``(runner.epoch, runner.iter)`` and the
group's ``initial_lr`` (stored in the param group by ``before_run``, so it travels
in the optimizer state_dict): the hooks keep no schedule state, and a resumed run
sets exactly the lr an uninterrupted run would. :meth:`LrUpdaterHook.current_lr`
returns that value.

Warmup (global iteration ``t < warmup_iters``, applied on top of the regular lr):
``constant``: ``lr * ratio``; ``linear``: ``lr * (1 - (1 - t / warmup_iters) * (1 - ratio))``;
``exp``: ``lr * ratio ** (1 - t / warmup_iters)``. With ``warmup_by_epoch``,
``warmup_iters`` counts epochs and is multiplied by ``len(runner.data_loader)``.
"""
from __future__ import annotations

import math
import numbers

from mmdet.registry import HOOKS

from ..registry import build_from_cfg
from .hook import Hook

WARMUP_TYPES = ("constant", "linear", "exp")


def annealing_cos(start: float, end: float, factor: float, weight: float = 1.0) -> float:
    """Cosine from ``weight * start + (1 - weight) * end`` (factor 0) to ``end`` (factor 1)."""
    return end + 0.5 * weight * (start - end) * (math.cos(math.pi * factor) + 1)


def annealing_linear(start: float, end: float, factor: float) -> float:
    """Straight line from ``start`` (factor 0) to ``end`` (factor 1)."""
    return start + (end - start) * factor


def _optimizers(runner) -> dict:
    """``runner.optimizer`` as a dict name -> torch optimizer (a single optimizer is keyed by None)."""
    optimizer = runner.optimizer
    return dict(optimizer) if isinstance(optimizer, dict) else {None: optimizer}


class LrUpdaterHook(Hook):
    """Base class: subclasses define :meth:`get_lr` (the regular, un-warmed lr of one group).

    Args:
        by_epoch: the regular schedule advances per epoch (else per iteration).
        warmup: None, 'constant', 'linear' or 'exp'.
        warmup_iters: warmup length in iterations (in epochs with ``warmup_by_epoch``).
        warmup_ratio: lr factor at the first warmup iteration, in (0, 1].
        warmup_by_epoch: count ``warmup_iters`` in epochs.
    """

    def __init__(self, by_epoch: bool = True, warmup: str | None = None, warmup_iters: int = 0,
                 warmup_ratio: float = 0.1, warmup_by_epoch: bool = False):
        if warmup is not None:
            if warmup not in WARMUP_TYPES:
                raise ValueError(f'"{warmup}" is not a supported type for warming up, valid types are '
                                 f'{", ".join(WARMUP_TYPES)}')
            if not warmup_iters > 0:
                raise ValueError(f'"warmup_iters" must be a positive integer, got {warmup_iters}')
            if not 0 < warmup_ratio <= 1.0:
                raise ValueError(f'"warmup_ratio" must be in range (0,1], got {warmup_ratio}')
        self.by_epoch = by_epoch
        self.warmup = warmup
        self.warmup_ratio = warmup_ratio
        self.warmup_by_epoch = warmup_by_epoch
        self.warmup_epochs = warmup_iters if warmup_by_epoch else None
        self.warmup_iters = None if warmup_by_epoch else warmup_iters
        self.base_lr: list[float] | dict[str, list[float]] = []

    # ---- schedule -----------------------------------------------------------------------
    def get_lr(self, runner, base_lr: float) -> float:
        """The regular lr of a group whose initial lr is ``base_lr`` at the runner's epoch/iter."""
        raise NotImplementedError

    def _progress(self, runner) -> tuple[int, int]:
        """(progress, max_progress): epochs or iterations, per ``by_epoch``."""
        if self.by_epoch:
            return runner.epoch, runner.max_epochs
        return runner.iter, runner.max_iters

    def _base_lrs(self, runner) -> dict:
        """Initial lr of every group, keyed like :func:`_optimizers`."""
        return {name: [group["initial_lr"] for group in optim.param_groups]
                for name, optim in _optimizers(runner).items()}

    def _warmup_iters_for(self, runner) -> int:
        if self.warmup_by_epoch:
            return self.warmup_epochs * len(runner.data_loader)
        return self.warmup_iters

    def get_regular_lr(self, runner) -> list[float] | dict[str, list[float]]:
        """Regular (un-warmed) lr of every group: a list, or a dict of lists for a dict of optimizers."""
        lrs = {name: [self.get_lr(runner, lr) for lr in base] for name, base in self._base_lrs(runner).items()}
        return lrs if isinstance(runner.optimizer, dict) else lrs[None]

    def get_warmup_lr(self, cur_iter: int, regular_lr: list[float] | dict[str, list[float]], warmup_iters: int):
        """``regular_lr`` scaled by the warmup factor of global iteration ``cur_iter`` (< ``warmup_iters``)."""
        if self.warmup == "constant":
            factor = self.warmup_ratio
        elif self.warmup == "linear":
            factor = 1 - (1 - cur_iter / warmup_iters) * (1 - self.warmup_ratio)
        else:
            factor = self.warmup_ratio ** (1 - cur_iter / warmup_iters)
        if isinstance(regular_lr, dict):
            return {name: [lr * factor for lr in lrs] for name, lrs in regular_lr.items()}
        return [lr * factor for lr in regular_lr]

    def current_lr(self, runner) -> list[float] | dict[str, list[float]]:
        """The lr of every group for the training iteration at ``(runner.epoch, runner.iter)``."""
        regular = self.get_regular_lr(runner)
        warmup_iters = self._warmup_iters_for(runner)
        if self.warmup is None or runner.iter >= warmup_iters:
            return regular
        return self.get_warmup_lr(runner.iter, regular, warmup_iters)

    # ---- hook interface -----------------------------------------------------------------
    def _set_lr(self, runner, lr_groups) -> None:
        per_optimizer = lr_groups if isinstance(lr_groups, dict) else {None: lr_groups}
        for name, optim in _optimizers(runner).items():
            for group, lr in zip(optim.param_groups, per_optimizer[name]):
                group["lr"] = lr

    def before_run(self, runner) -> None:
        """Record each group's ``initial_lr`` (kept if already present, e.g. after resuming)."""
        for optim in _optimizers(runner).values():
            for group in optim.param_groups:
                group.setdefault("initial_lr", group["lr"])
        base = self._base_lrs(runner)
        self.base_lr = base if isinstance(runner.optimizer, dict) else base[None]

    def before_train_epoch(self, runner) -> None:
        if self.by_epoch:
            self._set_lr(runner, self.current_lr(runner))

    def before_train_iter(self, runner) -> None:
        self._set_lr(runner, self.current_lr(runner))


@HOOKS.register_module()
class FixedLrUpdaterHook(LrUpdaterHook):
    """Constant lr (only warmup changes it)."""

    def get_lr(self, runner, base_lr: float) -> float:
        return base_lr


@HOOKS.register_module()
class StepLrUpdaterHook(LrUpdaterHook):
    """``lr = base_lr * gamma ** k``, k = number of milestones <= progress (or progress // step for an int).

    Args:
        step: milestone list (epochs or iterations) or a period.
        gamma: decay factor per milestone.
        min_lr: lower bound of the lr, or None.
    """

    def __init__(self, step: int | list[int], gamma: float = 0.1, min_lr: float | None = None, **kwargs):
        if isinstance(step, (list, tuple)):
            if not all(isinstance(s, int) and s > 0 for s in step):
                raise ValueError(f'"step" must be a list of positive integers, got {step}')
            step = list(step)
        elif isinstance(step, int):
            if step <= 0:
                raise ValueError(f'"step" must be a positive integer, got {step}')
        else:
            raise TypeError(f'"step" must be a list or integer, got {type(step).__name__}')
        self.step = step
        self.gamma = gamma
        self.min_lr = min_lr
        super().__init__(**kwargs)

    def get_lr(self, runner, base_lr: float) -> float:
        progress = runner.epoch if self.by_epoch else runner.iter
        if isinstance(self.step, int):
            exp = progress // self.step
        else:
            exp = next((i for i, s in enumerate(self.step) if progress < s), len(self.step))
        lr = base_lr * self.gamma ** exp
        return lr if self.min_lr is None else max(lr, self.min_lr)


@HOOKS.register_module()
class ExpLrUpdaterHook(LrUpdaterHook):
    """``lr = base_lr * gamma ** progress``."""

    def __init__(self, gamma: float, **kwargs):
        self.gamma = gamma
        super().__init__(**kwargs)

    def get_lr(self, runner, base_lr: float) -> float:
        return base_lr * self.gamma ** self._progress(runner)[0]


@HOOKS.register_module()
class PolyLrUpdaterHook(LrUpdaterHook):
    """``lr = (base_lr - min_lr) * (1 - progress / max_progress) ** power + min_lr``."""

    def __init__(self, power: float = 1.0, min_lr: float = 0.0, **kwargs):
        self.power = power
        self.min_lr = min_lr
        super().__init__(**kwargs)

    def get_lr(self, runner, base_lr: float) -> float:
        progress, max_progress = self._progress(runner)
        coeff = (1 - progress / max_progress) ** self.power
        return (base_lr - self.min_lr) * coeff + self.min_lr


@HOOKS.register_module()
class InvLrUpdaterHook(LrUpdaterHook):
    """``lr = base_lr * (1 + gamma * progress) ** -power``."""

    def __init__(self, gamma: float, power: float = 1.0, **kwargs):
        self.gamma = gamma
        self.power = power
        super().__init__(**kwargs)

    def get_lr(self, runner, base_lr: float) -> float:
        return base_lr * (1 + self.gamma * self._progress(runner)[0]) ** (-self.power)


def _check_min_lr(min_lr, min_lr_ratio, name: str) -> None:
    if (min_lr is None) == (min_lr_ratio is None):
        raise ValueError(f"{name}: set exactly one of min_lr and min_lr_ratio "
                         f"(got min_lr={min_lr}, min_lr_ratio={min_lr_ratio})")


@HOOKS.register_module()
class CosineAnnealingLrUpdaterHook(LrUpdaterHook):
    """Cosine from base_lr to ``min_lr`` (or ``base_lr * min_lr_ratio``) over max_epochs / max_iters."""

    def __init__(self, min_lr: float | None = None, min_lr_ratio: float | None = None, **kwargs):
        _check_min_lr(min_lr, min_lr_ratio, type(self).__name__)
        self.min_lr = min_lr
        self.min_lr_ratio = min_lr_ratio
        super().__init__(**kwargs)

    def get_lr(self, runner, base_lr: float) -> float:
        progress, max_progress = self._progress(runner)
        target = base_lr * self.min_lr_ratio if self.min_lr_ratio is not None else self.min_lr
        return annealing_cos(base_lr, target, progress / max_progress)


@HOOKS.register_module()
class CosineRestartLrUpdaterHook(LrUpdaterHook):
    """Cosine annealing restarted at the end of each period (SGDR).

    Args:
        periods: length of each cycle (epochs or iterations).
        restart_weights: lr weight of each cycle's start (same length as ``periods``).
        min_lr / min_lr_ratio: exactly one, the lr at the end of each cycle.
    """

    def __init__(self, periods: list[int], restart_weights: list[float] = (1,), min_lr: float | None = None,
                 min_lr_ratio: float | None = None, **kwargs):
        _check_min_lr(min_lr, min_lr_ratio, type(self).__name__)
        if len(periods) != len(restart_weights):
            raise ValueError(f"periods {list(periods)} and restart_weights {list(restart_weights)} should have "
                             f"the same length")
        self.periods = list(periods)
        self.restart_weights = list(restart_weights)
        self.min_lr = min_lr
        self.min_lr_ratio = min_lr_ratio
        self.cumulative_periods = [sum(self.periods[:i + 1]) for i in range(len(self.periods))]
        super().__init__(**kwargs)

    def get_lr(self, runner, base_lr: float) -> float:
        progress = self._progress(runner)[0]
        target = base_lr * self.min_lr_ratio if self.min_lr_ratio is not None else self.min_lr
        idx = next((i for i, end in enumerate(self.cumulative_periods) if progress < end), None)
        if idx is None:
            raise ValueError(f"Current iteration {progress} exceeds cumulative_periods {self.cumulative_periods}")
        cycle_start = 0 if idx == 0 else self.cumulative_periods[idx - 1]
        alpha = min((progress - cycle_start) / self.periods[idx], 1)
        return annealing_cos(base_lr, target, alpha, self.restart_weights[idx])


@HOOKS.register_module()
class OneCycleLrUpdaterHook(LrUpdaterHook):
    """One-cycle policy (per iteration): up from ``max_lr / div_factor`` to ``max_lr``, then down to
    ``max_lr / (div_factor * final_div_factor)`` (three_phase: back to the start lr first).

    ``max_lr`` is a number, a list (one per group) or a dict (one entry per optimizer
    name). The start lr (``max_lr / div_factor``) becomes each group's ``initial_lr``.
    """

    def __init__(self, max_lr, total_steps: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False, **kwargs):
        if kwargs.setdefault("by_epoch", False):
            raise ValueError('OneCycleLrUpdaterHook only supports "by_epoch" = False')
        if not isinstance(max_lr, (numbers.Number, list, tuple, dict)):
            raise ValueError(f'"max_lr" should be a number, a list or a dict, got {type(max_lr).__name__}')
        if total_steps is not None and not isinstance(total_steps, int):
            raise ValueError(f'"total_steps" must be an int, got {type(total_steps).__name__}')
        if not isinstance(pct_start, float) or not 0 <= pct_start <= 1:
            raise ValueError(f'"pct_start" must be a float in [0, 1], got {pct_start}')
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f'"anneal_strategy" must be "cos" or "linear", got {anneal_strategy}')
        self._max_lr = max_lr
        self.total_steps = total_steps
        self.pct_start = pct_start
        self.anneal_func = annealing_cos if anneal_strategy == "cos" else annealing_linear
        self.div_factor = div_factor
        self.final_div_factor = final_div_factor
        self.three_phase = three_phase
        super().__init__(**kwargs)

    def _max_lrs(self, name, optim) -> list[float]:
        value = self._max_lr[name] if isinstance(self._max_lr, dict) else self._max_lr
        if isinstance(value, numbers.Number):
            return [value] * len(optim.param_groups)
        if len(value) != len(optim.param_groups):
            raise ValueError(f"max_lr has {len(value)} values but optimizer {name or ''} has "
                             f"{len(optim.param_groups)} param groups")
        return list(value)

    def _phases(self, runner) -> list[tuple[float, float, float]]:
        """(end_iter, start_factor, end_factor) of each phase, factors relative to the start lr."""
        total = self.total_steps if self.total_steps is not None else runner.max_iters
        if total < runner.max_iters:
            raise ValueError(f"total_steps ({total}) must be >= the runner's max_iters ({runner.max_iters})")
        up_end = float(self.pct_start * total) - 1
        if self.three_phase:
            return [(up_end, 1, self.div_factor), (float(2 * self.pct_start * total) - 2, self.div_factor, 1),
                    (total - 1, 1, 1 / self.final_div_factor)]
        return [(up_end, 1, self.div_factor), (total - 1, self.div_factor, 1 / self.final_div_factor)]

    def before_run(self, runner) -> None:
        for name, optim in _optimizers(runner).items():
            for group, max_lr in zip(optim.param_groups, self._max_lrs(name, optim)):
                group.setdefault("initial_lr", max_lr / self.div_factor)
        super().before_run(runner)

    def get_lr(self, runner, base_lr: float) -> float:
        phase_start = 0.0
        phases = self._phases(runner)
        for end_iter, start_factor, end_factor in phases:
            if runner.iter <= end_iter:
                pct = (runner.iter - phase_start) / (end_iter - phase_start)
                return self.anneal_func(base_lr * start_factor, base_lr * end_factor, pct)
            phase_start = end_iter
        return base_lr * phases[-1][2]


def policy_hook_type(policy: str, suffix: str) -> str:
    """mmcv's ``policy`` -> hook type rule: an all-lower-case policy is title-cased (``'step'`` -> ``'Step'``),
    any other is used as is; ``suffix`` (``'LrUpdaterHook'``, ``'MomentumUpdaterHook'``) is appended."""
    return (policy.title() if policy == policy.lower() else policy) + suffix


def build_lr_hook(lr_config: dict | Hook | None) -> Hook | None:
    """The lr hook for a config's ``lr_config`` (mmcv ``register_lr_hook`` naming rule).

    ``policy`` + ``'LrUpdaterHook'`` is the registered type; an all-lower-case policy is
    title-cased first (``'step'`` -> ``StepLrUpdaterHook``). A Hook instance is returned
    as is, None gives None. ``lr_config`` is not modified.
    """
    if lr_config is None or isinstance(lr_config, Hook):
        return lr_config
    if not isinstance(lr_config, dict):
        raise TypeError(f"lr_config must be a dict such as dict(policy='step', step=[8, 11]), "
                        f"got {type(lr_config).__name__}")
    cfg = dict(lr_config)
    if "policy" not in cfg:
        raise KeyError(f"lr_config has no 'policy' key (e.g. policy='step'): {lr_config!r}")
    cfg["type"] = policy_hook_type(cfg.pop("policy"), "LrUpdaterHook")
    return build_from_cfg(cfg, HOOKS)
