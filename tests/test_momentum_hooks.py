"""Momentum updater hooks and the cyclic lr hook: values at chosen iterations, computed by hand from
mmcv 1.x's formulas; the config path through the runner's register_training_hooks."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mmdet.engine.config import Config
from mmdet.engine.hooks import (CosineAnnealingMomentumUpdaterHook, CyclicLrUpdaterHook, CyclicMomentumUpdaterHook,
                                Hook, OneCycleMomentumUpdaterHook, StepMomentumUpdaterHook, build_lr_hook,
                                build_momentum_hook)
from mmdet.engine.runner import build_runner
from mmdet.registry import HOOKS
from test_runner import ToyDataset, ToyDetector, toy_loader


class FakeRunner:
    """The runner attributes schedule hooks read."""

    def __init__(self, optimizer, iters_per_epoch: int, max_epochs: int):
        self.optimizer = optimizer
        self.data_loader = range(iters_per_epoch)
        self.max_epochs = max_epochs
        self.max_iters = max_epochs * iters_per_epoch
        self.epoch = 0
        self.iter = 0


def _sgd(*momenta: float, lr: float = 0.1) -> torch.optim.SGD:
    return torch.optim.SGD([{"params": [nn.Parameter(torch.zeros(1))], "momentum": m} for m in momenta], lr=lr)


def _adam(beta1: float = 0.9, lr: float = 1e-3) -> torch.optim.Adam:
    return torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=lr, betas=(beta1, 0.999))


def _momentum(group: dict) -> float:
    return group["momentum"] if "momentum" in group else group["betas"][0]


def _train(hooks, runner, start_epoch: int = 0) -> dict[int, dict]:
    """Run ``hooks`` like EpochBasedRunner from ``start_epoch``; global iter -> {'lr': [...], 'momentum': [...]}."""
    seen = {}
    runner.epoch = start_epoch
    runner.iter = start_epoch * len(runner.data_loader)
    for hook in hooks:
        hook.before_run(runner)
    for epoch in range(start_epoch, runner.max_epochs):
        runner.epoch = epoch
        for hook in hooks:
            hook.before_train_epoch(runner)
        for _ in runner.data_loader:
            for hook in hooks:
                hook.before_train_iter(runner)
            groups = runner.optimizer.param_groups
            seen[runner.iter] = dict(lr=[g["lr"] for g in groups], momentum=[_momentum(g) for g in groups])
            runner.iter += 1
    return seen


def _cos(start: float, end: float, factor: float) -> float:
    return end + 0.5 * (start - end) * (1 + math.cos(math.pi * factor))


CYCLIC_LR = dict(policy="cyclic", target_ratio=(10, 1e-4), cyclic_times=1, step_ratio_up=0.4)
CYCLIC_MOMENTUM = dict(policy="cyclic", target_ratio=(0.85 / 0.95, 1), cyclic_times=1, step_ratio_up=0.4)


def test_cyclic_lr_and_momentum_mirror_each_other():
    """100 iterations: lr 0.1 -> 1.0 (x10) over iters 0..40 then -> 1e-5 (x1e-4); momentum 0.95 -> 0.85 -> 0.95."""
    runner = FakeRunner(_sgd(0.95), iters_per_epoch=10, max_epochs=10)
    seen = _train([build_lr_hook(CYCLIC_LR), build_momentum_hook(CYCLIC_MOMENTUM)], runner)
    lr = {i: v["lr"][0] for i, v in seen.items()}
    momentum = {i: v["momentum"][0] for i, v in seen.items()}
    assert lr[0] == pytest.approx(0.1) and momentum[0] == pytest.approx(0.95)
    assert lr[20] == pytest.approx(0.55) and momentum[20] == pytest.approx(0.90)  # half-way up: cos factor 0.5
    assert lr[10] == pytest.approx(1.0 + 0.5 * (0.1 - 1.0) * (1 + math.cos(math.pi / 4)))
    assert lr[40] == pytest.approx(1.0) and momentum[40] == pytest.approx(0.85)  # peak lr / lowest momentum
    assert lr[70] == pytest.approx(1e-5 + 0.5 * (1.0 - 1e-5)) and momentum[70] == pytest.approx(0.90)
    assert lr[99] == pytest.approx(_cos(1.0, 1e-5, 59 / 60))
    assert momentum[99] == pytest.approx(_cos(0.85, 0.95, 59 / 60))
    assert max(lr.values()) == pytest.approx(1.0) and min(momentum.values()) == pytest.approx(0.85)
    assert runner.optimizer.param_groups[0]["initial_lr"] == 0.1
    assert runner.optimizer.param_groups[0]["initial_momentum"] == 0.95


def test_cyclic_gamma_times_linear_and_single_ratio():
    """Two cycles of 50 (20 up): gamma=0.5 halves the second cycle's excursion; linear annealing."""
    runner = FakeRunner(_sgd(0.95, lr=0.1), iters_per_epoch=10, max_epochs=10)
    lr_hook = CyclicLrUpdaterHook(target_ratio=(10, 1e-4), cyclic_times=2, step_ratio_up=0.4, gamma=0.5,
                                  anneal_strategy="linear")
    momentum_hook = CyclicMomentumUpdaterHook(cyclic_times=2, gamma=0.5, anneal_strategy="linear")
    seen = _train([lr_hook, momentum_hook], runner)
    assert seen[10]["lr"][0] == pytest.approx(0.1 + 0.5 * (1.0 - 0.1))
    assert seen[20]["lr"][0] == pytest.approx(1.0) and seen[20]["momentum"][0] == pytest.approx(0.85)
    assert seen[50]["lr"][0] == pytest.approx(0.1) and seen[50]["momentum"][0] == pytest.approx(0.95)
    assert seen[70]["lr"][0] == pytest.approx(0.1 * (1 - 0.5 * (1 - 10)))  # 0.55: peak ratio 5.5
    assert seen[70]["momentum"][0] == pytest.approx(0.95 * (1 - 0.5 * (1 - 0.85 / 0.95)))  # 0.90
    assert seen[85]["lr"][0] == pytest.approx(0.55 + (1e-5 - 0.55) * 0.5)
    assert CyclicLrUpdaterHook(target_ratio=10.0).target_ratio == (10.0, 1e-4)
    assert CyclicLrUpdaterHook(target_ratio=(20,)).target_ratio == (20, 2e-4)


def test_step_momentum_with_min_and_warmups():
    runner = FakeRunner(_sgd(0.9), iters_per_epoch=2, max_epochs=6)
    seen = _train([StepMomentumUpdaterHook(step=[2, 4], min_momentum=0.3)], runner)  # gamma defaults to 0.5
    assert [seen[2 * e]["momentum"][0] for e in range(6)] == pytest.approx([0.9, 0.9, 0.45, 0.45, 0.3, 0.3])
    # warmup divides the regular momentum by the lr warmup factor (warmup_ratio defaults to 0.9)
    expected_at_5 = {"constant": 0.9 / 0.9, "linear": 0.9 / (1 - 0.5 * 0.1), "exp": 0.9 / 0.9 ** 0.5}
    for warmup, value in expected_at_5.items():
        runner = FakeRunner(_sgd(0.9), iters_per_epoch=10, max_epochs=3)
        hook = build_momentum_hook(dict(policy="step", step=[2], warmup=warmup, warmup_iters=10))
        seen = _train([hook], runner)
        assert seen[5]["momentum"][0] == pytest.approx(value), warmup
        assert seen[10]["momentum"][0] == pytest.approx(0.9) and seen[20]["momentum"][0] == pytest.approx(0.45)
    assert seen[0]["momentum"][0] == pytest.approx(0.9 / 0.9)


@pytest.mark.parametrize("by_epoch", [True, False])
def test_cosine_annealing_momentum(by_epoch):
    runner = FakeRunner(_sgd(0.9, 0.8), iters_per_epoch=4, max_epochs=10)
    seen = _train([build_momentum_hook(dict(policy="CosineAnnealing", by_epoch=by_epoch, min_momentum=0.5))], runner)
    factor = 5 / 10 if by_epoch else 21 / 40
    assert seen[21]["momentum"] == pytest.approx([_cos(0.9, 0.5, factor), _cos(0.8, 0.5, factor)])
    runner = FakeRunner(_sgd(0.9), iters_per_epoch=4, max_epochs=10)
    seen = _train([CosineAnnealingMomentumUpdaterHook(by_epoch=by_epoch, min_momentum_ratio=0.5)], runner)
    assert seen[21]["momentum"][0] == pytest.approx(_cos(0.9, 0.45, factor))
    assert seen[0]["momentum"][0] == pytest.approx(0.9)


def test_one_cycle_momentum_phases_on_adam_betas():
    """pct_start 0.25 of 100 iters: 0.95 -> 0.85 over iters 0..24, back to 0.95 at 99; betas[1] untouched."""
    runner = FakeRunner(_adam(0.9), iters_per_epoch=10, max_epochs=10)
    seen = _train([build_momentum_hook(dict(policy="OneCycle", pct_start=0.25))], runner)
    beta1 = {i: v["momentum"][0] for i, v in seen.items()}
    assert beta1[0] == pytest.approx(0.95) and beta1[12] == pytest.approx(0.90) and beta1[24] == pytest.approx(0.85)
    assert beta1[62] == pytest.approx(_cos(0.85, 0.95, 38 / 75)) and beta1[99] == pytest.approx(0.95)
    group = runner.optimizer.param_groups[0]
    assert group["betas"][1] == 0.999 and isinstance(group["betas"], tuple)
    assert (group["base_momentum"], group["max_momentum"], group["initial_momentum"]) == (0.85, 0.95, 0.95)
    # three phases (max -> base -> max -> max), per-group lists
    runner = FakeRunner(_sgd(0.9, 0.9), iters_per_epoch=10, max_epochs=10)
    hook = OneCycleMomentumUpdaterHook(base_momentum=[0.8, 0.85], max_momentum=0.95, pct_start=0.25, three_phase=True)
    seen = _train([hook], runner)
    assert seen[36]["momentum"] == pytest.approx([0.875, 0.90]) and seen[48]["momentum"] == pytest.approx([0.95] * 2)
    assert seen[70]["momentum"] == pytest.approx([0.95, 0.95]) and seen[24]["momentum"] == pytest.approx([0.8, 0.85])


def test_one_cycle_momentum_matches_torch_one_cycle_lr():
    runner = FakeRunner(_sgd(0.9), iters_per_epoch=20, max_epochs=1)
    ours = _train([OneCycleMomentumUpdaterHook(pct_start=0.3, anneal_strategy="linear")], runner)
    ref = _sgd(0.9)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(ref, max_lr=0.1, total_steps=20, pct_start=0.3,
                                                    anneal_strategy="linear", base_momentum=0.85, max_momentum=0.95)
    for i in range(20):
        assert ours[i]["momentum"][0] == pytest.approx(ref.param_groups[0]["momentum"], rel=1e-9), i
        ref.step()
        scheduler.step()


def test_adam_betas_and_dict_of_optimizers():
    optimizers = {"generator": _sgd(0.9), "discriminator": _adam(0.8)}
    runner = FakeRunner(optimizers, iters_per_epoch=10, max_epochs=1)
    hook = CyclicMomentumUpdaterHook(target_ratio=(0.5, 1), step_ratio_up=0.5)
    hook.before_run(runner)
    assert hook.base_momentum == {"generator": [0.9], "discriminator": [0.8]}
    runner.iter = 5
    hook.before_train_iter(runner)
    assert optimizers["generator"].param_groups[0]["momentum"] == pytest.approx(0.45)
    assert optimizers["discriminator"].param_groups[0]["betas"] == pytest.approx((0.4, 0.999))
    assert hook.current_momentum(runner) == {"generator": pytest.approx([0.45]), "discriminator": pytest.approx([0.4])}


def test_resume_keeps_initial_momentum():
    """initial_momentum travels with the optimizer state_dict: a resumed run reproduces the uninterrupted one."""
    cfg = dict(policy="CosineAnnealing", min_momentum_ratio=0.5, warmup="linear", warmup_iters=5)
    full = _train([build_momentum_hook(cfg)], FakeRunner(_sgd(0.9), iters_per_epoch=4, max_epochs=6))
    first = FakeRunner(_sgd(0.9), iters_per_epoch=4, max_epochs=3)
    _train([build_momentum_hook(cfg)], first)
    resumed_opt = _sgd(0.9)
    resumed_opt.load_state_dict(first.optimizer.state_dict())
    assert resumed_opt.param_groups[0]["momentum"] != pytest.approx(0.9)  # decayed, initial_momentum kept
    resumed = _train([build_momentum_hook(cfg)], FakeRunner(resumed_opt, iters_per_epoch=4, max_epochs=6), 3)
    assert resumed == {i: full[i] for i in range(12, 24)}


class _Recorder(Hook):
    """Records the lr and momentum the optimizer step of each iteration will use."""

    def __init__(self):
        self.seen = []

    def before_train_iter(self, runner):
        self.seen.append((runner.current_lr()[0], runner.current_momentum()[0]))


def test_config_cyclic_lr_and_momentum_through_the_runner(tmp_path):
    cfg = Config.fromstring("lr_config = dict(policy='cyclic', target_ratio=(10, 1e-4), cyclic_times=1, "
                            "step_ratio_up=0.4)\n"
                            "momentum_config = dict(policy='cyclic', target_ratio=(0.85 / 0.95, 1), "
                            "cyclic_times=1, step_ratio_up=0.4)\n", ".py")
    assert cfg.lr_config == CYCLIC_LR and cfg.momentum_config["policy"] == "cyclic"
    torch.manual_seed(0)
    model = ToyDetector()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.95)
    runner = build_runner(dict(type="IterBasedRunner", max_iters=10),
                          default_args=dict(model=model, optimizer=optimizer, work_dir=str(tmp_path)))
    runner.register_training_hooks(cfg.get("lr_config"), dict(grad_clip=None), None, None, cfg.get("momentum_config"))
    recorder = _Recorder()
    runner.register_hook(recorder, priority="NORMAL")
    assert [(type(h).__name__, h.priority) for h in runner.hooks[:3]] == [
        ("CyclicLrUpdaterHook", 10), ("CyclicMomentumUpdaterHook", 30), ("OptimizerHook", 40)]
    runner.run([toy_loader(ToyDataset(4))], [("train", 1)])
    lrs, momenta = zip(*recorder.seen)
    assert len(lrs) == 10  # 4 iterations up, 6 down
    assert lrs[2] == pytest.approx(0.055) and momenta[2] == pytest.approx(0.90)
    assert lrs[4] == pytest.approx(0.1) and momenta[4] == pytest.approx(0.85)
    assert lrs[7] == pytest.approx(1e-6 + 0.5 * (0.1 - 1e-6)) and momenta[7] == pytest.approx(0.90)


def test_unknown_policy_and_invalid_arguments(tmp_path):
    runner = build_runner(dict(type="IterBasedRunner", max_iters=2),
                          default_args=dict(model=ToyDetector(), optimizer=_sgd(0.9), work_dir=str(tmp_path)))
    with pytest.raises(KeyError) as info:
        runner.register_momentum_hook(dict(policy="triangular"))
    assert "'TriangularMomentumUpdaterHook' is not registered in the hook registry" in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(KeyError, match="'TriangularMomentumUpdaterHook' is not registered in the hook registry"):
        build_momentum_hook(dict(policy="triangular"))
    with pytest.raises(KeyError, match="momentum_config has no 'policy' key"):
        build_momentum_hook(dict(target_ratio=(0.9, 1)))
    with pytest.raises(ValueError, match='CyclicMomentumUpdaterHook only supports "by_epoch" = False'):
        build_momentum_hook(dict(CYCLIC_MOMENTUM, by_epoch=True))
    with pytest.raises(ValueError, match='CyclicLrUpdaterHook: "step_ratio_up" must be in range'):
        build_lr_hook(dict(CYCLIC_LR, step_ratio_up=1.0))
    with pytest.raises(ValueError, match='"gamma" must be in range'):
        CyclicLrUpdaterHook(gamma=0.0)
    with pytest.raises(ValueError, match="set exactly one of min_momentum and min_momentum_ratio"):
        CosineAnnealingMomentumUpdaterHook()
    with pytest.raises(ValueError, match='OneCycleMomentumUpdaterHook only supports "by_epoch" = False'):
        OneCycleMomentumUpdaterHook(by_epoch=True)
    with pytest.raises(ValueError, match='"anneal_strategy" must be "cos" or "linear"'):
        OneCycleMomentumUpdaterHook(anneal_strategy="triangle")
    with pytest.raises(ValueError, match='"warmup_ratio" must be in range'):
        StepMomentumUpdaterHook(step=[1], warmup="linear", warmup_iters=5, warmup_ratio=1.5)
    adagrad = torch.optim.Adagrad([nn.Parameter(torch.zeros(1))])
    with pytest.raises(ValueError, match="a param group has neither 'momentum' .* nor 'betas'"):
        StepMomentumUpdaterHook(step=[1]).before_run(FakeRunner(adagrad, 1, 1))
    for name in ("CyclicLrUpdaterHook", "StepMomentumUpdaterHook", "CosineAnnealingMomentumUpdaterHook",
                 "CyclicMomentumUpdaterHook", "OneCycleMomentumUpdaterHook"):
        assert name in HOOKS
