"""Runner tests on a tiny contract-following detector and dataset (also imported by the other engine tests).

The toy detector takes ``forward(img, img_metas, return_loss, **kwargs)`` and implements
``_parse_losses`` exactly as the data <-> model <-> engine contract says; the toy dataset
returns DataContainers and is batched with ``mmdet.datasets.collate.collate``, so the runner
exercises the real ``unwrap_batch`` path.
"""
from __future__ import annotations

import json
import math
from collections import OrderedDict
from functools import partial

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from mmdet.datasets.collate import DataContainer, collate
from mmdet.engine.dist import all_reduce_dict, is_distributed
from mmdet.engine.hooks import Hook
from mmdet.engine.runner import EpochBasedRunner, IterBasedRunner, NonFiniteLossError, build_runner
from mmdet.registry import DATASETS, MODELS, RUNNERS

IMG = 16


class ToyBBoxHead(nn.Module):
    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        self.fc_cls = nn.Linear(in_channels, num_classes)
        self.fc_reg = nn.Linear(in_channels, 4)

    def forward(self, feat):
        return self.fc_cls(feat), self.fc_reg(feat)


@MODELS.register_module(force=True)
class ToyDetector(nn.Module):
    """conv -> [BN] -> ReLU -> Dropout -> global pool -> cls / box heads. ``nan_at_call`` poisons loss_bbox once."""

    def __init__(self, num_classes: int = 2, use_bn: bool = True, dropout: float = 0.2,
                 nan_at_call: int | None = None, train_cfg=None, test_cfg=None, pretrained=None):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8) if use_bn else nn.Identity(),
                                      nn.ReLU(), nn.Dropout(dropout))
        self.bbox_head = ToyBBoxHead(8, num_classes)
        self.nan_at_call = nan_at_call
        self.calls = 0
        self.feature_dtypes: list[torch.dtype] = []

    def init_weights(self):
        torch.nn.init.normal_(self.bbox_head.fc_cls.weight, std=0.1)

    def _pooled(self, img):
        feat = self.backbone(img)
        self.feature_dtypes.append(feat.dtype)
        return feat.mean((2, 3))

    def forward(self, img, img_metas, return_loss=True, **kwargs):
        if return_loss:
            return self.forward_train(img, img_metas, **kwargs)
        return self.simple_test(img[0], img_metas[0], **kwargs)

    def forward_train(self, img, img_metas, gt_bboxes, gt_labels, **kwargs):
        logits, deltas = self.bbox_head(self._pooled(img))
        labels = torch.stack([lab[0] for lab in gt_labels])
        targets = torch.stack([box[0] for box in gt_bboxes]) / IMG
        loss_cls = F.cross_entropy(logits.float(), labels)
        loss_bbox = F.l1_loss(deltas.float(), targets)
        self.calls += 1
        if self.nan_at_call == self.calls:
            loss_bbox = loss_bbox * float("nan")
        acc = (logits.argmax(1) == labels).float().mean() * 100
        return dict(loss_cls=loss_cls, acc=acc, loss_bbox=[loss_bbox * 0.5, loss_bbox * 0.5])

    def simple_test(self, img, img_metas, rescale=True):
        probs = self.bbox_head(self._pooled(img))[0].float().softmax(1).cpu().numpy()
        return [[np.array([[0, 0, 4, 4, p[c]]], dtype=np.float32) for c in range(len(p))] for p in probs]

    @staticmethod
    def _parse_losses(losses):
        log_vars = OrderedDict()
        for name, value in losses.items():
            log_vars[name] = value.mean() if isinstance(value, torch.Tensor) else sum(v.mean() for v in value)
        loss = sum(v for k, v in log_vars.items() if "loss" in k)
        log_vars["loss"] = loss
        values = {k: v.detach() for k, v in log_vars.items()}
        reduced = all_reduce_dict(values, op="mean") if is_distributed() else {k: v.item() for k, v in values.items()}
        return loss, OrderedDict((k, reduced[k]) for k in log_vars)


@DATASETS.register_module(force=True)
class ToyDataset(Dataset):
    """``num_samples`` fixed images whose mean brightness encodes the label; train items add numpy noise."""

    CLASSES = ("dark", "bright")

    def __init__(self, num_samples: int = 8, test_mode: bool = False, noise: float = 0.1, pipeline=None):
        gen = torch.Generator().manual_seed(0)
        self.labels = torch.arange(num_samples) % 2
        self.images = torch.rand(num_samples, 3, IMG, IMG, generator=gen) + self.labels.view(-1, 1, 1, 1).float()
        self.boxes = torch.rand(num_samples, 1, 4, generator=gen) * IMG
        self.test_mode = test_mode
        self.noise = noise
        self.flag = np.zeros(num_samples, dtype=np.uint8)

    def __len__(self):
        return len(self.labels)

    def _meta(self, i):
        return dict(filename=f"img{i}.jpg", ori_filename=f"img{i}.jpg", ori_shape=(IMG, IMG, 3),
                    img_shape=(IMG, IMG, 3), pad_shape=(IMG, IMG, 3), flip=False, flip_direction=None,
                    scale_factor=np.ones(4, dtype=np.float32),
                    img_norm_cfg=dict(mean=np.zeros(3), std=np.ones(3), to_rgb=False))

    def __getitem__(self, i):
        img = self.images[i]
        if self.test_mode:
            return dict(img=[img], img_metas=[DataContainer(self._meta(i), cpu_only=True)])
        img = img + self.noise * torch.from_numpy(np.random.randn(*img.shape).astype(np.float32))
        return dict(img=DataContainer(img, stack=True), img_metas=DataContainer(self._meta(i), cpu_only=True),
                    gt_bboxes=DataContainer(self.boxes[i]), gt_labels=DataContainer(self.labels[i:i + 1]))

    def evaluate(self, results, metric="bbox", logger=None, **kwargs):
        scores = np.array([[cls[0, 4] for cls in r] for r in results])
        acc = float((scores.argmax(1) == self.labels.numpy()).mean())
        return OrderedDict(bbox_mAP=acc, bbox_mAP_50=acc, bbox_mAP_copypaste=f"{acc:.3f} {acc:.3f}")


def toy_loader(dataset, batch_size: int = 2, shuffle: bool = True, sampler=None):
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle if sampler is None else False, sampler=sampler,
                      collate_fn=partial(collate, samples_per_gpu=batch_size), num_workers=0)


def make_runner(work_dir, model=None, max_epochs=2, lr=0.05, optimizer_config=None, checkpoint_config=None,
                log_config=None, lr_config=None, runner_type="EpochBasedRunner", **runner_kwargs):
    model = model or ToyDetector()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    limit = dict(max_iters=runner_kwargs.pop("max_iters")) if runner_type == "IterBasedRunner" \
        else dict(max_epochs=max_epochs)
    runner = build_runner(dict(type=runner_type, **limit),
                          default_args=dict(model=model, optimizer=optimizer, work_dir=str(work_dir), **runner_kwargs))
    runner.register_training_hooks(lr_config, optimizer_config or dict(grad_clip=None), checkpoint_config,
                                   log_config or dict(interval=2, hooks=[dict(type="TextLoggerHook")]))
    return runner


def read_json_log(work_dir) -> list[dict]:
    files = sorted(p for p in work_dir.iterdir() if p.name.endswith(".log.json"))
    assert len(files) == 1, files
    return [json.loads(line) for line in files[0].read_text().splitlines()]


# ----------------------------------------------------------------------------------------------------
def test_epoch_runner_trains_counts_and_loss_decreases(tmp_path):
    torch.manual_seed(0)
    runner = make_runner(tmp_path, max_epochs=6, meta=dict(exp_name="toy.py", seed=0))
    loader = toy_loader(ToyDataset(8))
    runner.run([loader], [("train", 1)])
    assert (runner.epoch, runner.iter, runner.max_iters) == (6, 24, 24)
    train = [r for r in read_json_log(tmp_path)[1:] if r["mode"] == "train"]
    assert [r["iter"] for r in train[:2]] == [2, 4] and train[0]["epoch"] == 1 and train[-1]["epoch"] == 6
    assert train[-1]["loss"] < 0.7 * train[0]["loss"]
    assert math.isclose(train[0]["loss"], train[0]["loss_cls"] + train[0]["loss_bbox"], abs_tol=2e-5)


def test_register_training_hooks_uses_mmcv_priorities(tmp_path):
    runner = make_runner(tmp_path, lr_config=dict(policy="step", step=[1]), checkpoint_config=dict(interval=1))
    runner.register_hook_from_cfg(dict(type="NumClassCheckHook"))
    runner.register_hook_from_cfg(dict(type="EmptyCacheHook", priority="HIGHEST"))
    names = [type(h).__name__ for h in runner.hooks]
    assert names == ["EmptyCacheHook", "StepLrUpdaterHook", "OptimizerHook", "CheckpointHook", "NumClassCheckHook",
                     "IterTimerHook", "TextLoggerHook"]
    assert [h.priority for h in runner.hooks] == [0, 10, 40, 50, 50, 70, 90]
    info = runner.get_hook_info()
    assert "after_train_epoch:\n(0  ) EmptyCacheHook\n(50 ) CheckpointHook\n(90 ) TextLoggerHook" in info


def test_epoch_based_runner_amp_is_registered_alias():
    assert RUNNERS.get("EpochBasedRunnerAmp") is EpochBasedRunner
    with pytest.raises(KeyError, match="did you mean 'EpochBasedRunner'"):
        build_runner(dict(type="EpochBasedRuner", max_epochs=1), default_args=dict(model=ToyDetector()))


def test_workflow_with_val_phase_logs_val_losses(tmp_path):
    runner = make_runner(tmp_path, max_epochs=2)
    runner.run([toy_loader(ToyDataset(8)), toy_loader(ToyDataset(4), shuffle=False)], [("train", 1), ("val", 1)])
    records = read_json_log(tmp_path)
    val = [r for r in records if r["mode"] == "val"]
    assert [r["epoch"] for r in val] == [1, 2]
    assert list(val[0])[:4] == ["mode", "epoch", "iter", "lr"] and "loss_cls" in val[0] and "time" in val[0]
    assert runner.iter == 8  # val iterations do not count


def test_iter_based_runner_saves_iter_checkpoints(tmp_path):
    runner = make_runner(tmp_path, runner_type="IterBasedRunner", max_iters=6,
                         checkpoint_config=dict(interval=3, by_epoch=False),
                         log_config=dict(interval=2, hooks=[dict(type="TextLoggerHook", by_epoch=False)]))
    runner.run([toy_loader(ToyDataset(4))], [("train", 1)])
    assert runner.iter == 6 and runner.epoch == 2  # 6 iterations over a 2-batch loader = 3 passes
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == ["iter_3.pth", "iter_6.pth", "latest.pth"]
    ckpt = torch.load(tmp_path / "latest.pth", weights_only=True)
    assert ckpt["meta"]["iter"] == 6
    records = read_json_log(tmp_path)
    assert [r["iter"] for r in records if r.get("mode") == "train"] == [2, 4, 6]


def test_non_finite_loss_stops_naming_iteration_and_term(tmp_path):
    runner = make_runner(tmp_path, model=ToyDetector(nan_at_call=3), max_epochs=2)
    weights_before_bad_step = {}

    class Snapshot(Hook):
        def before_train_iter(self, r):
            weights_before_bad_step.update({k: v.detach().clone() for k, v in r.model.named_parameters()})

    runner.register_hook(Snapshot())
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss at iteration 3 \(epoch 1, iter 3/4\): "
                                                 r"loss_bbox=nan; training stopped"):
        runner.run([toy_loader(ToyDataset(8))], [("train", 1)])
    for k, v in runner.model.named_parameters():  # the poisoned step was not applied
        assert torch.equal(v, weights_before_bad_step[k]), k


def test_runner_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="max_epochs or max_iters, not both"):
        EpochBasedRunner(ToyDetector(), max_epochs=1, max_iters=2)
    runner = IterBasedRunner(ToyDetector(), optimizer=None, work_dir=str(tmp_path))
    with pytest.raises(ValueError, match="needs max_iters"):
        runner.run([toy_loader(ToyDataset(2))], [("train", 1)])
    with pytest.raises(ValueError, match="unknown workflow phase 'test'"):
        make_runner(tmp_path).run([toy_loader(ToyDataset(2))], [("test", 1)])
