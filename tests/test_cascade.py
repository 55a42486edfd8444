"""Cascade Mask R-CNN: tiny forward/backward, stage semantics of training and test (spec §3.9 / §3.11)."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from mmdet.core.bbox import bbox2roi
from mmdet.core.mask import BitmapMasks
from mmdet.engine.config import Config
from mmdet.models import build_detector

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {
    "mask_rcnn": ROOT / "configs" / "mask_rcnn" / "mask_rcnn_r50_fpn_1x_coco.py",
    "cascade": ROOT / "configs" / "cascade_rcnn" / "cascade_mask_rcnn_r50_fpn_1x_coco.py",
    "cascade_giou": ROOT / "configs" / "cascade_rcnn"
                    / "cascade_mask_rcnn_r50_fpn_mstrain_480-800_giou_4conv1f_adamw_1x_coco.py",
}
NUM_CLASSES = 3


def tiny_detector_cfg(name: str, channels: int = 16) -> dict:
    """A repo config shrunk for tests: ResNet-18, ``channels``-wide FPN/heads, 3 classes, no pretrained weights,
    64 sampled RoIs per image, at most 200 proposals."""
    cfg = copy.deepcopy(Config.fromfile(str(CONFIGS[name])).model)
    train_cfg, test_cfg = cfg["train_cfg"], cfg["test_cfg"]
    rcnn_cfgs = train_cfg["rcnn"] if isinstance(train_cfg["rcnn"], list) else [train_cfg["rcnn"]]
    for stage_cfg in rcnn_cfgs:
        stage_cfg["sampler"]["num"] = 64
    train_cfg["rpn"]["sampler"]["num"] = 64
    train_cfg["rpn_proposal"].update(nms_pre=200, max_per_img=200)
    test_cfg["rpn"].update(nms_pre=200, max_per_img=200)
    cfg["backbone"].update(depth=18, init_cfg=None)
    cfg["neck"].update(in_channels=[64, 128, 256, 512], out_channels=channels)
    cfg["rpn_head"].update(in_channels=channels, feat_channels=channels)
    roi = cfg["roi_head"]
    for key in ("bbox_roi_extractor", "mask_roi_extractor"):
        roi[key]["out_channels"] = channels
    heads = roi["bbox_head"] if isinstance(roi["bbox_head"], list) else [roi["bbox_head"]]
    for head in heads:
        head.update(in_channels=channels, fc_out_channels=64, num_classes=NUM_CLASSES)
        if "num_shared_convs" in head:
            head["conv_out_channels"] = channels
    roi["mask_head"].update(in_channels=channels, conv_out_channels=channels, num_classes=NUM_CLASSES)
    return cfg


def synthetic_batch(num_imgs: int = 2, size=(96, 128), seed: int = 0) -> dict:
    """Images with bright rectangles, their boxes, labels and bitmap masks."""
    gen = torch.Generator().manual_seed(seed)
    h, w = size
    imgs = torch.randn(num_imgs, 3, h, w, generator=gen) * 0.1
    metas, boxes, labels, masks = [], [], [], []
    for i in range(num_imgs):
        img_boxes = torch.tensor([[10.0, 12.0, 50.0, 60.0], [60.0, 30.0, 120.0, 90.0]]) + i * 2
        canvas = np.zeros((2, h, w), np.uint8)
        for k, (x1, y1, x2, y2) in enumerate(img_boxes.int().tolist()):
            imgs[i, :, y1:y2, x1:x2] += 1.0 + k
            canvas[k, y1:y2, x1:x2] = 1
        metas.append(dict(img_shape=(h, w, 3), ori_shape=(h, w, 3), pad_shape=(h, w, 3), flip=False,
                          flip_direction=None, scale_factor=np.ones(4, np.float32), filename=f"synthetic_{i}.jpg"))
        boxes.append(img_boxes)
        labels.append(torch.tensor([0, 2]))
        masks.append(BitmapMasks(canvas, h, w))
    return dict(img=imgs, img_metas=metas, gt_bboxes=boxes, gt_labels=labels, gt_masks=masks)


@pytest.fixture(scope="module")
def cascade():
    torch.manual_seed(0)
    model = build_detector(tiny_detector_cfg("cascade"))
    model.init_weights()
    return model


def test_forward_train_loss_names_and_backward(cascade):
    cascade.train()
    losses = cascade(**synthetic_batch())
    expected = ["loss_rpn_cls", "loss_rpn_bbox"] + [f"s{i}.{n}" for i in range(3)
                                                     for n in ("loss_cls", "acc", "loss_bbox", "loss_mask")]
    assert list(losses) == expected
    loss, log_vars = cascade._parse_losses(losses)
    assert log_vars["loss"] == pytest.approx(sum(v for k, v in log_vars.items() if "loss" in k and k != "loss"),
                                             rel=1e-5)
    cascade.zero_grad()
    loss.backward()
    for stage in range(3):
        for head in (cascade.roi_head.bbox_head[stage], cascade.roi_head.mask_head[stage]):
            assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in head.parameters())


def test_stage_loss_weights(cascade):
    cascade.train()
    torch.manual_seed(1)
    weighted = cascade(**synthetic_batch())
    cascade.roi_head.stage_loss_weights = [1.0, 1.0, 1.0]
    torch.manual_seed(1)
    unweighted = cascade(**synthetic_batch())
    cascade.roi_head.stage_loss_weights = [1, 0.5, 0.25]
    for stage, weight in ((1, 0.5), (2, 0.25)):
        for name in ("loss_cls", "loss_bbox", "loss_mask"):
            torch.testing.assert_close(weighted[f"s{stage}.{name}"], unweighted[f"s{stage}.{name}"] * weight)
        torch.testing.assert_close(weighted[f"s{stage}.acc"], unweighted[f"s{stage}.acc"])


def test_simple_test_averages_stage_logits_and_masks(cascade):
    """Reproduce §3.9 by hand from the stage heads and compare with simple_test."""
    cascade.eval()
    batch = synthetic_batch(num_imgs=1)
    img, metas = batch["img"], batch["img_metas"]
    roi_head = cascade.roi_head
    with torch.no_grad():
        results = cascade.simple_test(img, metas, rescale=True)
        feats = cascade.extract_feat(img)
        proposals = cascade.rpn_head.simple_test_rpn(feats, metas)
        rois = bbox2roi(proposals)
        logits = []
        for stage in range(3):
            cls_score, bbox_pred = roi_head.bbox_head[stage](roi_head.bbox_roi_extractor[stage](feats[:4], rois))
            logits.append(cls_score)
            if stage < 2:
                rois = roi_head.bbox_head[stage].regress_by_class(rois, cls_score[:, :-1].argmax(1), bbox_pred,
                                                                  metas[0])
        det_bboxes, det_labels = roi_head.bbox_head[-1].get_bboxes(
            rois, sum(logits) / 3, bbox_pred, metas[0]["img_shape"], metas[0]["scale_factor"], rescale=True,
            cfg=roi_head.test_cfg)
        bbox_results, segm_results = results[0]
        ours = np.concatenate([b for b in bbox_results])
        assert len(ours) == len(det_bboxes) and len(bbox_results) == NUM_CLASSES
        np.testing.assert_allclose(np.sort(ours[:, 4]), np.sort(det_bboxes[:, 4].numpy()), rtol=1e-6)
        if len(det_bboxes):
            mask_rois = bbox2roi([det_bboxes[:, :4]])
            probs = [roi_head.mask_head[s](roi_head.mask_roi_extractor[s](feats[:4], mask_rois)).sigmoid()
                     for s in range(3)]
            mean = (sum(probs) / 3).numpy()
            expected = roi_head.mask_head[-1].get_seg_masks(mean, det_bboxes, det_labels, roi_head.test_cfg,
                                                            metas[0]["ori_shape"], metas[0]["scale_factor"], True)
            for ours_c, exp_c in zip(segm_results, expected):
                assert len(ours_c) == len(exp_c)
                for a, b in zip(ours_c, exp_c):
                    assert a.shape == (96, 128) and a.dtype == bool
                    assert (a != b).mean() < 1e-3


def test_refine_drops_gt_rois_and_uses_stage_stds(cascade):
    head0, head1 = cascade.roi_head.bbox_head[0], cascade.roi_head.bbox_head[1]
    assert head0.bbox_coder.stds != head1.bbox_coder.stds
    rois = torch.tensor([[0, 10.0, 10.0, 40.0, 40.0], [0, 5.0, 5.0, 20.0, 30.0], [0, 0.0, 0.0, 90.0, 90.0]])
    labels = torch.tensor([1, 0, 2])
    assert head0.reg_class_agnostic  # stock cascade heads: one set of 4 deltas per roi
    deltas = torch.zeros(3, 4)
    deltas[0] = torch.tensor([1.0, 0.0, 0.0, 0.0])  # dx = 1 * std 0.1 * width 30 -> shift by 3 px
    refined = head0.refine_bboxes(rois, labels, deltas, [torch.tensor([True, False])],
                                  [dict(img_shape=(60, 80, 3))])
    assert len(refined) == 1 and refined[0].shape == (2, 4)  # the gt roi (first positive) is dropped
    torch.testing.assert_close(refined[0][0], torch.tensor([5.0, 5.0, 20.0, 30.0]))
    torch.testing.assert_close(refined[0][1], torch.tensor([0.0, 0.0, 80.0, 60.0]))  # clipped to img_shape
    moved = head0.regress_by_class(rois[:1], labels[:1], deltas[:1], dict(img_shape=(60, 80, 3)))
    torch.testing.assert_close(moved, torch.tensor([[0, 13.0, 10.0, 43.0, 40.0]]))


def test_seed_giou_syncbn_cascade_trains():
    torch.manual_seed(0)
    model = build_detector(tiny_detector_cfg("cascade_giou"))
    model.init_weights()
    model.train()
    head = model.roi_head.bbox_head[0]
    assert head.reg_decoded_bbox and not head.reg_class_agnostic
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    batch = synthetic_batch(num_imgs=1)
    history = []
    for _ in range(3):
        torch.manual_seed(3)
        outputs = model.train_step(batch, optimizer)
        optimizer.zero_grad()
        outputs["loss"].backward()
        optimizer.step()
        history.append(outputs["log_vars"]["loss"])
    assert all(np.isfinite(history)) and history[-1] < history[0]
    assert "s2.loss_bbox" in outputs["log_vars"] and outputs["num_samples"] == 1


def test_cascade_errors():
    cfg = tiny_detector_cfg("cascade")
    cfg["roi_head"]["stage_loss_weights"] = [1, 0.5]
    with pytest.raises(ValueError, match="stage_loss_weights has 2 entries but num_stages=3"):
        build_detector(cfg)
