"""RoI extractor, bbox / mask heads, mask targets and the StandardRoIHead test paths (spec §3.6-§3.8, §3.11)."""
from __future__ import annotations

from types import SimpleNamespace

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F
from torchvision.ops import roi_align

from mmdet.core.mask import BitmapMasks, mask_target
from mmdet.models import build_detector, build_head, build_roi_extractor
from mmdet.models.roi_heads.mask_heads.fcn_mask_head import paste_masks_in_image

from test_cascade import NUM_CLASSES, synthetic_batch, tiny_detector_cfg


def test_roi_level_mapping_and_extraction():
    extractor = build_roi_extractor(dict(type="SingleRoIExtractor", out_channels=4, featmap_strides=[4, 8, 16, 32],
                                         roi_layer=dict(type="RoIAlign", output_size=7, sampling_ratio=0)))
    sides = torch.tensor([111.9, 112.0, 223.9, 224.0, 447.9, 448.0, 2000.0, 8.0])
    rois = torch.stack([torch.zeros_like(sides), torch.zeros_like(sides), torch.zeros_like(sides), sides, sides], 1)
    assert extractor.map_roi_levels(rois, 4).tolist() == [0, 1, 1, 2, 2, 3, 3, 0]
    feats = tuple(torch.randn(2, 4, 64 // 2 ** i, 64 // 2 ** i) for i in range(4))
    rois = torch.tensor([[1, 3.5, 2.0, 60.0, 40.0], [0, 0.0, 0.0, 250.0, 250.0], [1, 10.0, 10.0, 12.0, 30.0]])
    out = extractor(feats, rois)
    for row, level in zip(range(3), extractor.map_roi_levels(rois, 4).tolist()):
        ref = roi_align(feats[level], rois[row:row + 1], 7, 1.0 / (4 * 2 ** level), 0, True)
        torch.testing.assert_close(out[row:row + 1], ref)


def _sampling(pos_bboxes, neg_bboxes, pos_gt_bboxes, pos_gt_labels):
    return SimpleNamespace(pos_bboxes=pos_bboxes, neg_bboxes=neg_bboxes, pos_gt_bboxes=pos_gt_bboxes,
                           pos_gt_labels=pos_gt_labels)


def test_bbox_head_targets_and_loss():
    head = build_head(dict(type="Shared2FCBBoxHead", in_channels=4, fc_out_channels=8, roi_feat_size=7,
                           num_classes=NUM_CLASSES, loss_bbox=dict(type="L1Loss", loss_weight=1.0)))
    pos = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 25.0, 15.0]])
    gt = torch.tensor([[1.0, 0.0, 11.0, 12.0], [5.0, 5.0, 25.0, 15.0]])
    res = [_sampling(pos, torch.tensor([[30.0, 30.0, 40.0, 40.0]]), gt, torch.tensor([2, 0])),
           _sampling(pos[:0], torch.tensor([[1.0, 1.0, 3.0, 3.0]]), gt[:0], torch.tensor([], dtype=torch.long))]
    labels, label_weights, bbox_targets, bbox_weights = head.get_targets(res, None, None, dict(pos_weight=-1))
    assert labels.tolist() == [2, 0, NUM_CLASSES, NUM_CLASSES]  # background = num_classes (last logit)
    assert label_weights.tolist() == [1, 1, 1, 1] and bbox_weights.sum() == 8
    torch.testing.assert_close(bbox_targets[0], head.bbox_coder.encode(pos[:1], gt[:1])[0])
    cls_score = torch.randn(4, NUM_CLASSES + 1)
    bbox_pred = torch.randn(4, 4 * NUM_CLASSES)
    rois = torch.cat([torch.tensor([[0.0], [0.0], [0.0], [1.0]]), torch.cat([pos, res[0].neg_bboxes,
                                                                              res[1].neg_bboxes])], 1)
    losses = head.loss(cls_score, bbox_pred, rois, labels, label_weights, bbox_targets, bbox_weights)
    torch.testing.assert_close(losses["loss_cls"], F.cross_entropy(cls_score, labels))
    picked = torch.stack([bbox_pred[0, 8:12], bbox_pred[1, 0:4]])
    torch.testing.assert_close(losses["loss_bbox"], (picked - bbox_targets[:2]).abs().sum() / 4)  # / all rois
    expected_acc = (cls_score.argmax(1) == labels).float().mean() * 100
    torch.testing.assert_close(losses["acc"].reshape(()), expected_acc)


def test_get_bboxes_clips_and_rescales():
    head = build_head(dict(type="Shared2FCBBoxHead", in_channels=4, fc_out_channels=8, num_classes=NUM_CLASSES,
                           reg_class_agnostic=True))
    rois = torch.tensor([[0, 10.0, 20.0, 50.0, 100.0]])
    deltas = torch.tensor([[0.5, -0.5, 1.0, 50.0]])
    bboxes, scores = head.get_bboxes(rois, torch.zeros(1, NUM_CLASSES + 1), deltas, (120, 200, 3),
                                     np.array([2.0, 4.0, 2.0, 4.0], np.float32), rescale=True)
    torch.testing.assert_close(bboxes, torch.tensor([[7.5719, 0.0, 56.4281, 120.0]]) / torch.tensor(
        [2.0, 4.0, 2.0, 4.0]), atol=1e-4, rtol=0)
    torch.testing.assert_close(scores, torch.full((1, NUM_CLASSES + 1), 1.0 / (NUM_CLASSES + 1)))


def _paste_one_by_one(masks, boxes, h, w, thr):
    """Straightforward reference of mmdetection's CPU paste: one grid_sample per mask, over its own box region
    ``floor(x1) - 1 .. ceil(x2) + 1`` (clamped to the canvas); zero elsewhere."""
    out = torch.zeros(len(masks), h, w, dtype=torch.bool)
    for i, (mask, (x0, y0, x1, y1)) in enumerate(zip(masks, boxes.tolist())):
        c0, r0 = max(int(math.floor(x0)) - 1, 0), max(int(math.floor(y0)) - 1, 0)
        c1, r1 = min(int(math.ceil(x1)) + 1, w), min(int(math.ceil(y1)) + 1, h)
        xs = torch.arange(c0, c1, dtype=torch.float32) + 0.5
        ys = torch.arange(r0, r1, dtype=torch.float32) + 0.5
        gx = torch.nan_to_num((xs - x0) / (x1 - x0) * 2 - 1, posinf=0.0, neginf=0.0)
        gy = torch.nan_to_num((ys - y0) / (y1 - y0) * 2 - 1, posinf=0.0, neginf=0.0)
        grid = torch.stack([gx[None, :].expand(len(ys), len(xs)), gy[:, None].expand(len(ys), len(xs))], -1)[None]
        out[i, r0:r1, c0:c1] = F.grid_sample(mask[None], grid, align_corners=False)[0, 0] >= thr
    return out


def test_paste_masks_matches_reference():
    torch.manual_seed(0)
    masks = torch.rand(6, 1, 28, 28)
    boxes = torch.tensor([[3.2, 4.7, 40.1, 33.3], [0.0, 0.0, 63.0, 47.0], [50.5, 30.2, 80.0, 60.0],
                          [10.0, 10.0, 10.0, 30.0], [-5.0, -3.0, 12.0, 9.0], [20.3, 5.1, 21.2, 6.9]])
    ours = paste_masks_in_image(masks, boxes, 48, 64, 0.5)
    ref = _paste_one_by_one(masks, boxes, 48, 64, 0.5)
    assert ours.dtype == torch.bool and ours.shape == (6, 48, 64)
    assert torch.equal(ours, ref)


def test_get_seg_masks_rescale_semantics():
    head = build_head(dict(type="FCNMaskHead", num_convs=1, in_channels=4, conv_out_channels=4, num_classes=2))
    logits = torch.full((1, 2, 28, 28), -10.0)
    logits[0, 1] = 10.0
    det = torch.tensor([[20.0, 10.0, 60.0, 30.0, 0.9]])  # resized coordinates; scale 2 -> ori box (10,5,30,15)
    cfg = dict(mask_thr_binary=0.5)
    segms = head.get_seg_masks(logits, det, torch.tensor([1]), cfg, (40, 50, 3),
                               np.array([2.0, 2.0, 2.0, 2.0], np.float32), rescale=True)
    assert segms[0] == [] and len(segms[1]) == 1
    mask = segms[1][0]
    assert mask.shape == (40, 50) and mask.dtype == bool
    ys, xs = np.nonzero(mask)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (10, 29, 5, 14)
    canvas = head.get_seg_masks(logits, det, torch.tensor([1]), cfg, (40, 50, 3),
                                np.array([2.0, 2.0, 2.0, 2.0], np.float32), rescale=False)[1][0]
    assert canvas.shape == (80, 100)


def test_mask_target_clips_and_binarises():
    canvas = np.zeros((1, 20, 30), np.uint8)
    canvas[0, 5:15, 10:20] = 1
    masks = BitmapMasks(canvas, 20, 30)
    proposals = torch.tensor([[8.0, 3.0, 40.0, 17.0]])  # x2 beyond the canvas -> clipped to 30
    targets = mask_target([proposals], [torch.tensor([0])], [masks], dict(mask_size=28))
    ref = roi_align(torch.from_numpy(canvas).float()[None], torch.tensor([[0, 8.0, 3.0, 30.0, 17.0]]), 28, 1.0, 0,
                    True)[0] >= 0.5
    assert targets.shape == (1, 28, 28) and targets.dtype == torch.float32
    assert torch.equal(targets.bool(), ref)


@pytest.fixture(scope="module")
def mask_rcnn():
    torch.manual_seed(0)
    model = build_detector(tiny_detector_cfg("mask_rcnn"))
    model.init_weights()
    model.CLASSES = ("a", "b", "c")
    return model


def test_mask_rcnn_train_and_test_interfaces(mask_rcnn, tmp_path):
    mask_rcnn.train()
    losses = mask_rcnn(**synthetic_batch())
    assert list(losses) == ["loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "acc", "loss_bbox", "loss_mask"]
    assert len(losses["loss_rpn_cls"]) == 5
    mask_rcnn.eval()
    batch = synthetic_batch(num_imgs=1)
    with torch.no_grad():
        results = mask_rcnn(img=[batch["img"]], img_metas=[batch["img_metas"]], return_loss=False, rescale=True)
    bbox_results, segm_results = results[0]
    assert len(bbox_results) == NUM_CLASSES and len(segm_results) == NUM_CLASSES
    assert all(len(b) == len(s) for b, s in zip(bbox_results, segm_results))
    drawn = mask_rcnn.show_result(np.zeros((96, 128, 3), np.uint8), results[0], score_thr=0.0)
    assert drawn.shape == (96, 128, 3)
    out_file = tmp_path / "vis" / "result.jpg"
    mask_rcnn.show_result(np.zeros((96, 128, 3), np.uint8), results[0], score_thr=0.0, out_file=str(out_file))
    assert out_file.is_file()


def _mirror(boxes: np.ndarray | torch.Tensor, width: float):
    out = boxes.copy() if isinstance(boxes, np.ndarray) else boxes.clone()
    out[:, 0], out[:, 2] = width - boxes[:, 2], width - boxes[:, 0]
    return out


def test_detector_aug_test_runs_two_views(mask_rcnn):
    mask_rcnn.eval()
    batch = synthetic_batch(num_imgs=1)
    img, meta = batch["img"], batch["img_metas"][0]
    flipped_meta = dict(meta, flip=True, flip_direction="horizontal")
    with torch.no_grad():
        results = mask_rcnn(img=[img, img.flip(-1)], img_metas=[[dict(meta)], [flipped_meta]], return_loss=False,
                            rescale=True)
    assert len(results) == 1 and len(results[0][0]) == NUM_CLASSES
    boxes = np.concatenate(results[0][0])
    assert (boxes[:, 2] <= meta["img_shape"][1] + 1e-3).all() and (boxes[:, 0] >= 0).all()


def test_roi_head_aug_test_identical_views_equals_simple_test(mask_rcnn):
    mask_rcnn.eval()
    batch = synthetic_batch(num_imgs=1)
    img, meta = batch["img"], batch["img_metas"][0]
    with torch.no_grad():
        feats = mask_rcnn.extract_feat(img)
        proposals = mask_rcnn.rpn_head.simple_test_rpn(feats, [meta])
        single = mask_rcnn.roi_head.simple_test(feats, proposals, [meta], rescale=True)[0]
        merged = mask_rcnn.roi_head.aug_test([feats, feats], proposals, [[meta], [meta]], rescale=True)[0]
    for a, b in zip(single[0], merged[0]):
        np.testing.assert_allclose(a, b, atol=1e-4)
    for a, b in zip(single[1], merged[1]):
        assert len(a) == len(b) and all((x != y).mean() < 1e-3 for x, y in zip(a, b))


def test_roi_head_aug_test_unflips_flipped_view(mask_rcnn):
    """A flipped view (flip=True) gives the flipped image's detections mirrored back to the original frame."""
    mask_rcnn.eval()
    batch = synthetic_batch(num_imgs=1)
    flipped_img, meta = batch["img"].flip(-1), batch["img_metas"][0]
    width = meta["img_shape"][1]
    flipped_meta = dict(meta, flip=True, flip_direction="horizontal")
    with torch.no_grad():
        feats = mask_rcnn.extract_feat(flipped_img)
        proposals = mask_rcnn.rpn_head.simple_test_rpn(feats, [meta])
        direct = mask_rcnn.roi_head.simple_test(feats, proposals, [meta], rescale=True)[0]
        original_frame = [torch.cat([_mirror(proposals[0][:, :4], width), proposals[0][:, 4:]], 1)]
        via_tta = mask_rcnn.roi_head.aug_test([feats], original_frame, [[flipped_meta]], rescale=True)[0]
    assert sum(len(b) for b in direct[0]) > 0
    for d, t in zip(direct[0], via_tta[0]):
        np.testing.assert_allclose(_mirror(d, width), t, atol=1e-3)
    for d, t in zip(direct[1], via_tta[1]):
        assert len(d) == len(t) and all((a[:, ::-1] != b).mean() < 2e-3 for a, b in zip(d, t))
