"""batched_nms / multiclass_nms (mmdetection 2.x + mmcv semantics) and test-time-augmentation merging."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.ops import nms as tv_nms

from mmdet.core.post_processing import (batched_nms, merge_aug_bboxes, merge_aug_masks, merge_aug_proposals,
                                        merge_aug_scores, multiclass_nms)

NMS_05 = dict(type="nms", iou_threshold=0.5)


def random_boxes(n, seed):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 50
    return torch.cat([xy, xy + torch.rand(n, 2, generator=g) * 30 + 1], 1)


def test_batched_nms_per_group_strict_threshold_and_split_path():
    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 16], [0, 0, 10, 10]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    ids = torch.tensor([0, 0, 0, 1])
    # box 1 duplicates box 0 (IoU 1) -> suppressed; box 2 has IoU exactly 0.625 (exact in binary) -> kept, the
    # rule is strict '>'; box 3 is another group
    dets, keep = batched_nms(boxes, scores, ids, dict(type="nms", iou_threshold=0.625))
    assert keep.tolist() == [0, 2, 3]
    torch.testing.assert_close(dets, torch.cat([boxes[[0, 2, 3]], scores[[0, 2, 3], None]], 1))
    dets_a, keep_a = batched_nms(boxes, scores, ids, dict(NMS_05, class_agnostic=True))
    assert keep_a.tolist() == [0]
    # the per-id loop above split_thr gives the same result as the offset trick
    b, s = random_boxes(300, 1), torch.rand(300, generator=torch.Generator().manual_seed(2))
    i = torch.randint(0, 4, (300,), generator=torch.Generator().manual_seed(3))
    d1, k1 = batched_nms(b, s, i, NMS_05)
    d2, k2 = batched_nms(b, s, i, dict(NMS_05, split_thr=10))
    assert torch.equal(k1, k2) and torch.equal(d1, d2)
    expected = torch.cat([torch.where(i == c)[0][tv_nms(b[i == c], s[i == c], 0.5)] for c in range(4)])
    assert sorted(k1.tolist()) == sorted(expected.tolist())
    assert (d1[:, 4].diff() <= 0).all()
    with pytest.raises(KeyError, match="needs 'iou_threshold'"):
        batched_nms(b, s, i, dict(type="nms"))
    with pytest.raises(ValueError, match="soft_nms"):
        batched_nms(b, s, i, dict(type="soft_nms", iou_threshold=0.5))


def test_multiclass_nms_threshold_background_and_max_num():
    # 3 rois, 2 classes + background; class-specific boxes
    boxes = torch.tensor([[0.0, 0, 10, 10, 100, 100, 110, 110],
                          [0, 0, 10, 11, 100, 100, 110, 110],
                          [50, 50, 60, 60, 0, 0, 1, 1]])
    scores = torch.tensor([[0.9, 0.05, 0.05],     # class 1 at exactly 0.05 -> dropped (strict >)
                           [0.8, 0.3, 0.9],      # background 0.9 is never a detection
                           [0.06, 0.02, 0.92]])
    dets, labels, inds = multiclass_nms(boxes, scores, 0.05, NMS_05, max_num=-1, return_inds=True)
    # candidates (roi, class): (0,0) .9, (1,0) .8 [IoU .91 with (0,0) -> suppressed], (1,1) .3, (2,0) .06
    assert labels.tolist() == [0, 1, 0] and inds.tolist() == [0, 3, 4]
    torch.testing.assert_close(dets[:, 4], torch.tensor([0.9, 0.3, 0.06]))
    torch.testing.assert_close(dets[1, :4], torch.tensor([100.0, 100, 110, 110]))
    dets, labels = multiclass_nms(boxes, scores, 0.05, NMS_05, max_num=2)
    assert dets.shape == (2, 5) and labels.tolist() == [0, 1]
    # class-agnostic boxes are shared by every class; score factors scale after thresholding
    dets, labels = multiclass_nms(boxes[:, :4], scores, 0.05, NMS_05, score_factors=torch.tensor([1.0, 0.5, 1.0]))
    torch.testing.assert_close(dets[:, 4], torch.tensor([0.9, 0.15, 0.06]))
    empty, empty_labels = multiclass_nms(boxes, scores, 0.95, NMS_05)
    assert empty.shape == (0, 5) and empty_labels.shape == (0,)


def test_merge_aug_proposals_maps_back_and_nms():
    cfg = dict(nms_pre=1000, max_per_img=2, nms=dict(type="nms", iou_threshold=0.7), min_bbox_size=0)
    p_plain = torch.tensor([[10.0, 10, 30, 30, 0.9], [60, 60, 80, 80, 0.5]])
    p_flip = torch.tensor([[170.0 - 60, 20, 170 - 20, 60, 0.8]])  # flipped in a 170-wide image at scale 2
    metas = [dict(img_shape=(100, 100, 3), scale_factor=np.ones(4, np.float32), flip=False, flip_direction=None),
             dict(img_shape=(200, 170, 3), scale_factor=np.full(4, 2.0, np.float32), flip=True,
                  flip_direction="horizontal")]
    merged = merge_aug_proposals([p_plain, p_flip], metas, cfg)
    # the flipped one maps back to (10, 10, 30, 30) and is suppressed by the 0.9 box; top 2 kept
    torch.testing.assert_close(merged, p_plain)
    with pytest.warns(UserWarning, match="nms_thr"):
        legacy = merge_aug_proposals([p_plain], metas[:1], dict(nms_thr=0.7, max_num=1))
    assert legacy.shape == (1, 5)


def test_merge_aug_bboxes_scores_masks():
    boxes = torch.tensor([[10.0, 20, 30, 40]])
    metas = [[dict(img_shape=(100, 100, 3), scale_factor=np.ones(4, np.float32), flip=False)],
             [dict(img_shape=(100, 100, 3), scale_factor=np.ones(4, np.float32), flip=True,
                   flip_direction="horizontal")]]
    flipped = torch.tensor([[70.0, 20, 90, 40]])
    merged, scores = merge_aug_bboxes([boxes, flipped], [torch.tensor([[0.2, 0.8]]), torch.tensor([[0.4, 0.6]])],
                                      metas)
    torch.testing.assert_close(merged, boxes)
    torch.testing.assert_close(scores, torch.tensor([[0.3, 0.7]]))
    assert np.allclose(merge_aug_scores([np.ones(2), np.zeros(2)]), 0.5)
    mask = np.arange(8, dtype=np.float32).reshape(1, 1, 2, 4)
    out = merge_aug_masks([mask, mask[..., ::-1]], metas, None)
    assert np.array_equal(out, mask)
    tmask = torch.from_numpy(mask.copy())
    out_t = merge_aug_masks([tmask, tmask.flip(-1), tmask], [metas[0], metas[1], metas[0]], None, weights=[1, 1, 2])
    torch.testing.assert_close(out_t, tmask)
