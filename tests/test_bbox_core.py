"""Box core of mmdetection 2.x: IoU, DeltaXYWHBBoxCoder, MaxIoUAssigner, RandomSampler, transforms."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou, generalized_box_iou

from mmdet.core.bbox import (AssignResult, BboxOverlaps2D, DeltaXYWHBBoxCoder, MaxIoUAssigner, PseudoSampler,
                             RandomSampler, bbox2result, bbox2roi, bbox_flip, bbox_mapping, bbox_mapping_back,
                             bbox_overlaps, build_assigner, build_bbox_coder, build_sampler, roi2bbox)

RCNN_STDS = (0.1, 0.1, 0.2, 0.2)


def random_boxes(n, size=100.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * size
    wh = torch.rand(n, 2, generator=g) * size / 2 + 1
    return torch.cat([xy, xy + wh], 1)


# ----------------------------------------------------------------------------------- IoU
def test_bbox_overlaps_modes_against_torchvision():
    a, b = random_boxes(7, seed=1), random_boxes(5, seed=2)
    torch.testing.assert_close(bbox_overlaps(a, b), box_iou(a, b))
    torch.testing.assert_close(bbox_overlaps(a, b, mode="giou"), generalized_box_iou(a, b))
    torch.testing.assert_close(bbox_overlaps(a[:5], b, is_aligned=True), box_iou(a[:5], b).diagonal())
    # iof = intersection / area of the first set
    lt, rb = torch.max(a[:, None, :2], b[None, :, :2]), torch.min(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    torch.testing.assert_close(bbox_overlaps(a, b, mode="iof"), inter / area_a[:, None])
    assert bbox_overlaps(a, b[:0]).shape == (7, 0) and bbox_overlaps(a[:0], b[:0], is_aligned=True).shape == (0,)
    # batched leading dims and a 5th score column in the calculator
    assert bbox_overlaps(a[None].expand(3, -1, -1), b[None].expand(3, -1, -1)).shape == (3, 7, 5)
    torch.testing.assert_close(BboxOverlaps2D()(torch.cat([a, torch.ones(7, 1)], 1), b), box_iou(a, b))
    with pytest.raises(ValueError, match="mode must be"):
        bbox_overlaps(a, b, mode="dice")


def test_no_plus_one_and_eps():
    box = torch.tensor([[0.0, 0, 10, 10]])
    assert bbox_overlaps(box, torch.tensor([[5.0, 0, 15, 10]])).item() == pytest.approx(50 / 150)
    # degenerate boxes: union clamped to eps, IoU 0 not NaN
    assert bbox_overlaps(torch.zeros(1, 4), torch.zeros(1, 4)).item() == 0.0


# ----------------------------------------------------------------------------------- coder
def test_coder_spec_check_values():
    coder = build_bbox_coder(dict(type="DeltaXYWHBBoxCoder", target_stds=RCNN_STDS))
    roi = torch.tensor([[10.0, 20, 50, 100]])
    decoded = coder.decode(roi, torch.tensor([[0.5, -0.5, 1.0, 50]]), max_shape=(120, 200))
    torch.testing.assert_close(decoded, torch.tensor([[7.5719, 0.0, 56.4281, 120.0]]), atol=1e-4, rtol=0)
    encoded = coder.encode(roi, torch.tensor([[12.0, 18, 60, 90]]))
    torch.testing.assert_close(encoded, torch.tensor([[1.5, -0.75, 0.9116, -0.5268]]), atol=1e-4, rtol=0)


def test_coder_roundtrip_class_specific_and_clamps():
    coder = DeltaXYWHBBoxCoder(target_means=(0.1, -0.1, 0.0, 0.05), target_stds=RCNN_STDS)
    rois, gts = random_boxes(20, seed=3), random_boxes(20, seed=4)
    torch.testing.assert_close(coder.decode(rois, coder.encode(rois, gts)), gts, atol=1e-4, rtol=1e-5)
    # class-specific: 3 classes x 4 deltas share the roi; each slice equals a separate decode
    deltas = torch.randn(20, 12, generator=torch.Generator().manual_seed(5))
    multi = coder.decode(rois, deltas, max_shape=(90, 80))
    for c in range(3):
        torch.testing.assert_close(multi[:, 4 * c:4 * c + 4], coder.decode(rois, deltas[:, 4 * c:4 * c + 4], (90, 80)))
    assert multi[:, 0::2].max() <= 80 and multi[:, 1::2].max() <= 90 and multi.min() >= 0
    # dw clamp at |log(16/1000)|: a huge dw gives exactly w * 62.5
    box = DeltaXYWHBBoxCoder().decode(torch.tensor([[0.0, 0, 2, 2]]), torch.tensor([[0.0, 0, 100, -100]]))
    torch.testing.assert_close(box, torch.tensor([[1 - 62.5, 1 - 0.016, 1 + 62.5, 1 + 0.016]]))
    # clip_border=False keeps boxes outside, batched (B, N, 4) input works
    unclipped = DeltaXYWHBBoxCoder(clip_border=False).decode(rois[None], deltas[None, :, :4], max_shape=(10, 10))
    assert unclipped.shape == (1, 20, 4) and unclipped.max() > 10
    assert coder.decode(rois[:0], deltas[:0]).shape == (0, 12)


# ----------------------------------------------------------------------------------- assigner
def test_assigner_thresholds_and_low_quality_rule():
    assigner = build_assigner(dict(type="MaxIoUAssigner", pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3))
    overlaps = torch.tensor([  # 3 gts x 6 boxes
        [0.80, 0.50, 0.50, 0.10, 0.00, 0.35],
        [0.10, 0.20, 0.50, 0.29, 0.00, 0.35],
        [0.10, 0.20, 0.25, 0.20, 0.25, 0.20]])
    result = assigner.assign_wrt_overlaps(overlaps, torch.tensor([7, 8, 9]))
    # box0 >= 0.7 -> gt0 (also gt0's best); gt1's best 0.5 is reached at box 2 only -> box 2 to gt1 (it ties
    # gt0 there; argmax would say gt0); gt2's best 0.25 < min_pos_iou: no low-quality match. Boxes 3/4
    # (max IoU < 0.3) are negatives; boxes 1 (0.5) and 5 (0.35) are ignored
    assert result.gt_inds.tolist() == [1, -1, 2, 0, 0, -1]
    assert result.labels.tolist() == [7, -1, 8, -1, -1, -1]
    torch.testing.assert_close(result.max_overlaps, torch.tensor([0.8, 0.5, 0.5, 0.29, 0.25, 0.35]))


def test_low_quality_all_ties_and_later_gt_overwrites():
    assigner = MaxIoUAssigner(pos_iou_thr=0.9, neg_iou_thr=0.1, min_pos_iou=0.3)
    overlaps = torch.tensor([[0.4, 0.4, 0.2, 0.0],
                             [0.4, 0.1, 0.4, 0.0]])
    # gt0 takes boxes 0 and 1 (both at its best 0.4); gt1 then overwrites box 0 and takes box 2
    assert assigner.assign_wrt_overlaps(overlaps).gt_inds.tolist() == [2, 1, 2, 0]
    first_only = MaxIoUAssigner(pos_iou_thr=0.9, neg_iou_thr=0.1, min_pos_iou=0.3, gt_max_assign_all=False)
    assert first_only.assign_wrt_overlaps(overlaps).gt_inds.tolist() == [2, -1, -1, 0]
    no_lq = MaxIoUAssigner(pos_iou_thr=0.9, neg_iou_thr=(0.3, 0.5), match_low_quality=False)
    assert no_lq.assign_wrt_overlaps(overlaps).gt_inds.tolist() == [0, 0, 0, -1]


def test_assigner_matches_loop_reference_on_random_boxes():
    assigner = MaxIoUAssigner(pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3)
    gts, boxes = random_boxes(9, seed=6), random_boxes(500, seed=7)
    boxes[::50] = gts.repeat(2, 1)[:10]  # exact copies create ties at IoU 1
    result = assigner.assign(boxes, gts)
    iou = box_iou(gts, boxes)
    max_iou, argmax = iou.max(0)
    expected = torch.full((500,), -1)
    expected[max_iou < 0.3] = 0
    expected[max_iou >= 0.7] = argmax[max_iou >= 0.7] + 1
    for i in range(9):
        if iou[i].max() >= 0.3:
            expected[iou[i] == iou[i].max()] = i + 1
    assert torch.equal(result.gt_inds, expected)


def test_assigner_empty_and_ignore():
    assigner = MaxIoUAssigner(pos_iou_thr=0.5, neg_iou_thr=0.5, ignore_iof_thr=0.5)
    boxes = torch.tensor([[0.0, 0, 10, 10], [50, 50, 60, 60], [100, 100, 110, 110]])
    empty = assigner.assign(boxes, torch.zeros(0, 4), gt_labels=torch.zeros(0, dtype=torch.long))
    assert empty.gt_inds.tolist() == [0, 0, 0] and empty.labels.tolist() == [-1, -1, -1]
    assert assigner.assign(boxes[:0], boxes[:1]).gt_inds.shape == (0,)
    result = assigner.assign(boxes, torch.tensor([[0.0, 0, 10, 10]]), gt_bboxes_ignore=torch.tensor([[48.0, 48, 70, 70]]))
    assert result.gt_inds.tolist() == [1, -1, 0]


def test_assign_result_add_gt():
    result = AssignResult(2, torch.tensor([0, 2, -1]), torch.tensor([0.1, 0.8, 0.4]), torch.tensor([-1, 5, -1]))
    result.add_gt_(torch.tensor([3, 5]))
    assert result.gt_inds.tolist() == [1, 2, 0, 2, -1]
    assert result.max_overlaps.tolist() == pytest.approx([1.0, 1.0, 0.1, 0.8, 0.4])
    assert result.labels.tolist() == [3, 5, -1, 5, -1] and result.num_preds == 5


# ----------------------------------------------------------------------------------- sampler
def test_random_sampler_never_draws_when_enough_room():
    sampler = build_sampler(dict(type="RandomSampler", num=1000, pos_fraction=0.5, add_gt_as_proposals=False),
                            context=None)
    gt_inds = torch.tensor([0, 1, -1, 0, 2, 0, 1])
    boxes = random_boxes(7, seed=8)
    gts = random_boxes(2, seed=9)
    state = torch.get_rng_state()
    res = sampler.sample(AssignResult(2, gt_inds, torch.zeros(7)), boxes, gts)
    assert torch.equal(torch.get_rng_state(), state)  # no randperm drawn
    assert res.pos_inds.tolist() == [1, 4, 6] and res.neg_inds.tolist() == [0, 3, 5]
    assert res.pos_assigned_gt_inds.tolist() == [0, 1, 0]
    assert torch.equal(res.pos_gt_bboxes, gts[[0, 1, 0]]) and torch.equal(res.pos_bboxes, boxes[[1, 4, 6]])
    assert torch.equal(res.bboxes, torch.cat([boxes[[1, 4, 6]], boxes[[0, 3, 5]]]))
    assert res.pos_is_gt.tolist() == [0, 0, 0] and res.pos_gt_labels is None


def test_random_sampler_limits_and_gt_as_proposals():
    torch.manual_seed(0)
    sampler = RandomSampler(num=8, pos_fraction=0.25)
    gt_inds = torch.tensor([1] * 10 + [0] * 30)
    labels = torch.where(gt_inds > 0, 4, -1)
    gts = random_boxes(1, seed=1)
    res = sampler.sample(AssignResult(1, gt_inds, torch.zeros(40), labels), random_boxes(40, seed=2), gts,
                         gt_labels=torch.tensor([4]))
    # gt prepended as candidate 0; 2 positives (int(8 * 0.25)) from 11; 6 negatives
    assert res.pos_inds.numel() == 2 and res.neg_inds.numel() == 6
    assert (res.pos_inds <= 10).all() and (res.neg_inds > 10).all()
    assert res.pos_gt_labels.tolist() == [4, 4] and res.num_gts == 1
    with pytest.raises(ValueError, match="gt_labels must be given"):
        sampler.sample(AssignResult(1, gt_inds.clone(), torch.zeros(40)), random_boxes(40), gts)
    ub = RandomSampler(num=100, pos_fraction=0.5, neg_pos_ub=2, add_gt_as_proposals=False)
    res = ub.sample(AssignResult(1, gt_inds.clone(), torch.zeros(40)), random_boxes(40), gts)
    assert res.pos_inds.numel() == 10 and res.neg_inds.numel() == 20


def test_pseudo_sampler_takes_everything():
    res = PseudoSampler().sample(AssignResult(1, torch.tensor([0, 1, -1, 0]), torch.zeros(4)), random_boxes(4),
                                 random_boxes(1))
    assert res.pos_inds.tolist() == [1] and res.neg_inds.tolist() == [0, 3]


# ----------------------------------------------------------------------------------- transforms
def test_rois_results_and_mapping():
    b0, b1 = random_boxes(3, seed=1), random_boxes(2, seed=2)
    rois = bbox2roi([b0, torch.zeros(0, 4), torch.cat([b1, torch.ones(2, 1)], 1)])
    assert rois.shape == (5, 5) and rois[:, 0].tolist() == [0, 0, 0, 2, 2]
    back = roi2bbox(rois)
    assert len(back) == 2 and torch.equal(back[0], b0) and torch.equal(back[1], b1)

    dets = torch.tensor([[0.0, 0, 1, 1, 0.9], [1, 1, 2, 2, 0.8], [2, 2, 3, 3, 0.7]])
    res = bbox2result(dets, torch.tensor([2, 0, 2]), 3)
    assert [r.shape for r in res] == [(1, 5), (0, 5), (2, 5)] and res[0].dtype == np.float32
    assert [r.shape for r in bbox2result(dets[:0], torch.zeros(0), 2)] == [(0, 5), (0, 5)]

    box = torch.tensor([[10.0, 20, 30, 60]])
    assert bbox_flip(box, (100, 200), "horizontal").tolist() == [[170.0, 20, 190, 60]]
    assert bbox_flip(box, (100, 200), "vertical").tolist() == [[10.0, 40, 30, 80]]
    assert bbox_flip(box, (100, 200), "diagonal").tolist() == [[170.0, 40, 190, 80]]
    scale = np.array([2.0, 1.5, 2.0, 1.5], np.float32)
    mapped = bbox_mapping(box, (150, 400), scale, True)
    assert mapped.tolist() == [[340.0, 30, 380, 90]]
    torch.testing.assert_close(bbox_mapping_back(mapped, (150, 400), scale, True), box)
