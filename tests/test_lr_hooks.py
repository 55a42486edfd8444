"""LR updater hooks: schedule values at chosen epochs/iterations (mmcv 1.x semantics, spec §2.10 / §3.12)."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mmdet.engine.hooks.lr_updater import (CosineAnnealingLrUpdaterHook, FixedLrUpdaterHook, OneCycleLrUpdaterHook,
                                           StepLrUpdaterHook, build_lr_hook)
from mmdet.registry import HOOKS


class FakeRunner:
    """The runner attributes LR hooks read."""

    def __init__(self, optimizer, iters_per_epoch: int, max_epochs: int | None = None, max_iters: int | None = None):
        self.optimizer = optimizer
        self.data_loader = range(iters_per_epoch)
        self.max_epochs = max_epochs
        self.max_iters = max_iters if max_iters is not None else (max_epochs or 0) * iters_per_epoch
        self.epoch = 0
        self.iter = 0


def _optimizer(*lrs: float) -> torch.optim.Optimizer:
    return torch.optim.SGD([{"params": [nn.Parameter(torch.zeros(1))], "lr": lr} for lr in lrs], lr=lrs[0])


def _train(hook, runner, start_epoch: int = 0) -> dict[int, list[float]]:
    """Run the hook like EpochBasedRunner from ``start_epoch``; global iter -> lr of every group."""
    seen = {}
    runner.epoch = start_epoch
    runner.iter = start_epoch * len(runner.data_loader)
    hook.before_run(runner)
    for epoch in range(start_epoch, runner.max_epochs):
        runner.epoch = epoch
        hook.before_train_epoch(runner)
        for _ in runner.data_loader:
            hook.before_train_iter(runner)
            seen[runner.iter] = [g["lr"] for g in runner.optimizer.param_groups]
            runner.iter += 1
    return seen


def _schedule_1x(**overrides) -> dict:
    cfg = dict(policy="step", warmup="linear", warmup_iters=500, warmup_ratio=0.001, step=[8, 11])
    cfg.update(overrides)
    return cfg


def test_build_lr_hook_naming_rule():
    cfg = _schedule_1x()
    hook = build_lr_hook(cfg)
    assert type(hook) is StepLrUpdaterHook and hook.step == [8, 11] and hook.warmup_iters == 500
    assert cfg == _schedule_1x()  # not modified
    assert type(build_lr_hook(dict(policy="CosineAnnealing", min_lr=0.0))) is CosineAnnealingLrUpdaterHook
    assert type(build_lr_hook(dict(policy="fixed"))) is FixedLrUpdaterHook
    assert build_lr_hook(None) is None and build_lr_hook(hook) is hook
    with pytest.raises(KeyError, match="'CosineannealingLrUpdaterHook' is not registered in the hook registry; "
                                       "did you mean 'CosineAnnealingLrUpdaterHook'"):
        build_lr_hook(dict(policy="cosineannealing", min_lr=0.0))  # all lower case -> title-cased, as mmcv
    with pytest.raises(KeyError, match="lr_config has no 'policy' key"):
        build_lr_hook(dict(step=[8, 11]))
    with pytest.raises(TypeError, match="StepLrUpdaterHook .*could not be built.*missing 1 required positional "
                                        "argument: 'step'"):
        build_lr_hook(dict(policy="step", steps=[8, 11]))
    for name in ("FixedLrUpdaterHook", "StepLrUpdaterHook", "ExpLrUpdaterHook", "PolyLrUpdaterHook",
                 "InvLrUpdaterHook", "CosineAnnealingLrUpdaterHook", "CosineRestartLrUpdaterHook",
                 "OneCycleLrUpdaterHook"):
        assert name in HOOKS


def test_seed_schedule_linear_warmup_then_steps_by_epoch():
    """AdamW 1e-4, linear warmup 500 iters from 0.001x, step [8, 11]; two groups scale proportionally."""
    runner = FakeRunner(_optimizer(1e-4, 2.5e-5), iters_per_epoch=100, max_epochs=12)
    lrs = _train(build_lr_hook(_schedule_1x()), runner)
    assert lrs[0] == pytest.approx([1e-7, 2.5e-8], rel=1e-12)
    assert lrs[49][0] == pytest.approx(9.8902e-06, rel=1e-12)  # spec §3.12 example (logged as 1e-05)
    assert lrs[49][1] == pytest.approx(9.8902e-06 / 4, rel=1e-12)
    assert lrs[250][0] == pytest.approx(1e-4 * (1 - 0.5 * 0.999), rel=1e-12)
    assert lrs[499][0] == pytest.approx(1e-4 * (1 - 0.002 * 0.999), rel=1e-12)
    assert lrs[500] == [1e-4, 2.5e-5]
    assert lrs[799] == [1e-4, 2.5e-5]  # last iteration of epoch 8 (0-based 7)
    assert lrs[800] == pytest.approx([1e-5, 2.5e-6])  # epoch 9
    assert lrs[1099] == pytest.approx([1e-5, 2.5e-6])
    assert lrs[1100] == pytest.approx([1e-6, 2.5e-7])  # epoch 12
    assert [g["initial_lr"] for g in runner.optimizer.param_groups] == [1e-4, 2.5e-5]


def test_vitdet_schedule_warmup_ratio_and_steps():
    runner = FakeRunner(_optimizer(1e-4), iters_per_epoch=50, max_epochs=25)
    lrs = _train(build_lr_hook(_schedule_1x(warmup_iters=250, warmup_ratio=0.067, step=[22, 24])), runner)
    assert lrs[0][0] == pytest.approx(6.7e-6)
    assert lrs[100][0] == pytest.approx(1e-4 * (1 - 0.6 * 0.933))
    assert lrs[250][0] == 1e-4 and lrs[22 * 50 - 1][0] == 1e-4
    assert lrs[22 * 50][0] == pytest.approx(1e-5) and lrs[24 * 50][0] == pytest.approx(1e-6)


def test_constant_and_exp_warmup():
    runner = FakeRunner(_optimizer(0.02), iters_per_epoch=10, max_epochs=2)
    lrs = _train(build_lr_hook(dict(policy="fixed", warmup="constant", warmup_iters=5, warmup_ratio=0.1)), runner)
    assert [lrs[i][0] for i in (0, 4, 5, 19)] == pytest.approx([0.002, 0.002, 0.02, 0.02])
    runner = FakeRunner(_optimizer(0.02), iters_per_epoch=10, max_epochs=2)
    lrs = _train(build_lr_hook(dict(policy="fixed", warmup="exp", warmup_iters=4, warmup_ratio=0.01)), runner)
    assert [lrs[i][0] for i in range(5)] == pytest.approx(
        [0.02 * 0.01, 0.02 * 0.01 ** 0.75, 0.02 * 0.1, 0.02 * 0.01 ** 0.25, 0.02])


def test_warmup_by_epoch_counts_epochs():
    runner = FakeRunner(_optimizer(0.1), iters_per_epoch=10, max_epochs=4)
    hook = build_lr_hook(dict(policy="step", step=[3], warmup="linear", warmup_iters=2, warmup_ratio=0.5,
                              warmup_by_epoch=True))
    lrs = _train(hook, runner)
    assert lrs[0][0] == pytest.approx(0.05) and lrs[10][0] == pytest.approx(0.1 * (1 - 0.5 * 0.5))
    assert lrs[20][0] == pytest.approx(0.1) and lrs[30][0] == pytest.approx(0.01)


def test_step_by_iteration_int_step_and_min_lr():
    runner = FakeRunner(_optimizer(1.0), iters_per_epoch=10, max_epochs=3)
    lrs = _train(build_lr_hook(dict(policy="step", by_epoch=False, step=[5, 12], gamma=0.5)), runner)
    assert [lrs[i][0] for i in (0, 4, 5, 11, 12, 29)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    runner = FakeRunner(_optimizer(1.0), iters_per_epoch=2, max_epochs=10)
    lrs = _train(build_lr_hook(dict(policy="step", step=3, gamma=0.1, min_lr=2e-3)), runner)
    by_epoch = [lrs[2 * e][0] for e in range(10)]
    assert by_epoch == pytest.approx([1, 1, 1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 2e-3])


@pytest.mark.parametrize("by_epoch", [True, False])
def test_cosine_annealing(by_epoch):
    runner = FakeRunner(_optimizer(0.1, 0.01), iters_per_epoch=4, max_epochs=10)
    lrs = _train(build_lr_hook(dict(policy="CosineAnnealing", by_epoch=by_epoch, min_lr=0.001)), runner)
    t, total = (20, 10) if by_epoch else (20, 40)
    factor = (t // 4) / total if by_epoch else t / total
    expected = [0.001 + 0.5 * (lr - 0.001) * (1 + math.cos(math.pi * factor)) for lr in (0.1, 0.01)]
    assert lrs[t] == pytest.approx(expected)
    assert lrs[0] == pytest.approx([0.1, 0.01])
    runner = FakeRunner(_optimizer(0.1, 0.01), iters_per_epoch=4, max_epochs=10)
    lrs = _train(build_lr_hook(dict(policy="CosineAnnealing", by_epoch=by_epoch, min_lr_ratio=0.1)), runner)
    assert lrs[20] == pytest.approx([x * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * factor))) for x in (0.1, 0.01)])
    with pytest.raises(ValueError, match="set exactly one of min_lr and min_lr_ratio"):
        build_lr_hook(dict(policy="CosineAnnealing", min_lr=0.0, min_lr_ratio=0.1))


def test_cosine_with_linear_warmup_by_iteration():
    runner = FakeRunner(_optimizer(1.0), iters_per_epoch=10, max_epochs=10)
    lrs = _train(build_lr_hook(dict(policy="CosineAnnealing", by_epoch=False, min_lr=0.0, warmup="linear",
                                    warmup_iters=10, warmup_ratio=0.1)), runner)
    regular_5 = 0.5 * (1 + math.cos(math.pi * 5 / 100))
    assert lrs[5][0] == pytest.approx(regular_5 * (1 - 0.5 * 0.9))
    assert lrs[50][0] == pytest.approx(0.5)


def test_poly_exp_inv_and_restart():
    runner = FakeRunner(_optimizer(0.1), iters_per_epoch=1, max_epochs=10)
    lrs = _train(build_lr_hook(dict(policy="poly", power=2.0, min_lr=0.01)), runner)
    assert lrs[4][0] == pytest.approx(0.09 * 0.6 ** 2 + 0.01)
    lrs = _train(build_lr_hook(dict(policy="exp", gamma=0.9)), FakeRunner(_optimizer(0.1), 1, max_epochs=10))
    assert lrs[3][0] == pytest.approx(0.1 * 0.9 ** 3)
    lrs = _train(build_lr_hook(dict(policy="inv", gamma=0.5, power=2.0)), FakeRunner(_optimizer(0.1), 1, 10))
    assert lrs[2][0] == pytest.approx(0.1 / 4)
    hook = build_lr_hook(dict(policy="CosineRestart", periods=[4, 6], restart_weights=[1.0, 0.5], min_lr=0.0))
    lrs = _train(hook, FakeRunner(_optimizer(1.0), 1, max_epochs=10))
    assert [lrs[i][0] for i in (0, 2, 4, 7)] == pytest.approx([1.0, 0.5, 0.5, 0.25])
    beyond = FakeRunner(_optimizer(1.0), 1, max_epochs=20)
    beyond.epoch = 10
    with pytest.raises(ValueError, match="Current iteration 10 exceeds cumulative_periods"):
        hook.get_lr(beyond, 1.0)


def test_one_cycle_matches_torch_one_cycle_lr():
    runner = FakeRunner(_optimizer(0.5), iters_per_epoch=20, max_epochs=1)
    hook = build_lr_hook(dict(policy="OneCycle", max_lr=0.5, pct_start=0.25, div_factor=10.0, final_div_factor=100.0))
    assert isinstance(hook, OneCycleLrUpdaterHook)
    ours = _train(hook, runner)
    ref_opt = _optimizer(0.5)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(ref_opt, max_lr=0.5, total_steps=20, pct_start=0.25,
                                                    div_factor=10.0, final_div_factor=100.0, cycle_momentum=False)
    for i in range(20):
        assert ours[i][0] == pytest.approx(ref_opt.param_groups[0]["lr"], rel=1e-9), i
        ref_opt.step()
        scheduler.step()


def test_resume_sets_exactly_the_uninterrupted_lr():
    """lr is a function of (epoch, iter) and the stored initial_lr: resuming mid-run reproduces it."""
    cfg = _schedule_1x(warmup_iters=250)
    full = _train(build_lr_hook(cfg), FakeRunner(_optimizer(1e-4, 1e-5), iters_per_epoch=40, max_epochs=12))
    interrupted = FakeRunner(_optimizer(1e-4, 1e-5), iters_per_epoch=40, max_epochs=9)
    _train(build_lr_hook(cfg), interrupted)
    saved = interrupted.optimizer.state_dict()  # lrs are decayed now; initial_lr travels with the groups
    resumed_opt = _optimizer(1e-4, 1e-5)
    resumed_opt.load_state_dict(saved)
    assert [g["lr"] for g in resumed_opt.param_groups] == pytest.approx([1e-5, 1e-6])
    resumed = _train(build_lr_hook(cfg), FakeRunner(resumed_opt, iters_per_epoch=40, max_epochs=12), start_epoch=9)
    assert resumed == {i: full[i] for i in range(9 * 40, 12 * 40)}
    # resuming inside the warmup (iteration-based runner) as well
    hook = build_lr_hook(cfg)
    runner = FakeRunner(resumed_opt, iters_per_epoch=40, max_epochs=12)
    hook.before_run(runner)
    runner.epoch, runner.iter = 3, 130
    assert hook.current_lr(runner) == full[130]


def test_dict_of_optimizers():
    optimizers = {"generator": _optimizer(0.1), "discriminator": _optimizer(0.2, 0.4)}
    runner = FakeRunner(optimizers, iters_per_epoch=5, max_epochs=3)
    hook = build_lr_hook(dict(policy="step", step=[1], warmup="constant", warmup_iters=2, warmup_ratio=0.5))
    hook.before_run(runner)
    assert hook.base_lr == {"generator": [0.1], "discriminator": [0.2, 0.4]}
    hook.before_train_epoch(runner)
    hook.before_train_iter(runner)
    assert [g["lr"] for g in optimizers["discriminator"].param_groups] == pytest.approx([0.1, 0.2])
    runner.epoch, runner.iter = 1, 5
    hook.before_train_epoch(runner)
    hook.before_train_iter(runner)
    current = hook.current_lr(runner)
    assert sorted(current) == ["discriminator", "generator"]
    assert current["generator"] == pytest.approx([0.01]) and current["discriminator"] == pytest.approx([0.02, 0.04])
    assert optimizers["generator"].param_groups[0]["lr"] == pytest.approx(0.01)


def test_invalid_arguments():
    with pytest.raises(ValueError, match='"cosine" is not a supported type for warming up'):
        StepLrUpdaterHook(step=[1], warmup="cosine", warmup_iters=10)
    with pytest.raises(ValueError, match='"warmup_iters" must be a positive integer'):
        StepLrUpdaterHook(step=[1], warmup="linear", warmup_iters=0)
    with pytest.raises(ValueError, match='"warmup_ratio" must be in range'):
        StepLrUpdaterHook(step=[1], warmup="linear", warmup_iters=10, warmup_ratio=0.0)
    with pytest.raises(ValueError, match='"step" must be a list of positive integers'):
        StepLrUpdaterHook(step=[8, 0])
    with pytest.raises(TypeError, match='"step" must be a list or integer'):
        StepLrUpdaterHook(step=8.0)
    with pytest.raises(ValueError, match='only supports "by_epoch" = False'):
        OneCycleLrUpdaterHook(max_lr=0.1, by_epoch=True)
