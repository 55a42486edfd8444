"""RPN training targets (assign + sample + encode) and RPN proposal post-processing: ours vs straightforward.

Ours: ``RPNHead.get_targets`` (vectorised ``MaxIoUAssigner`` incl. the low-quality pass, ``RandomSampler``,
``DeltaXYWHBBoxCoder``) and ``RPNHead.get_bboxes`` (per-level top-k, one offset NMS over all levels).
Reference: the same semantics written plainly: IoU through ``(G, N, 2)`` corner tensors, a Python loop over gts
for the low-quality matches, a full sort per level and one NMS call per level. Both run on the anchors of a
Mask R-CNN input (800x1088, P2-P6, 3 anchors: 217,413 per image) with 25 gts per image; outputs are checked
equal (deterministic sampling) before timing.

    python benchmarks/nms_assign.py [--quick] [--device cpu|cuda]
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from torchvision.ops import nms as tv_nms

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import base_parser, machine_line, print_result, setup, time_interleaved  # noqa: E402

import mmdet.models  # noqa: E402,F401  (registration)
from mmdet.models.builder import build_head  # noqa: E402

STRIDES = [4, 8, 16, 32, 64]


def make_head(num_samples: int):
    return build_head(dict(
        type="RPNHead", in_channels=8, feat_channels=8,
        anchor_generator=dict(type="AnchorGenerator", scales=[8], ratios=[0.5, 1.0, 2.0], strides=STRIDES),
        bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0] * 4, target_stds=[1.0] * 4),
        loss_bbox=dict(type="L1Loss"),
        train_cfg=dict(assigner=dict(type="MaxIoUAssigner", pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3,
                                     match_low_quality=True, ignore_iof_thr=-1),
                       sampler=dict(type="RandomSampler", num=num_samples, pos_fraction=0.5, neg_pos_ub=-1,
                                    add_gt_as_proposals=False), allowed_border=-1, pos_weight=-1),
        test_cfg=dict(nms_pre=1000, max_per_img=1000, nms=dict(type="nms", iou_threshold=0.7), min_bbox_size=0)))


def random_gts(n: int, h: int, w: int, seed: int, device) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * torch.tensor([w * 0.8, h * 0.8])
    wh = torch.rand(n, 2, generator=g) * 300 + 8
    return torch.cat([xy, torch.min(xy + wh, torch.tensor([w, h]).float())], 1).to(device)


# ------------------------------------------------------------------ straightforward reference
def reference_targets(anchors: torch.Tensor, gts: torch.Tensor, num: int, pos_fraction: float = 0.5):
    """One image: labels (N,), label_weights (N,), bbox_targets (N, 4), bbox_weights (N, 4); every anchor valid."""
    lt = torch.max(gts[:, None, :2], anchors[None, :, :2])
    rb = torch.min(gts[:, None, 2:], anchors[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    area_g = (gts[:, 2] - gts[:, 0]) * (gts[:, 3] - gts[:, 1])
    area_a = (anchors[:, 2] - anchors[:, 0]) * (anchors[:, 3] - anchors[:, 1])
    iou = inter / torch.max(area_g[:, None] + area_a[None, :] - inter, inter.new_tensor([1e-6]))
    max_iou, argmax = iou.max(0)
    gt_max = iou.max(1).values
    assigned = torch.full_like(argmax, -1)
    assigned[(max_iou >= 0) & (max_iou < 0.3)] = 0
    pos = max_iou >= 0.7
    assigned[pos] = argmax[pos] + 1
    for i in range(gts.shape[0]):
        if gt_max[i] >= 0.3:
            assigned[iou[i] == gt_max[i]] = i + 1
    pos_inds = torch.nonzero(assigned > 0).squeeze(1)
    if pos_inds.numel() > int(num * pos_fraction):
        pos_inds = pos_inds[torch.randperm(pos_inds.numel())[:int(num * pos_fraction)].to(pos_inds.device)]
    pos_inds = pos_inds.unique()
    neg_inds = torch.nonzero(assigned == 0).squeeze(1)
    if neg_inds.numel() > num - pos_inds.numel():
        neg_inds = neg_inds[torch.randperm(neg_inds.numel())[:num - pos_inds.numel()].to(neg_inds.device)]
    neg_inds = neg_inds.unique()
    labels = torch.ones(anchors.shape[0], dtype=torch.long, device=anchors.device)
    label_weights = torch.zeros(anchors.shape[0], device=anchors.device)
    targets = torch.zeros_like(anchors)
    weights = torch.zeros_like(anchors)
    a, g = anchors[pos_inds], gts[assigned[pos_inds] - 1]
    pw, ph = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    targets[pos_inds] = torch.stack([((g[:, 0] + g[:, 2]) * 0.5 - (a[:, 0] + a[:, 2]) * 0.5) / pw,
                                     ((g[:, 1] + g[:, 3]) * 0.5 - (a[:, 1] + a[:, 3]) * 0.5) / ph,
                                     torch.log((g[:, 2] - g[:, 0]) / pw), torch.log((g[:, 3] - g[:, 1]) / ph)], 1)
    weights[pos_inds] = 1.0
    labels[pos_inds] = 0
    label_weights[pos_inds] = 1.0
    label_weights[neg_inds] = 1.0
    return labels, label_weights, targets, weights


def reference_proposals(cls_scores, bbox_preds, anchors, coder, img_shape, nms_pre=1000, max_per_img=1000):
    """One image: sort each level fully, decode, zero-size filter, NMS each level separately, merge, top-k."""
    boxes_all, scores_all = [], []
    for cls, reg, anc in zip(cls_scores, bbox_preds, anchors):
        scores = cls.permute(1, 2, 0).reshape(-1).sigmoid()
        deltas = reg.permute(1, 2, 0).reshape(-1, 4)
        scores, order = scores.sort(descending=True)
        scores, order = scores[:nms_pre], order[:nms_pre]
        boxes = coder.decode(anc[order], deltas[order], max_shape=img_shape)
        keep = ((boxes[:, 2] - boxes[:, 0]) > 0) & ((boxes[:, 3] - boxes[:, 1]) > 0)
        boxes, scores = boxes[keep], scores[keep]
        kept = tv_nms(boxes, scores, 0.7)
        boxes_all.append(boxes[kept])
        scores_all.append(scores[kept])
    boxes, scores = torch.cat(boxes_all), torch.cat(scores_all)
    scores, order = scores.sort(descending=True)
    return torch.cat([boxes[order], scores[:, None]], 1)[:max_per_img]


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    args = parser.parse_args()
    setup(args)
    device = torch.device(args.device)
    reps = args.reps or (3 if args.quick else 7)
    num_imgs = 1 if args.quick else 2
    pad_h, pad_w = (800, 1088)
    featmap_sizes = [(-(-pad_h // s), -(-pad_w // s)) for s in STRIDES]
    metas = [dict(img_shape=(800, 1067, 3), pad_shape=(pad_h, pad_w, 3))] * num_imgs
    gts = [random_gts(25, 800, 1067, seed=i, device=device) for i in range(num_imgs)]

    head = make_head(num_samples=256).to(device)
    exact_head = make_head(num_samples=10 ** 7).to(device)
    anchor_list, flag_list = head.get_anchors(featmap_sizes, metas, device=device)
    flat_anchors = torch.cat(anchor_list[0])
    print(machine_line())
    print(f"anchors per image {flat_anchors.shape[0]}, gts per image 25, images {num_imgs}, device {device}")

    # correctness: deterministic sampling -> identical targets
    ours = exact_head.get_targets(anchor_list, flag_list, gts, metas)
    for img_id in range(num_imgs):
        ref = reference_targets(flat_anchors, gts[img_id], num=10 ** 7)
        for level_targets, ref_t in zip(ours[:4], ref):
            ours_img = torch.cat([t[img_id] for t in level_targets])
            torch.testing.assert_close(ours_img, ref_t, rtol=0, atol=1e-6)
    print("targets: identical to the reference (deterministic sampling)")

    # proposals
    g = torch.Generator().manual_seed(1)
    cls_scores = [torch.randn(num_imgs, 3, h, w, generator=g).to(device) for h, w in featmap_sizes]
    bbox_preds = [(torch.randn(num_imgs, 12, h, w, generator=g) * 0.2).to(device) for h, w in featmap_sizes]
    mlvl_anchors = anchor_list[0]
    ours_p = head.get_bboxes(cls_scores, bbox_preds, img_metas=metas)
    for img_id in range(num_imgs):
        ref_p = reference_proposals([c[img_id] for c in cls_scores], [b[img_id] for b in bbox_preds], mlvl_anchors,
                                    head.bbox_coder, metas[img_id]["img_shape"])
        dist = (ref_p[:, None, :4] - ours_p[img_id][None, :, :4]).abs().amax(-1).min(1).values
        assert ours_p[img_id].shape == ref_p.shape and (dist < 1e-3).float().mean() > 0.99
    print("proposals: same set as the reference")

    def run_ours_targets():
        head.get_targets(anchor_list, flag_list, gts, metas)

    def run_ref_targets():
        for img_id in range(num_imgs):
            reference_targets(flat_anchors, gts[img_id], num=256)

    def run_ours_props():
        head.get_bboxes(cls_scores, bbox_preds, img_metas=metas)

    def run_ref_props():
        for img_id in range(num_imgs):
            reference_proposals([c[img_id] for c in cls_scores], [b[img_id] for b in bbox_preds], mlvl_anchors,
                                head.bbox_coder, metas[img_id]["img_shape"])

    with torch.no_grad():
        t_targets = time_interleaved({"ours": run_ours_targets, "ref": run_ref_targets}, reps, device=device)
        t_props = time_interleaved({"ours": run_ours_props, "ref": run_ref_props}, reps, device=device)
    for name, t in (("targets", t_targets), ("proposals", t_props)):
        print(f"{name}: ours {t['ours'] * 1e3:.1f} ms, reference {t['ref'] * 1e3:.1f} ms "
              f"(median of {reps}, {num_imgs} image(s))")
    print_result(targets_ours_ms=t_targets["ours"] * 1e3, targets_ref_ms=t_targets["ref"] * 1e3,
                 targets_speedup=t_targets["ref"] / t_targets["ours"], proposals_ours_ms=t_props["ours"] * 1e3,
                 proposals_ref_ms=t_props["ref"] * 1e3, proposals_speedup=t_props["ref"] / t_props["ours"])


if __name__ == "__main__":
    main()
