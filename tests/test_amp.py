"""Native torch.amp: config mapping (fp16 / apex seed spelling / amp=bf16), bf16 autocast on CPU,
fp16 dynamic loss scaling with skipped steps, static scale, scaler state in checkpoints, AMP off."""
from __future__ import annotations

import pytest
import torch

from mmdet.engine import Config
from mmdet.engine.amp import inference_autocast_dtype, optimizer_hook_config
from mmdet.engine.hooks import DistOptimizerHook
from test_runner import ToyDataset, ToyDetector, make_runner, read_json_log, toy_loader


def cfg(**kwargs):
    return Config(dict(optimizer_config=dict(grad_clip=None), **kwargs))


def test_config_spellings_map_onto_native_amp_hooks():
    assert optimizer_hook_config(cfg()) == dict(type="OptimizerHook", grad_clip=None)
    assert optimizer_hook_config(cfg(fp16=dict(loss_scale=512.)), distributed=True) == dict(
        type="Fp16OptimizerHook", grad_clip=None, distributed=True, loss_scale=512.)
    seed = Config(dict(runner=dict(type="EpochBasedRunnerAmp", max_epochs=12), fp16=None, optimizer_config=dict(
        type="DistOptimizerHook", update_interval=1, grad_clip=None, coalesce=True, bucket_size_mb=-1, use_fp16=True)))
    assert optimizer_hook_config(seed)["use_fp16"] is True and inference_autocast_dtype(seed) is None
    assert optimizer_hook_config(cfg(amp=dict(dtype="bf16")))["dtype"] == "bf16"
    assert inference_autocast_dtype(cfg(amp=dict(dtype="bf16"))) is torch.bfloat16
    assert inference_autocast_dtype(cfg(fp16=dict(loss_scale="dynamic"))) is torch.float16
    with pytest.raises(ValueError, match="unknown AMP dtype 'fp8'"):
        optimizer_hook_config(cfg(amp=dict(dtype="fp8")))
    hook = DistOptimizerHook(update_interval=2, use_fp16=True)
    assert hook.amp_dtype is torch.float16 and hook.cumulative_iters == 2 and hook.loss_scale == "dynamic"


@pytest.mark.parametrize("dtype,expected", [(None, torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_amp_on_off_trains_on_cpu(tmp_path, dtype, expected):
    torch.manual_seed(0)
    model = ToyDetector()
    hook_cfg = dict(grad_clip=None) if dtype is None else dict(type="Fp16OptimizerHook", dtype=dtype,
                                                                 loss_scale="dynamic")
    runner = make_runner(tmp_path, model=model, max_epochs=3, optimizer_config=hook_cfg)
    before = model.bbox_head.fc_cls.weight.detach().clone()
    runner.run([toy_loader(ToyDataset(8))], [("train", 1)])
    assert set(model.feature_dtypes) == {expected}
    assert model.bbox_head.fc_cls.weight.dtype == torch.float32  # master weights stay fp32
    assert not torch.equal(before, model.bbox_head.fc_cls.weight)
    train = [r for r in read_json_log(tmp_path) if r["mode"] == "train"]
    assert train[-1]["loss"] < train[0]["loss"]


def test_fp16_overflow_skips_step_logs_and_lowers_scale(tmp_path):
    import io
    import logging
    stream = io.StringIO()
    logger = logging.getLogger("mmdet_test.amp_overflow")
    logger.addHandler(logging.StreamHandler(stream))
    logger.setLevel(logging.INFO)
    model = ToyDetector()
    runner = make_runner(tmp_path, model=model, max_epochs=1, logger=logger,
                         optimizer_config=dict(type="Fp16OptimizerHook", loss_scale=dict(init_scale=2.0 ** 120)))
    weights = model.bbox_head.fc_cls.weight.detach().clone()
    first_step = []

    original = runner.optimizer_hook._apply_gradients

    def record(r):
        original(r)
        first_step.append(torch.equal(weights, model.bbox_head.fc_cls.weight))

    runner.optimizer_hook._apply_gradients = record
    runner.run([toy_loader(ToyDataset(8))], [("train", 1)])
    hook = runner.optimizer_hook
    assert first_step[0] is True  # 2**120 * grad overflows fp16 -> step skipped, weights untouched
    assert hook.skipped_steps >= 1 and hook.loss_scaler.get_scale() < 2.0 ** 120
    assert "fp16 gradient overflow at iteration 1: optimizer step skipped (loss scale 1.32923e+36 -> 6.64614e+35" \
        in stream.getvalue()
    ckpt_path = runner.save_checkpoint(str(tmp_path), filename_tmpl="amp_{}.pth")
    ckpt = torch.load(ckpt_path, weights_only=True)
    assert ckpt["grad_scaler"]["scale"] == hook.loss_scaler.get_scale()
    resumed = make_runner(tmp_path / "r", max_epochs=2,
                          optimizer_config=dict(type="Fp16OptimizerHook", loss_scale="dynamic"))
    resumed.resume(ckpt_path)
    resumed.optimizer_hook.before_run(resumed)  # the scaler is built when the run starts
    assert resumed.optimizer_hook.loss_scaler.state_dict() == ckpt["grad_scaler"]


def test_static_loss_scale_is_kept(tmp_path):
    runner = make_runner(tmp_path, max_epochs=1, optimizer_config=dict(type="Fp16OptimizerHook", loss_scale=512.))
    runner.run([toy_loader(ToyDataset(4))], [("train", 1)])
    assert runner.optimizer_hook.loss_scaler.get_scale() == 512.0


def test_apex_style_seed_checkpoint_scale_is_read_on_resume(tmp_path):
    runner = make_runner(tmp_path, max_epochs=1)
    runner.run([toy_loader(ToyDataset(2))], [("train", 1)])
    seed_ckpt = torch.load(runner.save_checkpoint(str(tmp_path)), weights_only=True)
    seed_ckpt.pop("grad_scaler", None)
    seed_ckpt["amp"] = {"loss_scaler0": {"loss_scale": 1024.0, "unskipped": 7}}
    torch.save(seed_ckpt, tmp_path / "seed.pth")
    resumed = make_runner(tmp_path / "r", max_epochs=1, optimizer_config=dict(type="DistOptimizerHook", use_fp16=True))
    resumed.resume(str(tmp_path / "seed.pth"))
    assert resumed.optimizer_hook.scaler_state_dict()["scale"] == 1024.0
