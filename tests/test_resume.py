"""Resume restores weights, optimizer, lr schedule, epoch / iter and RNG: an interrupted run ends bit-identical."""
from __future__ import annotations

import torch

from mmdet.engine.hooks import EvalHook
from mmdet.engine.runner import get_rng_state, set_rng_state
from test_runner import ToyDataset, ToyDetector, make_runner, toy_loader

LR_CONFIG = dict(policy="step", warmup="linear", warmup_iters=3, warmup_ratio=0.1, step=[2])


def run(work_dir, max_epochs, resume=None, seed=0):
    torch.manual_seed(seed)
    import numpy as np
    import random
    np.random.seed(seed)
    random.seed(seed)
    runner = make_runner(work_dir, model=ToyDetector(dropout=0.3), max_epochs=max_epochs, lr_config=dict(LR_CONFIG),
                         checkpoint_config=dict(interval=1))
    runner.register_hook(EvalHook(toy_loader(ToyDataset(4, test_mode=True), shuffle=False)))
    if resume is not None:
        runner.resume(resume)
    runner.run([toy_loader(ToyDataset(8))], [("train", 1)])
    return runner


def test_interrupted_run_ends_with_identical_weights(tmp_path):
    torch.use_deterministic_algorithms(True)
    try:
        full = run(tmp_path / "full", max_epochs=3)
        part = run(tmp_path / "part", max_epochs=2)  # "interrupted" after epoch 2
        # a fresh process state: different global seeds before resuming
        resumed = run(tmp_path / "part", max_epochs=3, resume=str(tmp_path / "part" / "latest.pth"), seed=123)
    finally:
        torch.use_deterministic_algorithms(False)
    assert part.epoch == 2 and (resumed.epoch, resumed.iter) == (3, 12)
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    full_opt, resumed_opt = full.optimizer.state_dict(), resumed.optimizer.state_dict()
    assert full_opt["param_groups"] == resumed_opt["param_groups"]  # lr after the step at epoch 2, initial_lr
    assert resumed_opt["param_groups"][0]["lr"] == 0.05 * 0.1
    for k, state in full_opt["state"].items():
        assert torch.equal(state["momentum_buffer"], resumed_opt["state"][k]["momentum_buffer"])


def test_rng_state_round_trip_is_plain_data(tmp_path):
    import numpy as np
    import random
    state = get_rng_state()
    torch.save(state, tmp_path / "rng.pth")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(torch.load(tmp_path / "rng.pth", weights_only=True))
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
