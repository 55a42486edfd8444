"""Mask R-CNN R50-FPN: ours (configs/mask_rcnn/mask_rcnn_r50_fpn_1x_coco.py) vs torchvision's
``maskrcnn_resnet50_fpn`` architecture, both with random weights, in the same run.

Measured, repetitions interleaved, medians:
- inference of one image (``rescale=True``: boxes and full-size masks of 100 detections),
- one training step on one image (forward, losses, backward, SGD step) with 5 ground-truth instances,
- our training data pipeline on data/coco_tiny (images / s, single process; no reference).

Equal work: same input size (torchvision's transform gets ``min_size``/``max_size`` equal to the image's sides, so
it does not resize, and identity mean/std since our input is already normalised), frozen BN (statistics and affine:
our ``norm_cfg.requires_grad`` is set to False, like torchvision's ``FrozenBatchNorm2d``) and frozen stem+layer1 in
both, 81 torchvision classes (background + our 80), RPN nms_pre 1000/2000 per level and 1000 proposals after NMS
(test/train), 100 detections per image, RoIAlign with adaptive sampling (``sampling_ratio=0``) as ours, RoI
sampler 512 boxes (25 % positive) and RPN sampler 256 anchors (50 %), score threshold 0.05. Random weights
would give near-uniform class scores (all below 0.05: no detections, no mask head), so both classifiers get zero
weights and a bias giving ``ACTIVE_CLASSES`` classes probability 1/10 each: in both models every proposal then
passes the threshold for the same 10 classes, per-class NMS runs on the same number of boxes, 100 detections
are kept and the mask head runs on them, as for a trained model. torchvision's model then gets OUR weights
(``copy_weights_to_torchvision``: same ResNet/FPN/RPN/heads, classes re-ordered to its background-first
layout), so both produce nearly the same proposals: RoIAlign's cost depends on the RoI sizes (adaptive
sampling), and two independently initialised models would pool differently sized proposals.

    python benchmarks/maskrcnn_cpu.py --quick        # 512x768, 2 reps (< 2 min on 2 CPU cores)
    python benchmarks/maskrcnn_cpu.py                # 800x1333, 5 reps
    python benchmarks/maskrcnn_cpu.py --profile      # also the top self-time ops of ours (torch.profiler)

Ours is timed twice: with the config's defaults and with ``model.channels_last=True`` (same weights).

Last line: ``RESULT infer_ratio=X train_ratio=Y infer_ratio_channels_last=.. train_ratio_channels_last=..
pipeline_img_per_s=Z ...`` (ratios: torchvision time / our time).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import base_parser, machine_line, print_result, setup, time_interleaved

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "mask_rcnn" / "mask_rcnn_r50_fpn_1x_coco.py"
COCO_TINY = ROOT / "data" / "coco_tiny"
NUM_GT = 5
#: classes (of 80, in our label order) that get probability 1/len each from the fixed classifier bias
ACTIVE_CLASSES = (0, 2, 7, 15, 23, 39, 41, 56, 62, 79)


def fix_class_scores(linear: torch.nn.Linear, background_index: int, foreground_offset: int) -> None:
    """Zero weights; bias 0 for the active classes, -20 elsewhere (background included)."""
    with torch.no_grad():
        linear.weight.zero_()
        linear.bias.fill_(-20.0)
        linear.bias[[c + foreground_offset for c in ACTIVE_CLASSES]] = 0.0
        assert linear.bias[background_index] == -20.0


def build_ours(device, channels_last: bool = False):
    from mmdet.engine import Config
    from mmdet.models import build_detector
    cfg = Config.fromfile(str(CONFIG))
    cfg.model.channels_last = channels_last
    cfg.model.backbone.init_cfg = None
    # torchvision's FrozenBatchNorm2d has no trainable affine: freeze ours too (mmdetection trains it by default)
    cfg.model.backbone.norm_cfg.requires_grad = False
    model = build_detector(cfg.model)
    model.init_weights()
    fix_class_scores(model.roi_head.bbox_head.fc_cls, background_index=80, foreground_offset=0)
    return model.to(device), cfg


def build_torchvision(height: int, width: int, device):
    """torchvision's Mask R-CNN R50-FPN with the settings of our config (see the module docstring)."""
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
    from torchvision.ops import FrozenBatchNorm2d, MultiScaleRoIAlign
    backbone = resnet_fpn_backbone(backbone_name="resnet50", weights=None, norm_layer=FrozenBatchNorm2d,
                                   trainable_layers=3)
    levels = ["0", "1", "2", "3"]
    model = MaskRCNN(backbone, num_classes=81, min_size=min(height, width), max_size=max(height, width),
                     image_mean=[0.0, 0.0, 0.0], image_std=[1.0, 1.0, 1.0],
                     rpn_pre_nms_top_n_train=2000, rpn_post_nms_top_n_train=1000,
                     rpn_pre_nms_top_n_test=1000, rpn_post_nms_top_n_test=1000,
                     box_roi_pool=MultiScaleRoIAlign(levels, 7, sampling_ratio=0),
                     mask_roi_pool=MultiScaleRoIAlign(levels, 14, sampling_ratio=0),
                     box_score_thresh=0.05, box_detections_per_img=100)
    fix_class_scores(model.roi_heads.box_predictor.cls_score, background_index=0, foreground_offset=1)
    return model.to(device)


def _torchvision_key(key: str) -> str | None:
    """Our state-dict key -> torchvision MaskRCNN key (None: no counterpart, e.g. ``num_batches_tracked``)."""
    if key.endswith("num_batches_tracked"):
        return None
    renames = (("backbone.", "backbone.body."),
               ("neck.lateral_convs.", "backbone.fpn.inner_blocks."), ("neck.fpn_convs.", "backbone.fpn.layer_blocks."),
               ("rpn_head.rpn_conv.", "rpn.head.conv.0.0."), ("rpn_head.rpn_cls.", "rpn.head.cls_logits."),
               ("rpn_head.rpn_reg.", "rpn.head.bbox_pred."),
               ("roi_head.bbox_head.shared_fcs.0.", "roi_heads.box_head.fc6."),
               ("roi_head.bbox_head.shared_fcs.1.", "roi_heads.box_head.fc7."),
               ("roi_head.bbox_head.fc_cls.", "roi_heads.box_predictor.cls_score."),
               ("roi_head.bbox_head.fc_reg.", "roi_heads.box_predictor.bbox_pred."),
               ("roi_head.mask_head.convs.", "roi_heads.mask_head."),
               ("roi_head.mask_head.upsample.", "roi_heads.mask_predictor.conv5_mask."),
               ("roi_head.mask_head.conv_logits.", "roi_heads.mask_predictor.mask_fcn_logits."))
    for ours, theirs in renames:
        if key.startswith(ours):
            key = theirs + key[len(ours):]
            return key.replace(".conv.", ".0.") if ".fpn." in key or "mask_head." in key else key
    raise KeyError(f"no torchvision counterpart for {key}")


def copy_weights_to_torchvision(ours: torch.nn.Module, tv: torch.nn.Module) -> None:
    """Load our weights into torchvision's model. Class outputs: torchvision puts background first (ours: last
    for the classifier, absent for box regression and masks), so rows are shifted and the background rows of the
    regression / mask layers are zero."""
    target = tv.state_dict()
    for key, value in ours.state_dict().items():
        tv_key = _torchvision_key(key)
        if tv_key is None:
            continue
        dst = target[tv_key]
        if "cls_score" in tv_key:
            value = torch.cat([value[-1:], value[:-1]])
        elif tv_key.startswith("roi_heads.box_predictor.bbox_pred.") or "mask_fcn_logits" in tv_key:
            value = torch.cat([torch.zeros_like(dst[:dst.shape[0] - value.shape[0]]), value])
        if dst.shape != value.shape:
            raise ValueError(f"{key} {tuple(value.shape)} does not fit {tv_key} {tuple(dst.shape)}")
        dst.copy_(value)
    tv.load_state_dict(target)


def synthetic_detection_batch(batch: int, height: int, width: int, num_gt: int, device, seed: int = 0) -> dict:
    """Our detector's training kwargs for ``batch`` random normalised images of ``height x width`` (padded to a
    multiple of 32) with ``num_gt`` random boxes each (labels in 0..79, masks filling the boxes)."""
    from mmdet.core.mask.structures import BitmapMasks
    pad_h, pad_w = -(-height // 32) * 32, -(-width // 32) * 32
    gen = torch.Generator().manual_seed(seed)
    img = torch.zeros(batch, 3, pad_h, pad_w)
    img[..., :height, :width] = torch.randn(batch, 3, height, width, generator=gen)
    metas, boxes, labels, masks = [], [], [], []
    for _ in range(batch):
        metas.append(dict(filename="random.jpg", ori_filename="random.jpg", ori_shape=(height, width, 3),
                          img_shape=(height, width, 3), pad_shape=(pad_h, pad_w, 3),
                          scale_factor=np.ones(4, dtype=np.float32), flip=False, flip_direction=None,
                          img_norm_cfg=dict(mean=np.zeros(3), std=np.ones(3), to_rgb=False)))
        xy = torch.rand(num_gt, 2, generator=gen) * torch.tensor([width * 0.6, height * 0.6])
        wh = (0.1 + 0.3 * torch.rand(num_gt, 2, generator=gen)) * torch.tensor([width, height])
        box = torch.cat([xy, xy + wh], dim=1).round()
        mask = np.zeros((num_gt, height, width), dtype=np.uint8)
        for i, (x1, y1, x2, y2) in enumerate(box.int().tolist()):
            mask[i, y1:y2, x1:x2] = 1
        boxes.append(box.to(device))
        labels.append(torch.randint(0, 80, (num_gt,), generator=gen).to(device))
        masks.append(BitmapMasks(mask, height, width))
    return dict(img=img.to(device), img_metas=metas, gt_bboxes=boxes, gt_labels=labels, gt_masks=masks)


def make_inputs(height: int, width: int, device):
    """One image: our training kwargs, and the same image (unpadded) and target in torchvision's format."""
    ours = synthetic_detection_batch(1, height, width, NUM_GT, device)
    target = dict(boxes=ours["gt_bboxes"][0], labels=ours["gt_labels"][0] + 1,
                  masks=torch.from_numpy(ours["gt_masks"][0].masks).to(device))
    return ours, ours["img"][0, :, :height, :width], target


def step_fns(ours, tv, ours_inputs, tv_image, tv_target):
    """Zero-argument callables: inference and one SGD training step of each model."""
    meta = ours_inputs["img_metas"][0]
    opt_ours = torch.optim.SGD([p for p in ours.parameters() if p.requires_grad], lr=1e-5, momentum=0.9)
    opt_tv = torch.optim.SGD([p for p in tv.parameters() if p.requires_grad], lr=1e-5, momentum=0.9)

    def infer_ours():
        ours.eval()
        with torch.no_grad():
            return ours(img=[ours_inputs["img"]], img_metas=[[dict(meta)]], return_loss=False, rescale=True)

    def infer_tv():
        tv.eval()
        with torch.no_grad():
            return tv([tv_image])

    def train_ours():
        ours.train()
        losses = ours(img=ours_inputs["img"], img_metas=[dict(meta)], gt_bboxes=ours_inputs["gt_bboxes"],
                      gt_labels=ours_inputs["gt_labels"], gt_masks=ours_inputs["gt_masks"])
        loss, _ = ours._parse_losses(losses)
        opt_ours.zero_grad(set_to_none=True)
        loss.backward()
        opt_ours.step()

    def train_tv():
        tv.train()
        loss = sum(tv([tv_image], [tv_target]).values())
        opt_tv.zero_grad(set_to_none=True)
        loss.backward()
        opt_tv.step()

    return dict(infer_ours=infer_ours, infer_tv=infer_tv, train_ours=train_ours, train_tv=train_tv)


def pipeline_images_per_second(cfg, num_images: int) -> float:
    """Our train pipeline (load, annotations, resize 1333x800, flip, normalise, pad, format) on coco_tiny."""
    from mmdet.datasets import build_dataset
    train = cfg.data.train
    train.ann_file = str(COCO_TINY / "annotations" / "instances_train2017.json")
    train.img_prefix = str(COCO_TINY / "train2017") + "/"
    dataset = build_dataset(train)
    dataset[0]
    start = time.perf_counter()
    for i in range(num_images):
        dataset[(i + 1) % len(dataset)]
    return num_images / (time.perf_counter() - start)


def profile_ours(fn, label: str, rows: int = 15) -> None:
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], record_shapes=False) as prof:
        fn()
    print(f"--- top self-CPU ops of ours, {label} ---")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))


def main():
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"),
                        help="image size (default 512 768 quick, 800 1333 full)")
    parser.add_argument("--pipeline-images", type=int, default=None, help="images for the pipeline rate")
    parser.add_argument("--profile", action="store_true", help="print torch.profiler top ops of ours")
    args = parser.parse_args()
    setup(args)
    height, width = args.size or ((512, 768) if args.quick else (800, 1333))
    reps = args.reps or (2 if args.quick else 5)
    device = torch.device(args.device)
    print(machine_line())
    print(f"image {height}x{width}, {reps} reps (interleaved, medians), device {device}")
    ours, cfg = build_ours(device)
    ours_cl, _ = build_ours(device, channels_last=True)
    ours_cl.load_state_dict(ours.state_dict())
    tv = build_torchvision(height, width, device)
    copy_weights_to_torchvision(ours, tv)
    ours_inputs, tv_image, tv_target = make_inputs(height, width, device)
    fns = step_fns(ours, tv, ours_inputs, tv_image, tv_target)
    fns_cl = step_fns(ours_cl, tv, ours_inputs, tv_image, tv_target)

    dets_ours = sum(len(b) for b in fns["infer_ours"]()[0][0])
    dets_tv = len(fns["infer_tv"]()[0]["boxes"])
    print(f"detections per image: ours {dets_ours}, torchvision {dets_tv}")
    infer = time_interleaved({"ours": fns["infer_ours"], "ours_cl": fns_cl["infer_ours"], "tv": fns["infer_tv"]},
                             reps=reps, device=device)
    print(f"inference   ours {infer['ours']:.3f} s  ours channels_last {infer['ours_cl']:.3f} s  "
          f"torchvision {infer['tv']:.3f} s  ratios {infer['tv'] / infer['ours']:.2f} / "
          f"{infer['tv'] / infer['ours_cl']:.2f}", flush=True)
    train = time_interleaved({"ours": fns["train_ours"], "ours_cl": fns_cl["train_ours"], "tv": fns["train_tv"]},
                             reps=reps, device=device)
    print(f"train step  ours {train['ours']:.3f} s  ours channels_last {train['ours_cl']:.3f} s  "
          f"torchvision {train['tv']:.3f} s  ratios {train['tv'] / train['ours']:.2f} / "
          f"{train['tv'] / train['ours_cl']:.2f}", flush=True)
    num_images = args.pipeline_images or (8 if args.quick else 40)
    rate = pipeline_images_per_second(cfg, num_images)
    print(f"train pipeline on coco_tiny (1333x800): {rate:.2f} images/s over {num_images} images", flush=True)
    if args.profile:
        profile_ours(fns["infer_ours"], "inference")
        profile_ours(fns["train_ours"], "train step")
    print_result(infer_ratio=infer["tv"] / infer["ours"], train_ratio=train["tv"] / train["ours"],
                 infer_ratio_channels_last=infer["tv"] / infer["ours_cl"],
                 train_ratio_channels_last=train["tv"] / train["ours_cl"], pipeline_img_per_s=rate, infer_ours_s=infer["ours"], infer_tv_s=infer["tv"],
                 train_ours_s=train["ours"], train_tv_s=train["tv"], size=f"{height}x{width}")


if __name__ == "__main__":
    main()
