"""Training data pipeline throughput (images/s): ours vs a straightforward PIL/numpy implementation.

Both run the stock Mask R-CNN training transforms on real coco_tiny val2017 photos with their instance masks:
load + decode, polygons/RLE -> bitmaps, Resize keep-ratio to (1333, 800) (image bilinear, masks nearest,
boxes scaled), RandomFlip 0.5, Normalize (mean/std, BGR->RGB), Pad to a multiple of 32 (image and masks),
HWC->CHW tensor. Ours is ``CocoDataset.__getitem__`` with the config pipeline (cv2 decode/resize, one
pycocotools call for all masks of an image, one index gather to resize all masks); the reference decodes
with PIL, rasterises and resizes each mask on its own (PIL nearest) and normalises with numpy.
Single process, so the numbers are per data-loader worker.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import base_parser, machine_line, print_result, setup, time_interleaved  # noqa: E402
from mmdet.core.mask.structures import rescale_size  # noqa: E402
from mmdet.datasets import CocoDataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ANN = ROOT / "data" / "coco_tiny" / "annotations" / "instances_val2017.json"
IMG_DIR = ROOT / "data" / "coco_tiny" / "val2017"
MEAN = np.array([123.675, 116.28, 103.53], np.float32)
STD = np.array([58.395, 57.12, 57.375], np.float32)
PIPELINE = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations", with_bbox=True, with_mask=True),
    dict(type="Resize", img_scale=(1333, 800), keep_ratio=True),
    dict(type="RandomFlip", flip_ratio=0.5),
    dict(type="Normalize", mean=MEAN.tolist(), std=STD.tolist(), to_rgb=True),
    dict(type="Pad", size_divisor=32),
    dict(type="DefaultFormatBundle"),
    dict(type="Collect", keys=["img", "gt_bboxes", "gt_labels", "gt_masks"]),
]


def reference_sample(dataset: CocoDataset, idx: int) -> dict:
    """The same transforms written the obvious way with PIL and numpy."""
    info = dataset.data_infos[idx]
    ann = dataset.get_ann_info(idx)
    img = np.asarray(Image.open(IMG_DIR / info["filename"]).convert("RGB"))
    h, w = img.shape[:2]
    masks = [dataset.coco.annToMask(dict(segmentation=s, image_id=info["id"])) for s in ann["masks"]]
    new_w, new_h = rescale_size((w, h), (1333, 800))
    img = np.asarray(Image.fromarray(img).resize((new_w, new_h), Image.BILINEAR))
    masks = [np.asarray(Image.fromarray(m).resize((new_w, new_h), Image.NEAREST)) for m in masks]
    boxes = ann["bboxes"] * np.array([new_w / w, new_h / h, new_w / w, new_h / h], np.float32)
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, new_w)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, new_h)
    if np.random.rand() < 0.5:
        img = img[:, ::-1]
        masks = [m[:, ::-1] for m in masks]
        boxes = np.stack([new_w - boxes[:, 2], boxes[:, 1], new_w - boxes[:, 0], boxes[:, 3]], axis=1)
    img = (img.astype(np.float32) - MEAN) / STD
    pad_h, pad_w = int(np.ceil(new_h / 32)) * 32, int(np.ceil(new_w / 32)) * 32
    padded = np.zeros((pad_h, pad_w, 3), np.float32)
    padded[:new_h, :new_w] = img
    padded_masks = []
    for m in masks:
        pm = np.zeros((pad_h, pad_w), np.uint8)
        pm[:new_h, :new_w] = m
        padded_masks.append(pm)
    return dict(img=torch.from_numpy(padded.transpose(2, 0, 1).copy()), gt_bboxes=torch.from_numpy(boxes),
                gt_labels=torch.from_numpy(ann["labels"]), gt_masks=np.stack(padded_masks))


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=None, help="images per pass (default 16 quick, 80 full)")
    args = parser.parse_args()
    setup(args)
    reps = args.reps or (3 if args.quick else 5)
    dataset = CocoDataset(str(ANN), PIPELINE, img_prefix=str(IMG_DIR))
    n = min(args.images or (16 if args.quick else 80), len(dataset))
    instances = sum(len(dataset.get_ann_info(i)["labels"]) for i in range(n))
    print(machine_line())
    print(f"{n} coco_tiny images per pass, {instances} instance masks")

    # same output: compare one sample (no flip) of both implementations
    np.random.seed(1)
    ours_one = dataset[0]
    np.random.seed(1)
    ref_one = reference_sample(dataset, 0)
    assert ours_one["img"].data.shape == ref_one["img"].shape
    assert ours_one["gt_masks"].data.masks.shape == ref_one["gt_masks"].shape
    torch.testing.assert_close(ours_one["gt_bboxes"].data, ref_one["gt_bboxes"])
    mask_agree = (ours_one["gt_masks"].data.masks == ref_one["gt_masks"]).mean()
    img_diff = (ours_one["img"].data - ref_one["img"]).abs().mean().item()
    print(f"sample 0: masks agree on {mask_agree:.4%} of pixels, mean |image diff| {img_diff:.4f} "
          f"(cv2 vs PIL decode/resize)")

    def ours():
        np.random.seed(0)
        for i in range(n):
            dataset[i]

    def reference():
        np.random.seed(0)
        for i in range(n):
            reference_sample(dataset, i)

    times = time_interleaved({"ours": ours, "reference": reference}, reps=reps, warmup=1)
    ours_ips, ref_ips = n / times["ours"], n / times["reference"]
    print(f"ours      {ours_ips:7.1f} images/s")
    print(f"reference {ref_ips:7.1f} images/s (PIL + numpy, per-mask loops)")
    print_result(speedup=times["reference"] / times["ours"], ours_images_per_s=ours_ips,
                 reference_images_per_s=ref_ips)


if __name__ == "__main__":
    main()
