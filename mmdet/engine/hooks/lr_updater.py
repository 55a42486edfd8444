"""Hyper-parameter schedule hooks with mmcv 1.x names and semantics: ``lr_config`` here,
``momentum_config`` in :mod:`.momentum_updater`, both on the shared :class:`ParamUpdaterHook`.

``lr_config = dict(policy='step', warmup='linear', warmup_iters=500, warmup_ratio=0.001, step=[8, 11])``
becomes ``StepLrUpdaterHook(warmup='linear', ...)`` through :func:`build_lr_hook`
(an all-lower-case policy is title-cased: ``'step'`` -> ``'Step'``; a policy with
capitals such as ``'CosineAnnealing'`` is used as is).

Every group's value is a pure function of ``(runner.epoch, runner.iter)`` and the
group's ``initial_<param>`` (``initial_lr``, ``initial_momentum``; stored in the param
group by ``before_run``, so it travels in the optimizer state_dict): the hooks keep no
schedule state, and a resumed run sets exactly the value an uninterrupted run would.
:meth:`LrUpdaterHook.current_lr` returns that value.

Warmup (global iteration ``t < warmup_iters``, applied on top of the regular value) uses the factor
``constant``: ``f = ratio``; ``linear``: ``f = 1 - (1 - t / warmup_iters) * (1 - ratio)``;
``exp``: ``f = ratio ** (1 - t / warmup_iters)``. The lr is multiplied by ``f`` (it starts low), the
momentum divided by ``f`` (it starts high), as in mmcv. With ``warmup_by_epoch`` (lr only),
``warmup_iters`` counts epochs and is multiplied by ``len(runner.data_loader)``.
"""
from __future__ import annotations

import math
import numbers

from mmdet.registry import HOOKS

from ..registry import build_from_cfg
from .hook import Hook

WARMUP_TYPES = ("constant", "linear", "exp")


# ---- schedule formulas shared by the lr and momentum hooks ------------------------------------------
def annealing_cos(start: float, end: float, factor: float, weight: float = 1.0) -> float:
    """Cosine from ``weight * start + (1 - weight) * end`` (factor 0) to ``end`` (factor 1)."""
    return end + 0.5 * weight * (start - end) * (math.cos(math.pi * factor) + 1)


def annealing_linear(start: float, end: float, factor: float) -> float:
    """Straight line from ``start`` (factor 0) to ``end`` (factor 1)."""
    return start + (end - start) * factor


def anneal_function(anneal_strategy: str):
    """:func:`annealing_cos` for ``'cos'``, :func:`annealing_linear` for ``'linear'``."""
    if anneal_strategy not in ("cos", "linear"):
        raise ValueError(f'"anneal_strategy" must be "cos" or "linear", got {anneal_strategy}')
    return annealing_cos if anneal_strategy == "cos" else annealing_linear


def warmup_factor(warmup: str, cur_iter: int, warmup_iters: int, warmup_ratio: float) -> float:
    """The warmup factor ``f`` of global iteration ``cur_iter < warmup_iters`` (formulas in the module doc)."""
    if warmup == "constant":
        return warmup_ratio
    if warmup == "linear":
        return 1 - (1 - cur_iter / warmup_iters) * (1 - warmup_ratio)
    return warmup_ratio ** (1 - cur_iter / warmup_iters)


def check_step(step):
    """``step`` of a step policy: a list of positive milestones or a positive period."""
    if isinstance(step, (list, tuple)):
        if not all(isinstance(s, int) and s > 0 for s in step):
            raise ValueError(f'"step" must be a list of positive integers, got {step}')
        return list(step)
    if isinstance(step, int):
        if step <= 0:
            raise ValueError(f'"step" must be a positive integer, got {step}')
        return step
    raise TypeError(f'"step" must be a list or integer, got {type(step).__name__}')


def step_decayed(base: float, progress: int, step, gamma: float, floor: float | None) -> float:
    """``max(base * gamma ** k, floor)``: k = number of milestones <= progress, or ``progress // step``."""
    if isinstance(step, int):
        exp = progress // step
    else:
        exp = next((i for i, s in enumerate(step) if progress < s), len(step))
    value = base * gamma ** exp
    return value if floor is None else max(value, floor)


def check_min_value(min_value, min_ratio, owner: str, param: str) -> None:
    """Exactly one of ``min_<param>`` and ``min_<param>_ratio`` must be given."""
    if (min_value is None) == (min_ratio is None):
        raise ValueError(f"{owner}: set exactly one of min_{param} and min_{param}_ratio "
                         f"(got min_{param}={min_value}, min_{param}_ratio={min_ratio})")


def cosine_annealed(base: float, progress: float, max_progress: float, min_value, min_ratio) -> float:
    """Cosine from ``base`` to ``min_value`` (or ``base * min_ratio``):
    ``target + 0.5 * (base - target) * (1 + cos(pi * progress / max_progress))``."""
    target = base * min_ratio if min_ratio is not None else min_value
    return annealing_cos(base, target, progress / max_progress)


def check_iteration_based(by_epoch: bool, owner: str) -> None:
    if by_epoch:
        raise ValueError(f'{owner} only supports "by_epoch" = False')


def check_pct_start(pct_start) -> None:
    if not isinstance(pct_start, float) or not 0 <= pct_start <= 1:
        raise ValueError(f'"pct_start" must be a float in [0, 1], got {pct_start}')


def check_per_group_arg(value, arg: str) -> None:
    """A per-group argument is a number, a list (one per group) or a dict (one entry per optimizer name)."""
    if not isinstance(value, (numbers.Number, list, tuple, dict)):
        raise ValueError(f'"{arg}" should be a number, a list or a dict, got {type(value).__name__}')


def per_group_values(value, name, optim, arg: str) -> list[float]:
    """``value`` (see :func:`check_per_group_arg`) expanded to one number per param group of ``optim``."""
    value = value[name] if isinstance(value, dict) else value
    if isinstance(value, numbers.Number):
        return [value] * len(optim.param_groups)
    if len(value) != len(optim.param_groups):
        raise ValueError(f"{arg} has {len(value)} values but optimizer {name or ''} has "
                         f"{len(optim.param_groups)} param groups")
    return list(value)


def one_cycle_phase_ends(total: int, pct_start: float, three_phase: bool) -> list[float]:
    """Last iteration of each one-cycle phase: ``pct_start * total - 1``, (three_phase:
    ``2 * pct_start * total - 2``), ``total - 1``."""
    ends = [float(pct_start * total) - 1]
    if three_phase:
        ends.append(float(2 * pct_start * total) - 2)
    return ends + [total - 1]


def piecewise_anneal(cur_iter: int, phases: list[tuple[float, float, float]], anneal) -> float:
    """Value at ``cur_iter`` of consecutive phases ``(end_iter, start_value, end_value)`` starting at
    iteration 0: inside a phase ``anneal(start_value, end_value, (cur_iter - start) / (end_iter - start))``,
    where ``start`` is the previous phase's end_iter; past the last phase its end value."""
    phase_start = 0.0
    for end_iter, start_value, end_value in phases:
        if cur_iter <= end_iter:
            return anneal(start_value, end_value, (cur_iter - phase_start) / (end_iter - phase_start))
        phase_start = end_iter
    return phases[-1][2]


def _optimizers(runner) -> dict:
    """``runner.optimizer`` as a dict name -> torch optimizer (a single optimizer is keyed by None)."""
    optimizer = runner.optimizer
    return dict(optimizer) if isinstance(optimizer, dict) else {None: optimizer}


class CyclicSchedule:
    """Mixin for the 'cyclic' policy (iteration based) of lr and momentum hooks.

    Each of ``cyclic_times`` cycles has ``P = max_iters // cyclic_times`` iterations; the
    first ``U = int(step_ratio_up * P)`` go from ``base`` to ``base * peak``, the rest from
    ``base * peak`` to ``base * target_ratio[1]``, with ``anneal_strategy``. In cycle
    ``c = iter // P``: ``peak = 1 - gamma ** c * (1 - target_ratio[0])`` (gamma < 1 shrinks the
    excursion each cycle). ``target_ratio`` may be one number r (read as ``(r, r / 1e5)``).
    """

    def _setup_cyclic(self, by_epoch: bool, target_ratio, cyclic_times: int, step_ratio_up: float,
                      anneal_strategy: str, gamma: float) -> None:
        owner = type(self).__name__
        check_iteration_based(by_epoch, owner)
        if isinstance(target_ratio, numbers.Number):
            target_ratio = (target_ratio, target_ratio / 1e5)
        elif isinstance(target_ratio, (tuple, list)) and len(target_ratio) == 1:
            target_ratio = (target_ratio[0], target_ratio[0] / 1e5)
        if not isinstance(target_ratio, (tuple, list)) or len(target_ratio) != 2:
            raise ValueError(f'{owner}: "target_ratio" must be a float or a tuple of two floats, got {target_ratio}')
        if not 0 <= step_ratio_up < 1.0:
            raise ValueError(f'{owner}: "step_ratio_up" must be in range [0,1), got {step_ratio_up}')
        if not 0 < gamma <= 1:
            raise ValueError(f'{owner}: "gamma" must be in range (0, 1], got {gamma}')
        if not (isinstance(cyclic_times, int) and cyclic_times > 0):
            raise ValueError(f'{owner}: "cyclic_times" must be a positive integer, got {cyclic_times}')
        self.target_ratio = tuple(target_ratio)
        self.cyclic_times = cyclic_times
        self.step_ratio_up = step_ratio_up
        self.gamma = gamma
        self.anneal_func = anneal_function(anneal_strategy)

    def cyclic_value(self, runner, base: float) -> float:
        """The cyclic schedule's value at ``runner.iter`` for a group whose base value is ``base``."""
        iters_per_cycle = runner.max_iters // self.cyclic_times
        if iters_per_cycle < 1:
            raise ValueError(f"{type(self).__name__}: max_iters ({runner.max_iters}) must be >= cyclic_times "
                             f"({self.cyclic_times})")
        up_iters = int(self.step_ratio_up * iters_per_cycle)
        cycle, pos = divmod(runner.iter, iters_per_cycle)
        peak = 1 - self.gamma ** cycle * (1 - self.target_ratio[0])
        if pos < up_iters:
            return self.anneal_func(base, base * peak, pos / up_iters)
        return self.anneal_func(base * peak, base * self.target_ratio[1],
                                (pos - up_iters) / (iters_per_cycle - up_iters))


# ---- the shared mechanism ---------------------------------------------------------------------------
class ParamUpdaterHook(Hook):
    """Schedules one hyper-parameter (``param_name``) of every param group of ``runner.optimizer``
    (a torch optimizer or a dict name -> optimizer; values are then dicts of per-group lists).

    Subclasses set ``param_name`` and define :meth:`read_param` / :meth:`write_param` (how a group
    stores it), :meth:`apply_warmup` (how the warmup factor acts) and :meth:`scheduled_value`
    (the regular value of one group at the runner's epoch / iteration).

    Args:
        by_epoch: the regular schedule advances per epoch (else per iteration).
        warmup: None, 'constant', 'linear' or 'exp'.
        warmup_iters: warmup length in iterations (in epochs with ``warmup_by_epoch``).
        warmup_ratio: warmup factor at the first warmup iteration, in (0, 1].
        warmup_by_epoch: count ``warmup_iters`` in epochs.
    """

    param_name = ""

    def __init__(self, by_epoch: bool, warmup: str | None, warmup_iters: int, warmup_ratio: float,
                 warmup_by_epoch: bool = False):
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
        self.base_values: list[float] | dict[str, list[float]] = []

    # ---- what subclasses define ---------------------------------------------------------------
    @property
    def initial_key(self) -> str:
        """The param-group key holding each group's base value, e.g. ``'initial_lr'``."""
        return f"initial_{self.param_name}"

    def read_param(self, group: dict) -> float:
        return group[self.param_name]

    def write_param(self, group: dict, value: float) -> None:
        group[self.param_name] = value

    def apply_warmup(self, value: float, factor: float) -> float:
        """``value`` during warmup, given the warmup factor ``factor`` (:func:`warmup_factor`)."""
        raise NotImplementedError

    def scheduled_value(self, runner, group: dict) -> float:
        """The regular (un-warmed) value of ``group`` at the runner's epoch / iteration."""
        raise NotImplementedError

    # ---- schedule -----------------------------------------------------------------------------
    def _progress(self, runner) -> tuple[int, int]:
        """(progress, max_progress): epochs or iterations, per ``by_epoch``."""
        if self.by_epoch:
            return runner.epoch, runner.max_epochs
        return runner.iter, runner.max_iters

    def _warmup_iters_for(self, runner) -> int:
        if self.warmup_by_epoch:
            return self.warmup_epochs * len(runner.data_loader)
        return self.warmup_iters

    def _per_group(self, runner, fn):
        """``fn(group)`` for every param group: a list, or a dict of lists for a dict of optimizers."""
        values = {name: [fn(group) for group in optim.param_groups] for name, optim in _optimizers(runner).items()}
        return values if isinstance(runner.optimizer, dict) else values[None]

    def regular_values(self, runner):
        """Regular (un-warmed) value of every group."""
        return self._per_group(runner, lambda group: self.scheduled_value(runner, group))

    def warmup_values(self, cur_iter: int, regular, warmup_iters: int):
        """``regular`` adjusted by the warmup factor of global iteration ``cur_iter`` (< ``warmup_iters``)."""
        factor = warmup_factor(self.warmup, cur_iter, warmup_iters, self.warmup_ratio)
        if isinstance(regular, dict):
            return {name: [self.apply_warmup(v, factor) for v in values] for name, values in regular.items()}
        return [self.apply_warmup(v, factor) for v in regular]

    def current_values(self, runner):
        """The value of every group for the training iteration at ``(runner.epoch, runner.iter)``."""
        regular = self.regular_values(runner)
        warmup_iters = self._warmup_iters_for(runner)
        if self.warmup is None or runner.iter >= warmup_iters:
            return regular
        return self.warmup_values(runner.iter, regular, warmup_iters)

    # ---- hook interface -----------------------------------------------------------------------
    def set_values(self, runner, values) -> None:
        per_optimizer = values if isinstance(values, dict) else {None: values}
        for name, optim in _optimizers(runner).items():
            for group, value in zip(optim.param_groups, per_optimizer[name]):
                self.write_param(group, value)

    def before_run(self, runner) -> None:
        """Record each group's ``initial_<param>`` (kept if already present, e.g. after resuming)."""
        for optim in _optimizers(runner).values():
            for group in optim.param_groups:
                group.setdefault(self.initial_key, self.read_param(group))
        self.base_values = self._per_group(runner, lambda group: group[self.initial_key])

    def before_train_epoch(self, runner) -> None:
        if self.by_epoch:
            self.set_values(runner, self.current_values(runner))

    def before_train_iter(self, runner) -> None:
        self.set_values(runner, self.current_values(runner))


class LrUpdaterHook(ParamUpdaterHook):
    """Base of the lr hooks: subclasses define :meth:`get_lr` (the regular, un-warmed lr of one group).
    During warmup the lr is ``regular * f`` (:func:`warmup_factor`). Args as :class:`ParamUpdaterHook`."""

    param_name = "lr"

    def __init__(self, by_epoch: bool = True, warmup: str | None = None, warmup_iters: int = 0,
                 warmup_ratio: float = 0.1, warmup_by_epoch: bool = False):
        super().__init__(by_epoch, warmup, warmup_iters, warmup_ratio, warmup_by_epoch)

    def get_lr(self, runner, base_lr: float) -> float:
        """The regular lr of a group whose initial lr is ``base_lr`` at the runner's epoch/iter."""
        raise NotImplementedError

    def scheduled_value(self, runner, group: dict) -> float:
        return self.get_lr(runner, group["initial_lr"])

    def apply_warmup(self, value: float, factor: float) -> float:
        return value * factor

    @property
    def base_lr(self):
        """Initial lr of every group (a list, or a dict of lists), recorded by ``before_run``."""
        return self.base_values

    def get_regular_lr(self, runner):
        """Regular (un-warmed) lr of every group: a list, or a dict of lists for a dict of optimizers."""
        return self.regular_values(runner)

    def get_warmup_lr(self, cur_iter: int, regular_lr, warmup_iters: int):
        """``regular_lr`` scaled by the warmup factor of global iteration ``cur_iter`` (< ``warmup_iters``)."""
        return self.warmup_values(cur_iter, regular_lr, warmup_iters)

    def current_lr(self, runner):
        """The lr of every group for the training iteration at ``(runner.epoch, runner.iter)``."""
        return self.current_values(runner)


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
        self.step = check_step(step)
        self.gamma = gamma
        self.min_lr = min_lr
        super().__init__(**kwargs)

    def get_lr(self, runner, base_lr: float) -> float:
        return step_decayed(base_lr, self._progress(runner)[0], self.step, self.gamma, self.min_lr)


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


@HOOKS.register_module()
class CosineAnnealingLrUpdaterHook(LrUpdaterHook):
    """Cosine from base_lr to ``min_lr`` (or ``base_lr * min_lr_ratio``) over max_epochs / max_iters:
    ``lr = target + 0.5 * (base_lr - target) * (1 + cos(pi * progress / max_progress))``."""

    def __init__(self, min_lr: float | None = None, min_lr_ratio: float | None = None, **kwargs):
        check_min_value(min_lr, min_lr_ratio, type(self).__name__, "lr")
        self.min_lr = min_lr
        self.min_lr_ratio = min_lr_ratio
        super().__init__(**kwargs)

    def get_lr(self, runner, base_lr: float) -> float:
        return cosine_annealed(base_lr, *self._progress(runner), self.min_lr, self.min_lr_ratio)


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
        check_min_value(min_lr, min_lr_ratio, type(self).__name__, "lr")
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
class CyclicLrUpdaterHook(CyclicSchedule, LrUpdaterHook):
    """Cyclic lr (CLR, arXiv:1506.01186, with cosine instead of triangular annealing), per iteration.

    With ``P = max_iters // cyclic_times``, ``U = int(step_ratio_up * P)``, cycle ``c = iter // P``,
    position ``p = iter % P`` and ``peak = 1 - gamma ** c * (1 - target_ratio[0])``::

        p <  U: lr = anneal(base_lr, base_lr * peak, p / U)
        p >= U: lr = anneal(base_lr * peak, base_lr * target_ratio[1], (p - U) / (P - U))

    The defaults go up to ``10 * base_lr`` over the first 40 % of the run, then down to ``1e-4 * base_lr``.

    Args:
        by_epoch: must be False.
        target_ratio: (highest, lowest) lr relative to the initial lr; one number r means ``(r, r / 1e5)``.
        cyclic_times: number of cycles.
        step_ratio_up: fraction of each cycle spent increasing, in [0, 1).
        anneal_strategy: 'cos' or 'linear'.
        gamma: cycle decay ratio in (0, 1]: the peak's distance from the initial lr shrinks by gamma per cycle.
    """

    def __init__(self, by_epoch: bool = False, target_ratio=(10, 1e-4), cyclic_times: int = 1,
                 step_ratio_up: float = 0.4, anneal_strategy: str = "cos", gamma: float = 1, **kwargs):
        self._setup_cyclic(by_epoch, target_ratio, cyclic_times, step_ratio_up, anneal_strategy, gamma)
        super().__init__(by_epoch=by_epoch, **kwargs)

    def get_lr(self, runner, base_lr: float) -> float:
        return self.cyclic_value(runner, base_lr)


@HOOKS.register_module()
class OneCycleLrUpdaterHook(LrUpdaterHook):
    """One-cycle policy (per iteration): up from ``max_lr / div_factor`` to ``max_lr``, then down to
    ``max_lr / (div_factor * final_div_factor)`` (three_phase: back to the start lr first).

    ``max_lr`` is a number, a list (one per group) or a dict (one entry per optimizer
    name). The start lr (``max_lr / div_factor``) becomes each group's ``initial_lr``.
    Phase ends: :func:`one_cycle_phase_ends` of ``total_steps`` (default ``max_iters``).
    """

    def __init__(self, max_lr, total_steps: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False, **kwargs):
        check_iteration_based(kwargs.setdefault("by_epoch", False), type(self).__name__)
        check_per_group_arg(max_lr, "max_lr")
        if total_steps is not None and not isinstance(total_steps, int):
            raise ValueError(f'"total_steps" must be an int, got {type(total_steps).__name__}')
        check_pct_start(pct_start)
        self._max_lr = max_lr
        self.total_steps = total_steps
        self.pct_start = pct_start
        self.anneal_func = anneal_function(anneal_strategy)
        self.div_factor = div_factor
        self.final_div_factor = final_div_factor
        self.three_phase = three_phase
        super().__init__(**kwargs)

    def _phases(self, runner, base_lr: float) -> list[tuple[float, float, float]]:
        """(end_iter, start_lr, end_lr) of each phase for a group whose start lr is ``base_lr``."""
        total = self.total_steps if self.total_steps is not None else runner.max_iters
        if total < runner.max_iters:
            raise ValueError(f"total_steps ({total}) must be >= the runner's max_iters ({runner.max_iters})")
        peak, final = base_lr * self.div_factor, base_lr * (1 / self.final_div_factor)
        values = [(base_lr, peak), (peak, base_lr), (base_lr, final)] if self.three_phase \
            else [(base_lr, peak), (peak, final)]
        ends = one_cycle_phase_ends(total, self.pct_start, self.three_phase)
        return [(end, start, stop) for end, (start, stop) in zip(ends, values)]

    def before_run(self, runner) -> None:
        for name, optim in _optimizers(runner).items():
            for group, max_lr in zip(optim.param_groups, per_group_values(self._max_lr, name, optim, "max_lr")):
                group.setdefault("initial_lr", max_lr / self.div_factor)
        super().before_run(runner)

    def get_lr(self, runner, base_lr: float) -> float:
        return piecewise_anneal(runner.iter, self._phases(runner, base_lr), self.anneal_func)


def policy_hook_type(policy: str, suffix: str) -> str:
    """mmcv's ``policy`` -> hook type rule: an all-lower-case policy is title-cased (``'step'`` -> ``'Step'``),
    any other is used as is; ``suffix`` (``'LrUpdaterHook'``, ``'MomentumUpdaterHook'``) is appended."""
    return (policy.title() if policy == policy.lower() else policy) + suffix


def build_policy_hook(config: dict | Hook | None, config_name: str, suffix: str, example_policy: str,
                      example_config: str) -> Hook | None:
    """The hook for a ``policy=...`` config such as ``lr_config`` (mmcv ``register_lr_hook`` naming rule).

    ``policy`` + ``suffix`` is the registered type (see :func:`policy_hook_type`). A Hook instance is
    returned as is, None gives None. ``config`` is not modified. ``example_policy`` / ``example_config``
    show valid values in the error messages.
    """
    if config is None or isinstance(config, Hook):
        return config
    if not isinstance(config, dict):
        raise TypeError(f"{config_name} must be a dict such as {example_config}, got {type(config).__name__}")
    cfg = dict(config)
    if "policy" not in cfg:
        raise KeyError(f"{config_name} has no 'policy' key (e.g. policy='{example_policy}'): {config!r}")
    cfg["type"] = policy_hook_type(cfg.pop("policy"), suffix)
    return build_from_cfg(cfg, HOOKS)


def build_lr_hook(lr_config: dict | Hook | None) -> Hook | None:
    """The lr hook for a config's ``lr_config``: ``policy='step'`` -> ``StepLrUpdaterHook`` (see
    :func:`build_policy_hook`)."""
    return build_policy_hook(lr_config, "lr_config", "LrUpdaterHook", "step", "dict(policy='step', step=[8, 11])")
