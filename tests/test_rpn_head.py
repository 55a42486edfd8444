"""RPNHead / AnchorHead: key names, proposal post-processing, training targets and losses, golden parity.

The golden tests rebuild ResNet-50 + FPN + RPNHead from ``mask_rcnn_r50_fpn_config.json``, load the q4
weights, rebuild the input bit-exactly from ``img_resized_uint8_bgr`` and compare the RPN proposals (infer
case) and RPN losses (train case) with mmdetection 2.28 at the README tolerances.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import box_iou

import mmdet.models  # noqa: F401  (registration)
import mmdet.models.dense_heads.rpn_head as rpn_head_module
from mmdet.core.anchor import AnchorGenerator
from mmdet.models.builder import build_backbone, build_head, build_neck

from golden_detector import GOLDEN, input_from_resized, q4_state_dict
STRIDES = [4, 8, 16, 32, 64]
ANCHORS = dict(type="AnchorGenerator", scales=[8], ratios=[0.5, 1.0, 2.0], strides=STRIDES)
TEST_CFG = dict(nms_pre=1000, max_per_img=1000, nms=dict(type="nms", iou_threshold=0.7), min_bbox_size=0)


def rpn_train_cfg(num=256):
    return dict(assigner=dict(type="MaxIoUAssigner", pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3,
                              match_low_quality=True, ignore_iof_thr=-1),
                sampler=dict(type="RandomSampler", num=num, pos_fraction=0.5, neg_pos_ub=-1,
                             add_gt_as_proposals=False),
                allowed_border=-1, pos_weight=-1, debug=False)


def make_head(channels=8, **kwargs):
    cfg = dict(type="RPNHead", in_channels=channels, feat_channels=channels, anchor_generator=ANCHORS,
               bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0] * 4, target_stds=[1.0] * 4),
               loss_cls=dict(type="CrossEntropyLoss", use_sigmoid=True, loss_weight=1.0),
               loss_bbox=dict(type="L1Loss", loss_weight=1.0), test_cfg=TEST_CFG)
    cfg.update(kwargs)
    head = build_head(cfg)
    head.init_weights()
    return head


def features(batch, channels, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(batch, channels, size // s, size // s, generator=g) for s in (1, 2, 4, 8, 16))


# ----------------------------------------------------------------------------------- structure
def test_stock_key_names_shapes_and_init():
    head = make_head(channels=256)
    shapes = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    assert shapes == {"rpn_conv.weight": (256, 256, 3, 3), "rpn_conv.bias": (256,), "rpn_cls.weight": (3, 256, 1, 1),
                      "rpn_cls.bias": (3,), "rpn_reg.weight": (12, 256, 1, 1), "rpn_reg.bias": (12,)}
    assert sum(v.numel() for v in head.state_dict().values()) == 593_935
    assert abs(head.rpn_conv.weight.std().item() - 0.01) < 5e-4
    assert head.rpn_cls.bias.abs().max().item() == 0.0


def test_vitdet_fork_two_ln_convs():
    head = make_head(channels=16, num_convs=2, norm_cfg=dict(type="LN", requires_grad=True))
    assert list(head.state_dict()) == ["rpn_conv.0.conv.weight", "rpn_conv.0.ln.weight", "rpn_conv.0.ln.bias",
                                       "rpn_conv.1.conv.weight", "rpn_conv.1.ln.weight", "rpn_conv.1.ln.bias",
                                       "rpn_cls.weight", "rpn_cls.bias", "rpn_reg.weight", "rpn_reg.bias"]
    x = features(1, 16, seed=1)
    cls_scores, bbox_preds = head(x)
    # reference: conv(no bias) -> LayerNorm over channels -> ReLU, twice, then a (no-op) ReLU and the 1x1 convs
    h = x[0]
    for block in head.rpn_conv:
        h = F.conv2d(h, block.conv.weight, None, padding=1)
        h = F.layer_norm(h.permute(0, 2, 3, 1), (16,), block.ln.weight, block.ln.bias, 1e-5).permute(0, 3, 1, 2)
        h = h.relu()
    torch.testing.assert_close(cls_scores[0], head.rpn_cls(h))
    assert bbox_preds[4].shape == (1, 12, 4, 4)


# ----------------------------------------------------------------------------------- proposals
def test_post_process_levels_zero_size_filter_and_max_per_img():
    head = make_head()
    # identical boxes on levels 0 and 1 (NMS is per level: both stay); an overlapping lower-score box on
    # level 0 (suppressed: IoU 0.81 > 0.7); a zero-height box after clipping (removed even with min size 0)
    anchors = torch.tensor([[10.0, 10, 50, 50], [10, 10, 50, 50], [12, 12, 50, 50], [20, 130, 60, 160]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
    ids = torch.tensor([0, 1, 0, 0])
    out = head._bbox_post_process([scores], [torch.zeros(4, 4)], [anchors], [ids], dict(TEST_CFG), (100, 100, 3))
    torch.testing.assert_close(out, torch.tensor([[10.0, 10, 50, 50, 0.9], [10, 10, 50, 50, 0.8]]))
    cfg = dict(TEST_CFG, max_per_img=1)
    out = head._bbox_post_process([scores], [torch.zeros(4, 4)], [anchors], [ids], cfg, (100, 100, 3))
    assert out.shape == (1, 5) and out[0, 4].item() == pytest.approx(0.9)


def test_get_bboxes_topk_per_level_and_clipping(monkeypatch):
    head = make_head()
    seen = {}
    real_nms = rpn_head_module.batched_nms

    def recording_nms(boxes, scores, idxs, nms_cfg, class_agnostic=False):
        seen["counts"] = torch.bincount(idxs, minlength=5).tolist()
        seen["scores"] = scores.clone()
        return real_nms(boxes, scores, idxs, nms_cfg, class_agnostic)

    monkeypatch.setattr(rpn_head_module, "batched_nms", recording_nms)
    g = torch.Generator().manual_seed(3)
    sizes = [(40, 50), (20, 25), (10, 13), (5, 7), (3, 4)]
    cls_scores = [torch.randn(1, 3, h, w, generator=g) for h, w in sizes]
    bbox_preds = [torch.randn(1, 12, h, w, generator=g) * 0.1 for h, w in sizes]
    meta = dict(img_shape=(150, 190, 3), pad_shape=(160, 200, 3), scale_factor=np.ones(4, np.float32))
    cfg = dict(TEST_CFG, nms_pre=500)
    (props,) = head.get_bboxes(cls_scores, bbox_preds, img_metas=[meta], cfg=cfg)
    # levels with more than 500 anchors keep their top 500; no box here is degenerate after clipping
    assert seen["counts"] == [500, 500, 390, 105, 36]
    level0 = cls_scores[0][0].permute(1, 2, 0).reshape(-1).sigmoid()
    torch.testing.assert_close(seen["scores"][:500], level0.topk(500).values)
    assert props.shape[1] == 5 and (props[:, 4].diff() <= 0).all()
    assert props[:, 0].min() >= 0 and props[:, 2].max() <= 190 and props[:, 3].max() <= 150


def test_simple_and_aug_test_rpn():
    head = make_head()
    x = features(2, 8)
    metas = [dict(img_shape=(60, 64, 3), pad_shape=(64, 64, 3), scale_factor=np.full(4, 2.0, np.float32),
                  flip=False, flip_direction=None)] * 2
    single = head.simple_test_rpn(x, metas)
    assert len(single) == 2 and single[0].shape[1] == 5
    # second augmentation: the same features declared as a horizontal flip -> its proposals map back mirrored
    flipped_metas = [dict(m, flip=True, flip_direction="horizontal") for m in metas]
    merged = head.aug_test_rpn([x, x], [metas, flipped_metas])
    assert len(merged) == 2
    for img_id in range(2):
        back = single[img_id].clone()
        back[:, :4] /= 2
        mirrored = back.clone()
        mirrored[:, 0], mirrored[:, 2] = 32 - back[:, 2], 32 - back[:, 0]
        candidates = torch.cat([back, mirrored])
        dist = (merged[img_id][:, None, :] - candidates[None]).abs().amax(-1).min(1).values
        assert dist.max() < 1e-5 and 0 < merged[img_id].shape[0] <= 1000
        assert merged[img_id][0, 4] == single[img_id][0, 4]
        assert (merged[img_id][:, 4].diff() <= 0).all()


def test_missing_test_cfg_key_is_reported():
    head = make_head()
    with pytest.raises(KeyError, match="has no 'min_bbox_size'"):
        head._bbox_post_process([torch.ones(1)], [torch.zeros(1, 4)], [torch.tensor([[0.0, 0, 9, 9]])],
                                [torch.zeros(1, dtype=torch.long)], dict(nms=TEST_CFG["nms"], max_per_img=5),
                                (20, 20))


# ----------------------------------------------------------------------------------- training
def reference_rpn_loss(cls_scores, bbox_preds, gt_boxes, img_shape, pad_shape):
    """Straightforward single-image RPN loss with every sample taken (sampler num huge), allowed_border -1."""
    gen = AnchorGenerator(strides=STRIDES, ratios=[0.5, 1.0, 2.0], scales=[8])
    anchors, valid, scores, deltas, level = [], [], [], [], []
    for lvl, (c, b) in enumerate(zip(cls_scores, bbox_preds)):
        h, w = c.shape[-2:]
        s = STRIDES[lvl]
        for y in range(h):  # explicit loops: (y, x, a) order
            for x in range(w):
                for a in range(3):
                    anchors.append(gen.base_anchors[lvl][a] + torch.tensor([x * s, y * s, x * s, y * s]))
                    valid.append(y < -(-pad_shape[0] // s) and x < -(-pad_shape[1] // s))
                    scores.append(c[0, a, y, x])
                    deltas.append(b[0, 4 * a:4 * a + 4, y, x])
                    level.append(lvl)
    anchors, valid = torch.stack(anchors), torch.tensor(valid)
    scores, deltas, level = torch.stack(scores), torch.stack(deltas), torch.tensor(level)
    iou = box_iou(gt_boxes, anchors)
    iou[:, ~valid] = -2  # invalid anchors never take part
    max_iou, argmax = iou.max(0)
    assigned = torch.full((len(anchors),), -1)
    assigned[(max_iou >= 0) & (max_iou < 0.3)] = 0
    assigned[max_iou >= 0.7] = argmax[max_iou >= 0.7] + 1
    for i in range(len(gt_boxes)):
        best = iou[i].max()
        if best >= 0.3:
            assigned[iou[i] == best] = i + 1
    pos, neg = assigned > 0, assigned == 0
    n = max(int(pos.sum()), 1) + max(int(neg.sum()), 1)
    bce = F.binary_cross_entropy_with_logits(scores, pos.float(), reduction="none")
    gt = gt_boxes[assigned[pos] - 1]
    a = anchors[pos]
    aw, ah = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    target = torch.stack([((gt[:, 0] + gt[:, 2]) - (a[:, 0] + a[:, 2])) / 2 / aw,
                          ((gt[:, 1] + gt[:, 3]) - (a[:, 1] + a[:, 3])) / 2 / ah,
                          torch.log((gt[:, 2] - gt[:, 0]) / aw), torch.log((gt[:, 3] - gt[:, 1]) / ah)], 1)
    l1 = (deltas[pos] - target).abs().sum(1)
    cls = [(bce * (pos | neg).float())[level == lvl].sum() / n for lvl in range(5)]
    reg = [l1[level[pos] == lvl].sum() / n for lvl in range(5)]
    return cls, reg, int(pos.sum()), int(neg.sum())


def test_loss_matches_straightforward_reference():
    head = make_head(train_cfg=rpn_train_cfg(num=10 ** 6))
    x = features(1, 8, size=16, seed=5)  # P2 16x16 ... P6 1x1: a 64 px image
    gt = [torch.tensor([[5.0, 6, 40, 30], [20, 20, 60, 58], [0, 30, 12, 60]])]
    meta = dict(img_shape=(58, 60, 3), pad_shape=(56, 60, 3))  # pad < feature extent: some anchors invalid
    cls_scores, bbox_preds = head(x)
    losses = head.loss(cls_scores, bbox_preds, gt, [meta])
    ref_cls, ref_reg, num_pos, num_neg = reference_rpn_loss([c.detach() for c in cls_scores],
                                                            [b.detach() for b in bbox_preds], gt[0],
                                                            meta["img_shape"], meta["pad_shape"])
    assert num_pos > 3 and num_neg > 300
    for ours, ref in zip(losses["loss_rpn_cls"], ref_cls):
        torch.testing.assert_close(ours.detach(), ref, rtol=1e-5, atol=1e-8)
    for ours, ref in zip(losses["loss_rpn_bbox"], ref_reg):
        torch.testing.assert_close(ours.detach(), ref, rtol=1e-5, atol=1e-8)


def test_forward_train_batch_sampling_and_proposals():
    torch.manual_seed(0)
    head = make_head(train_cfg=rpn_train_cfg(num=64))
    x = features(2, 8, seed=7)
    metas = [dict(img_shape=(64, 60, 3), pad_shape=(64, 64, 3))] * 2
    gts = [torch.tensor([[5.0, 6, 40, 30]]), torch.tensor([[20.0, 20, 60, 58], [0, 30, 12, 60]])]
    losses, proposals = head.forward_train(x, metas, gts, proposal_cfg=dict(TEST_CFG, max_per_img=50))
    assert set(losses) == {"loss_rpn_cls", "loss_rpn_bbox"} and len(losses["loss_rpn_cls"]) == 5
    assert [p.shape for p in proposals] == [(50, 5), (50, 5)]
    total = sum(losses["loss_rpn_cls"]) + sum(losses["loss_rpn_bbox"])
    total.backward()
    assert head.rpn_cls.weight.grad.abs().sum() > 0
    # sampling 64 per image: the labelled anchors of the batch are exactly 128
    cls_scores, bbox_preds = head(x)
    featmap_sizes = [c.shape[-2:] for c in cls_scores]
    anchors, flags = head.get_anchors(featmap_sizes, metas, device="cpu")
    targets = head.get_targets(anchors, flags, gts, metas)
    assert targets[4] + targets[5] == 128
    assert sum(float(w.sum()) for w in targets[1]) == 128.0


def test_loss_decreases_with_sgd():
    torch.manual_seed(0)
    head = make_head(train_cfg=rpn_train_cfg(num=10 ** 6))
    x = features(1, 8, size=16, seed=9)
    gt = [torch.tensor([[5.0, 6, 40, 30], [20, 20, 60, 58]])]
    meta = [dict(img_shape=(64, 64, 3), pad_shape=(64, 64, 3))]
    opt = torch.optim.SGD(head.parameters(), lr=0.5)
    values = []
    for _ in range(8):
        losses = head.loss(*head(x), gt, meta)
        loss = sum(losses["loss_rpn_cls"]) + sum(losses["loss_rpn_bbox"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        values.append(loss.item())
    assert all(b < a for a, b in zip(values, values[1:])) and values[-1] < 0.75 * values[0]


# ----------------------------------------------------------------------------------- golden parity


@pytest.fixture(scope="module")
def golden_model():
    cfg = json.load(open(GOLDEN / "mask_rcnn_r50_fpn_config.json"))["model"]
    sd = q4_state_dict(GOLDEN / "mask_rcnn_r50_fpn_weights_q4.pt")
    parts = {}
    for name, builder in (("backbone", build_backbone), ("neck", build_neck), ("rpn_head", build_head)):
        part_cfg = dict(cfg[name])
        if name == "rpn_head":
            part_cfg.update(train_cfg=cfg["train_cfg"]["rpn"], test_cfg=cfg["test_cfg"]["rpn"])
        module = builder(part_cfg)
        prefix = name + "."
        module.load_state_dict({k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}, strict=True)
        parts[name] = module.eval()
    return parts, cfg


@pytest.fixture(scope="module")
def golden_infer():
    return torch.load(GOLDEN / "mask_rcnn_r50_fpn_infer.pt", weights_only=True)


_FEATURE_CACHE: dict = {}


def fpn_features(parts, img):
    """P2..P6 of the golden model (cached per input: the train case reuses infer image 0)."""
    key = (tuple(img.shape), img.double().sum().item())
    if key not in _FEATURE_CACHE:
        with torch.no_grad():
            _FEATURE_CACHE[key] = parts["neck"](parts["backbone"](img))
    return _FEATURE_CACHE[key]


def match_proposals(ours: torch.Tensor, ref: torch.Tensor):
    """For every reference proposal the nearest of ours by max coordinate difference."""
    diff = (ref[:, None, :4] - ours[None, :, :4]).abs().amax(-1)
    dist, idx = diff.min(1)
    return dist, idx


@pytest.mark.parametrize("image_index", [0, 1])
def test_golden_rpn_proposals(golden_model, golden_infer, image_index, monkeypatch):
    parts, _ = golden_model
    im = golden_infer["images"][image_index]
    meta = dict(im["img_metas"])
    img = input_from_resized(im["img_resized_uint8_bgr"], meta["pad_shape"])
    assert tuple(img.shape) == tuple(im["input_tensor_shape"])
    assert img.double().sum().item() == im["input_tensor_stats"]["sum"]
    feats = fpn_features(parts, img)

    counts = {}
    real_nms = rpn_head_module.batched_nms

    def recording_nms(boxes, scores, idxs, nms_cfg, class_agnostic=False):
        counts["per_level"] = torch.bincount(idxs, minlength=5).tolist()
        dets, keep = real_nms(boxes, scores, idxs, nms_cfg, class_agnostic)
        counts["levels"] = idxs[keep]  # FPN level of every output proposal, in output order
        return dets, keep

    monkeypatch.setattr(rpn_head_module, "batched_nms", recording_nms)
    with torch.no_grad():
        (proposals,) = parts["rpn_head"].simple_test_rpn(feats, [meta])

    ref = im["proposals"]
    assert proposals.shape == ref.shape
    assert counts["per_level"] == list(im["rpn_nms_input_count_per_level"])
    dist, idx = match_proposals(proposals, ref)
    matched = dist <= 0.05
    assert matched.float().mean().item() >= 0.99, f"only {matched.float().mean().item():.4f} matched"
    torch.testing.assert_close(proposals[idx[matched], 4], ref[matched, 4], atol=1e-4, rtol=0)
    # proposal-level histogram within ±5
    ours_levels = torch.bincount(counts["levels"][:proposals.shape[0]], minlength=5)
    ref_levels = torch.bincount(im["proposal_levels"], minlength=5)
    assert (ours_levels - ref_levels).abs().max().item() <= 5


def test_golden_rpn_training_losses(golden_model, golden_infer):
    parts, _ = golden_model
    case = torch.load(GOLDEN / "mask_rcnn_r50_fpn_train.pt", weights_only=True)
    im = golden_infer["images"][case["same_input_as_infer_image_index"]]
    meta = dict(case["img_metas"], batch_input_shape=tuple(case["input_tensor_shape"][-2:]))
    img = input_from_resized(im["img_resized_uint8_bgr"], meta["pad_shape"])
    feats = fpn_features(parts, img)
    head = build_head(dict(json.load(open(GOLDEN / "mask_rcnn_r50_fpn_config.json"))["model"]["rpn_head"],
                           train_cfg=case["train_cfg"]["rpn"]))
    head.load_state_dict(parts["rpn_head"].state_dict())
    cls_scores, bbox_preds = head(feats)
    anchors, flags = head.get_anchors([c.shape[-2:] for c in cls_scores], [meta], device="cpu")
    targets = head.get_targets(anchors, flags, [case["gt_bboxes"]], [meta])
    rpn_sampling = next(s for s in case["sampling"] if s["where"] == "rpn")
    assert (targets[4], targets[5]) == (rpn_sampling["num_pos"], rpn_sampling["num_neg"])
    losses = head.loss(cls_scores, bbox_preds, [case["gt_bboxes"]], [meta])
    for key in ("loss_rpn_cls", "loss_rpn_bbox"):
        ours = torch.stack([v.detach() for v in losses[key]]).double()
        ref = torch.tensor(case["raw_losses"][key], dtype=torch.float64)
        torch.testing.assert_close(ours, ref, rtol=1e-4, atol=0)
        assert ours.sum().item() == pytest.approx(case["log_vars"][key], rel=1e-4)
