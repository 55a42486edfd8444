"""Losses of mmdetection 2.x: CrossEntropyLoss (softmax / sigmoid / mask), L1, SmoothL1, IoU, GIoU, accuracy."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mmdet.models.builder import build_loss
from mmdet.models.losses import (Accuracy, GIoULoss, accuracy, weight_reduce_loss, weighted_loss)

EPS32 = torch.finfo(torch.float32).eps


def test_registered_names():
    for cfg in (dict(type="CrossEntropyLoss"), dict(type="L1Loss"), dict(type="SmoothL1Loss", beta=1 / 9),
                dict(type="GIoULoss"), dict(type="IoULoss")):
        assert type(build_loss(cfg)).__name__ == cfg["type"]


def test_weight_reduce_loss_and_avg_factor():
    loss = torch.tensor([1.0, 2.0, 3.0])
    w = torch.tensor([1.0, 0.0, 2.0])
    assert weight_reduce_loss(loss, w, "sum").item() == 7.0
    assert weight_reduce_loss(loss, w, "mean").item() == pytest.approx(7 / 3)
    assert weight_reduce_loss(loss, w, "mean", avg_factor=4).item() == pytest.approx(7 / (4 + EPS32))
    assert torch.equal(weight_reduce_loss(loss, w, "none", avg_factor=4), loss * w)
    with pytest.raises(ValueError, match='avg_factor can not be used with reduction="sum"'):
        weight_reduce_loss(loss, w, "sum", avg_factor=4)

    @weighted_loss
    def squared(pred, target):
        return (pred - target) ** 2

    assert squared(torch.tensor([1.0, 3.0]), torch.zeros(2), reduction="sum").item() == 10.0


def test_softmax_ce_class_weight_ignore_and_avg_non_ignore():
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(6, 4, generator=g), torch.tensor([0, 3, 1, -100, 2, 3])
    weights = torch.tensor([1.0, 0.5, 1.0, 1.0, 2.0, 0.0])
    ce = build_loss(dict(type="CrossEntropyLoss", loss_weight=2.0))
    per = F.cross_entropy(logits, labels, reduction="none", ignore_index=-100)
    torch.testing.assert_close(ce(logits, labels, weights), 2.0 * (per * weights).mean())
    torch.testing.assert_close(ce(logits, labels, weights, avg_factor=3.0), 2.0 * (per * weights).sum() / (3 + EPS32))
    avg = build_loss(dict(type="CrossEntropyLoss", avg_non_ignore=True))
    torch.testing.assert_close(avg(logits, labels), per.sum() / 5)
    cw = build_loss(dict(type="CrossEntropyLoss", class_weight=[1.0, 2.0, 3.0, 4.0]))
    torch.testing.assert_close(cw(logits, labels, reduction_override="sum"),
                               F.cross_entropy(logits, labels, torch.tensor([1.0, 2, 3, 4]), reduction="sum"))


def test_sigmoid_ce_background_label_is_all_zero_target():
    logits = torch.tensor([[0.5], [-1.0], [2.0]])  # RPN: 1 channel, label 0 = fg, 1 = background
    labels = torch.tensor([0, 1, 1])
    weights = torch.tensor([1.0, 1.0, 0.0])
    loss = build_loss(dict(type="CrossEntropyLoss", use_sigmoid=True))(logits, labels, weights, avg_factor=2)
    expected = (F.softplus(-torch.tensor(0.5)) + F.softplus(torch.tensor(-1.0))) / (2 + EPS32)
    torch.testing.assert_close(loss, expected)
    # multi-class sigmoid with ignore_index and same-shape binary targets
    multi = build_loss(dict(type="CrossEntropyLoss", use_sigmoid=True, ignore_index=255, avg_non_ignore=True))
    out = multi(torch.zeros(3, 2), torch.tensor([1, 255, 2]))
    torch.testing.assert_close(out, torch.tensor(math.log(2.0)))  # 2 valid rows x 2 channels, each log 2, / 2 rows
    binary = build_loss(dict(type="CrossEntropyLoss", use_sigmoid=True))(torch.zeros(2, 2), torch.ones(2, 2))
    torch.testing.assert_close(binary, torch.tensor(math.log(2.0)))


def test_mask_ce_uses_label_channel_and_pixel_mean():
    pred = torch.zeros(2, 3, 4, 4)
    pred[0, 1] = 2.0
    pred[1, 2] = -1.0
    target = torch.ones(2, 4, 4)
    loss = build_loss(dict(type="CrossEntropyLoss", use_mask=True, loss_weight=1.0))(pred, target,
                                                                                       torch.tensor([1, 2]))
    expected = (F.softplus(torch.tensor(-2.0)) + F.softplus(torch.tensor(1.0))) / 2
    assert loss.shape == (1,)
    torch.testing.assert_close(loss[0], expected)
    with pytest.raises(ValueError, match="use_sigmoid and use_mask"):
        build_loss(dict(type="CrossEntropyLoss", use_sigmoid=True, use_mask=True))


def test_l1_and_smooth_l1():
    pred = torch.tensor([[0.0, 0.05, 0.2, 1.0]])
    target = torch.zeros(1, 4)
    weight = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    l1 = build_loss(dict(type="L1Loss", loss_weight=2.0))
    torch.testing.assert_close(l1(pred, target, weight, avg_factor=2), torch.tensor(2 * 0.25 / (2 + EPS32)))
    beta = 1 / 9
    sl1 = build_loss(dict(type="SmoothL1Loss", beta=beta))
    # 0.05 < beta: 0.5 * d^2 / beta; 0.2 >= beta: d - beta / 2
    expected = torch.tensor([0.0, 0.5 * 0.05 ** 2 / beta, 0.2 - beta / 2, 1.0 - beta / 2])
    torch.testing.assert_close(sl1(pred, target, reduction_override="none"), expected[None])
    assert sl1(pred, target).item() == pytest.approx(expected.mean().item())
    assert sl1(torch.zeros(0, 4, requires_grad=True), torch.zeros(0, 4)).requires_grad
    with pytest.raises(ValueError, match="differ in shape"):
        l1(torch.zeros(2, 4), torch.zeros(3, 4))


def test_giou_and_iou_losses():
    pred = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10]])
    target = torch.tensor([[5.0, 5, 15, 15], [0, 0, 10, 10]])
    giou = GIoULoss(loss_weight=10.0)
    # pair 0: IoU 25/175, enclosing 225 -> GIoU = 1/7 - 50/225; pair 1: GIoU 1
    per_pair = torch.tensor([1 - (25 / 175 - 50 / 225), 0.0])
    torch.testing.assert_close(giou(pred, target, reduction_override="none"), 10 * per_pair)
    torch.testing.assert_close(giou(pred, target, torch.ones(2, 4), avg_factor=4), 10 * per_pair.sum() / (4 + EPS32))
    assert giou.eps == 1e-6
    # an all-zero weight short-cuts to a zero loss that keeps the graph
    p = pred.clone().requires_grad_()
    zero = giou(p, target, torch.zeros(2))
    assert zero.item() == 0.0 and zero.requires_grad
    iou = build_loss(dict(type="IoULoss", mode="linear"))
    torch.testing.assert_close(iou(pred, target, reduction_override="none"), torch.tensor([1 - 25 / 175, 0.0]))
    log_iou = build_loss(dict(type="IoULoss"))
    torch.testing.assert_close(log_iou(pred[:1], target[:1]), -torch.log(torch.tensor(25 / 175)))


def test_accuracy():
    pred = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5], [0.3, 0.4, 0.3]])
    target = torch.tensor([1, 0, 1, 0])
    assert accuracy(pred, target).tolist() == [50.0]
    top1, top2 = accuracy(pred, target, topk=(1, 2))
    assert (top1.item(), top2.item()) == (50.0, 100.0)
    assert accuracy(pred, target, thresh=0.85).item() == 25.0
    assert Accuracy(topk=(1,))(pred, target)[0].item() == 50.0
    assert accuracy(pred[:0], target[:0]).item() == 0.0
    with pytest.raises(ValueError, match="top-4 requested"):
        accuracy(pred, target, topk=4)
