"""Hook behaviour: log format (text + JSON lines), LogBuffer averaging, eval / save_best, checkpoints,
grad clipping, gradient accumulation, NumClassCheckHook, sampler seeding, TensorBoard skip."""
from __future__ import annotations

import re

import pytest
import torch

from mmdet.engine.hooks import (DistSamplerSeedHook, EvalHook, GradientCumulativeOptimizerHook, NumClassCheckHook,
                                TensorboardLoggerHook, check_num_classes)
from mmdet.engine.log_buffer import LogBuffer
from test_runner import ToyDataset, ToyDetector, make_runner, read_json_log, toy_loader


def string_logger(name: str):
    """A logger writing mmdet-formatted lines into a StringIO (the mmdet logger does not propagate to caplog)."""
    import io
    import logging
    stream = io.StringIO()
    logger = logging.getLogger(f"mmdet_test.{name}")
    logger.handlers.clear()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger, stream


def test_log_buffer_weighted_average_of_last_n():
    buf = LogBuffer()
    buf.update({"loss": 1.0, "time": 0.5}, count=2)
    buf.update({"loss": 4.0, "time": 0.1}, count=1)
    buf.update({"loss": 2.0, "time": 0.3}, count=1)
    buf.average(2)
    assert buf.ready and list(buf.output) == ["loss", "time"]
    assert buf.output["loss"] == pytest.approx(3.0) and buf.output["time"] == pytest.approx(0.2)
    buf.average()
    assert buf.output["loss"] == pytest.approx((2 + 4 + 2) / 4)
    buf.clear_output()
    assert not buf.ready and not buf.output


def test_text_and_json_logs_follow_mmdet_format(tmp_path):
    logger, stream = string_logger("text")
    runner = make_runner(tmp_path, max_epochs=2, lr=0.01, logger=logger,
                         meta=dict(env_info="env", config="x = 1", seed=3, exp_name="toy_cfg.py"),
                         log_config=dict(interval=2, hooks=[dict(type="TextLoggerHook")]))
    val_loader = toy_loader(ToyDataset(4, test_mode=True), batch_size=2, shuffle=False)
    runner.register_hook(EvalHook(val_loader, interval=1, metric="bbox"))
    runner.run([toy_loader(ToyDataset(8))], [("train", 1)])
    records = read_json_log(tmp_path)
    assert records[0] == dict(env_info="env", config="x = 1", seed=3, exp_name="toy_cfg.py")
    train = records[1]
    assert list(train) == ["mode", "epoch", "iter", "lr", "data_time", "loss_cls", "acc", "loss_bbox", "loss", "time"]
    assert (train["mode"], train["epoch"], train["iter"], train["lr"]) == ("train", 1, 2, 0.01)
    assert all(len(repr(v).split(".")[-1]) <= 5 for v in train.values() if isinstance(v, float))
    val = records[3]
    assert list(val) == ["mode", "epoch", "iter", "lr", "bbox_mAP", "bbox_mAP_50", "bbox_mAP_copypaste"]
    assert (val["mode"], val["epoch"], val["iter"]) == ("val", 1, 4)
    assert [r["mode"] for r in records[1:]] == ["train", "train", "val", "train", "train", "val"]
    text = stream.getvalue()
    assert re.search(r"Epoch \[1\]\[2/4\]\tlr: 1\.000e-02, eta: \d+:\d\d:\d\d, time: \d+\.\d{3}, data_time: \d+\.\d{3}, "
                     r"loss_cls: \d+\.\d{4}, acc: \d+\.\d{4}, loss_bbox: \d+\.\d{4}, loss: \d+\.\d{4}", text)
    assert re.search(r"Epoch\(val\) \[1\]\[4\]\tbbox_mAP: \d\.\d{4}, bbox_mAP_50: \d\.\d{4}, bbox_mAP_copypaste: ", text)
    assert "Exp name: toy_cfg.py" in text


def test_eval_hook_interval_start_and_save_best(tmp_path):
    runner = make_runner(tmp_path, max_epochs=4)
    val_loader = toy_loader(ToyDataset(4, test_mode=True), shuffle=False)
    hook = EvalHook(val_loader, start=2, interval=2, save_best="auto")
    evaluated = []
    hook._do_evaluate = lambda r, _orig=hook._do_evaluate: (evaluated.append(r.epoch + 1), _orig(r))
    runner.register_hook(hook)
    runner.run([toy_loader(ToyDataset(8))], [("train", 1)])
    assert evaluated == [2, 4]
    best = list(tmp_path.glob("best_bbox_mAP_epoch_*.pth"))
    assert len(best) == 1 and runner.meta["hook_msgs"]["best_ckpt"] == str(best[0])
    assert runner.meta["hook_msgs"]["best_score"] == pytest.approx(max(
        r["bbox_mAP"] for r in read_json_log(tmp_path) if r["mode"] == "val"))
    with pytest.raises(ValueError, match="cannot infer whether a larger 'weird' is better"):
        EvalHook(val_loader, save_best="weird")._resolve_key_and_rule({"weird": 1.0})


def test_checkpoint_hook_interval_max_keep_and_latest(tmp_path):
    runner = make_runner(tmp_path, max_epochs=5, checkpoint_config=dict(interval=2, max_keep_ckpts=1))
    runner.run([toy_loader(ToyDataset(4))], [("train", 1)])
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == ["epoch_5.pth", "latest.pth"]  # 2, 4 pruned
    assert (tmp_path / "latest.pth").resolve().name == "epoch_5.pth"
    assert runner.meta["hook_msgs"]["last_ckpt"] == str(tmp_path / "epoch_5.pth")


def test_grad_clip_logs_grad_norm_and_bounds_update(tmp_path):
    runner = make_runner(tmp_path, max_epochs=1, lr=1.0,
                         optimizer_config=dict(grad_clip=dict(max_norm=1e-3, norm_type=2)),
                         log_config=dict(interval=1, hooks=[dict(type="TextLoggerHook")]))
    before = {k: v.detach().clone() for k, v in runner.model.named_parameters()}
    runner.run([toy_loader(ToyDataset(2))], [("train", 1)])
    record = read_json_log(tmp_path)[0]
    assert list(record)[-2:] == ["grad_norm", "time"] and record["grad_norm"] > 1e-3
    step = torch.cat([(p.detach() - before[k]).flatten() for k, p in runner.model.named_parameters()])
    assert step.norm() <= 1e-3 * 1.0001  # lr 1, momentum buffer empty at step 1: |step| = clipped |grad|


def test_gradient_accumulation_matches_large_batch(tmp_path):
    torch.manual_seed(0)
    reference = ToyDetector(use_bn=False, dropout=0.0)
    accumulated = ToyDetector(use_bn=False, dropout=0.0)
    accumulated.load_state_dict(reference.state_dict())
    data = ToyDataset(4, noise=0.0)
    big = make_runner(tmp_path / "a", model=reference, max_epochs=1)
    big.run([toy_loader(data, batch_size=4, shuffle=False)], [("train", 1)])
    acc = make_runner(tmp_path / "b", model=accumulated, max_epochs=1,
                      optimizer_config=dict(type="GradientCumulativeOptimizerHook", cumulative_iters=2))
    steps = []
    acc.optimizer.step = (lambda orig: lambda *a, **k: (steps.append(1), orig(*a, **k))[1])(acc.optimizer.step)
    acc.run([toy_loader(data, batch_size=2, shuffle=False)], [("train", 1)])
    assert len(steps) == 1
    for (name, p), q in zip(reference.named_parameters(), accumulated.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)
    hook = GradientCumulativeOptimizerHook(cumulative_iters=3)  # window sizes of a 7-iteration epoch: 3, 3, 1
    fake = type("R", (), dict(by_epoch=True, data_loader=range(7)))()
    sizes = []
    for i in range(7):
        fake.inner_iter = i
        sizes.append((hook.window_size(fake), hook.is_update_iter(fake)))
    assert sizes == [(3, False), (3, False), (3, True), (3, False), (3, False), (3, True), (1, True)]


def test_num_class_check_hook_names_the_mismatch(tmp_path):
    model = ToyDetector(num_classes=3)
    with pytest.raises(ValueError, match=r"num_classes=3 in bbox_head \(ToyBBoxHead\) does not match the 2 CLASSES "
                                         r"of ToyDataset \('dark', 'bright'\)"):
        check_num_classes(model, ToyDataset(2))
    runner = make_runner(tmp_path, model=model, max_epochs=1)
    runner.register_hook(NumClassCheckHook())
    with pytest.raises(ValueError, match="set num_classes=2"):
        runner.run([toy_loader(ToyDataset(2))], [("train", 1)])
    single = ToyDataset(2)
    single.CLASSES = "dark"
    with pytest.raises(ValueError, match="trailing comma"):
        check_num_classes(ToyDetector(num_classes=1), single)


def test_dist_sampler_seed_hook_sets_epoch(tmp_path):
    from torch.utils.data import DistributedSampler
    data = ToyDataset(4)
    sampler = DistributedSampler(data, num_replicas=1, rank=0, shuffle=True)
    runner = make_runner(tmp_path, max_epochs=3)
    runner.register_hook(DistSamplerSeedHook())
    seen = []
    sampler.set_epoch = (lambda orig: lambda e: (seen.append(e), orig(e)))(sampler.set_epoch)
    runner.run([toy_loader(data, sampler=sampler)], [("train", 1)])
    assert seen == [0, 1, 2]


def test_tensorboard_hook_skips_clearly_without_tensorboard(tmp_path, monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard") or name == "tensorboard":
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    logger, stream = string_logger("tensorboard")
    runner = make_runner(tmp_path, max_epochs=1, logger=logger)
    runner.register_hook(TensorboardLoggerHook(interval=1), priority="VERY_LOW")
    runner.run([toy_loader(ToyDataset(2))], [("train", 1)])
    assert "WARNING - TensorboardLoggerHook skipped: tensorboard is not installed (pip install tensorboard" \
        in stream.getvalue()
