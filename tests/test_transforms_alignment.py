"""Boxes, masks and pixels stay aligned through every geometric transform, on real photos (fruits_nuts,
coco_tiny), including the ViTDet LSJ recipe and the seed AutoAugment+RandomCrop pipeline.

Each case runs twice with the same random seed: once on the photo, once on a copy whose pixels are painted
white inside the union of the instance masks. After the transforms, the white region must coincide with
the union of the transformed masks (pixels <-> masks), and every box must equal the tight box of its mask
(boxes <-> masks) within the stated tolerance. All results are drawn into tests/artifacts/transforms_alignment.png.
"""
from pathlib import Path

import cv2
import numpy as np
import pytest

from mmdet.core.mask import PolygonMasks
from mmdet.datasets import CocoDataset
from mmdet.datasets.pipelines import Compose

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
FRUIT = ROOT / "data" / "fruits_nuts"
COCO_ANN = ROOT / "data" / "coco_tiny" / "annotations" / "instances_val2017.json"
COCO_IMG = ROOT / "data" / "coco_tiny" / "val2017"
SEED_SCALES = [(s, 1333) for s in range(480, 801, 32)]
LSJ = [
    dict(type="Resize", img_scale=(1024, 1024), ratio_range=(0.1, 2.0), multiscale_mode="range", keep_ratio=True),
    dict(type="RandomCrop", crop_type="absolute_range", crop_size=(1024, 1024), recompute_bbox=True,
         allow_negative_crop=True),
    dict(type="FilterAnnotations", min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type="RandomFlip", flip_ratio=0.5),
    dict(type="Pad", size=(1024, 1024)),
]
SEED_AUTOAUG = [
    dict(type="RandomFlip", flip_ratio=0.5),
    dict(type="AutoAugment", policies=[
        [dict(type="Resize", img_scale=SEED_SCALES, multiscale_mode="value", keep_ratio=True)],
        [dict(type="Resize", img_scale=[(400, 1333), (500, 1333), (600, 1333)], multiscale_mode="value",
              keep_ratio=True),
         dict(type="RandomCrop", crop_type="absolute_range", crop_size=(384, 600), allow_negative_crop=True),
         dict(type="Resize", img_scale=SEED_SCALES, multiscale_mode="value", override=True, keep_ratio=True)],
    ]),
    dict(type="Pad", size_divisor=32),
]
# name -> (transforms, box check: 'tight' = box equals its mask's box within tol, 'contains' = mask inside box)
CASES = {
    "resize_keep_ratio": ([dict(type="Resize", img_scale=(1333, 800), keep_ratio=True)], "tight"),
    "resize_free": ([dict(type="Resize", img_scale=(500, 300), keep_ratio=False)], "tight"),
    "flip_horizontal": ([dict(type="RandomFlip", flip_ratio=1.0, direction="horizontal")], "tight"),
    "flip_vertical": ([dict(type="RandomFlip", flip_ratio=1.0, direction="vertical")], "tight"),
    "flip_diagonal": ([dict(type="RandomFlip", flip_ratio=1.0, direction="diagonal")], "tight"),
    "crop_absolute": ([dict(type="RandomCrop", crop_size=(300, 400))], "contains"),
    "crop_relative_recompute": ([dict(type="RandomCrop", crop_type="relative_range", crop_size=(0.5, 0.5),
                                      recompute_bbox=True)], "tight"),
    "pad_divisor": ([dict(type="Pad", size_divisor=32)], "tight"),
    "pad_square": ([dict(type="Pad", pad_to_square=True)], "tight"),
    "lsj": (LSJ, "tight"),
    "seed_autoaugment": (SEED_AUTOAUG, "contains"),
    "seed_autoaugment_crop_policy": ([SEED_AUTOAUG[0], dict(type="AutoAugment", policies=[
        SEED_AUTOAUG[1]["policies"][1]]), SEED_AUTOAUG[2]], "contains"),
}
DRAWN = {}


def _paint_union(results):
    """Replace the photo by white-inside-the-masks, black elsewhere (same size)."""
    union = results["gt_masks"].to_ndarray().any(axis=0) if len(results["gt_masks"]) else \
        np.zeros(results["img"].shape[:2], bool)
    results["img"] = np.repeat(union[:, :, None] * np.uint8(255), 3, axis=2)
    return results


def _dataset(source: str, poly2mask: bool):
    load = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_bbox=True, with_mask=True,
                                                 poly2mask=poly2mask)]
    if source == "fruits":
        return CocoDataset(str(FRUIT / "train.json"), load, img_prefix=str(FRUIT / "images"),
                           classes=("date", "fig", "hazelnut"))
    return CocoDataset(str(COCO_ANN), load, img_prefix=str(COCO_IMG))


@pytest.fixture(scope="module")
def datasets():
    return {("fruits", True): _dataset("fruits", True), ("fruits", False): _dataset("fruits", False),
            ("coco", True): _dataset("coco", True)}


def _load(ds, idx):
    results = dict(img_info=ds.data_infos[idx], ann_info=ds.get_ann_info(idx))
    ds.pre_pipeline(results)
    return ds.pipeline(results)


def _run(ds, idx, transforms, seed, paint):
    np.random.seed(seed)
    results = _load(ds, idx)
    steps = ([_paint_union] if paint else []) + transforms
    return Compose(steps)(results)


def _check_alignment(out, painted, mode):
    masks = out["gt_masks"]
    bitmap = masks.to_bitmap() if isinstance(masks, PolygonMasks) else masks
    h, w = out["img"].shape[:2]
    assert (bitmap.height, bitmap.width) == (h, w), "mask canvas differs from the image"
    assert len(bitmap) == len(out["gt_bboxes"]) == len(out["gt_labels"])
    if len(bitmap) == 0:
        return
    scale = float(np.max(out.get("scale_factor", np.ones(4))))
    tol = 2.0 * max(1.0, scale)
    # pixels <-> masks: the painted union moved like the masks (each lies within `k` px of the other)
    union = bitmap.masks.any(axis=0).astype(np.uint8)
    white = (painted["img"][:, :, 0] > 127).astype(np.uint8)
    k = int(np.ceil(max(1.0, scale))) + 1
    kernel = np.ones((2 * k + 1, 2 * k + 1), np.uint8)
    for a, b in ((union, white), (white, union)):
        inside = (a & cv2.dilate(b, kernel)).sum() / max(a.sum(), 1)
        assert inside > 0.995, f"only {inside:.4f} of one region lies within {k} px of the other"
    # boxes <-> masks
    boxes, mask_boxes = out["gt_bboxes"], bitmap.get_bboxes()
    nonempty = bitmap.areas > 0
    if mode == "tight":
        np.testing.assert_allclose(boxes[nonempty], mask_boxes[nonempty], atol=tol)
    else:
        assert (mask_boxes[nonempty, :2] >= boxes[nonempty, :2] - tol).all()
        assert (mask_boxes[nonempty, 2:] <= boxes[nonempty, 2:] + tol).all()


@pytest.mark.parametrize("name", list(CASES))
def test_alignment(datasets, name):
    transforms, mode = CASES[name]
    runs = [(("fruits", True), 0, 0), (("coco", True), 0, 1), (("fruits", False), 3, 2)]
    if name in ("lsj", "seed_autoaugment", "seed_autoaugment_crop_policy"):
        runs += [(("fruits", True), i, 10 + i) for i in range(4)] + [(("coco", True), i, 20 + i) for i in range(3)]
    for key, idx, seed in runs:
        ds = datasets[key]
        out = _run(ds, idx, transforms, seed, paint=False)
        painted = _run(ds, idx, transforms, seed, paint=True)
        if out is None:  # a crop without boxes when negative crops are not allowed: the dataset redraws
            assert painted is None
            continue
        if name == "lsj":
            assert out["img"].shape[:2] == (1024, 1024) and out["pad_shape"][:2] == (1024, 1024)
        _check_alignment(out, painted, mode)
        if seed < 3:
            DRAWN[f"{name} {key[0]}{'' if key[1] else ' poly'} #{idx}"] = out


def _draw(out, tile_w=320):
    img = np.clip(out["img"], 0, 255).astype(np.uint8).copy()
    masks = out["gt_masks"].to_ndarray() if isinstance(out["gt_masks"], PolygonMasks) else out["gt_masks"].masks
    rng = np.random.RandomState(0)
    for m, box in zip(masks, out["gt_bboxes"]):
        colour = rng.randint(60, 255, 3)
        sel = m.astype(bool)
        img[sel] = (0.5 * img[sel] + 0.5 * colour).astype(np.uint8)
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(img, (x1, y1), (x2, y2), tuple(int(c) for c in colour), 2)
    scale = tile_w / img.shape[1]
    tile = cv2.resize(img, (tile_w, max(1, int(img.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    return tile


def test_write_alignment_artifact():
    """Tile every drawn result (the alignment tests above fill DRAWN) into one PNG for a visual check."""
    assert DRAWN, "run together with test_alignment"
    tiles = []
    for title, out in DRAWN.items():
        tile = _draw(out)
        canvas = np.full((tile.shape[0] + 22, tile.shape[1], 3), 255, np.uint8)
        canvas[22:] = tile
        cv2.putText(canvas, title, (3, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
        tiles.append(canvas)
    rows, per_row = [], 6
    height = max(t.shape[0] for t in tiles)
    tiles = [np.pad(t, ((0, height - t.shape[0]), (0, 4), (0, 0)), constant_values=255) for t in tiles]
    blank = np.full_like(tiles[0], 255)
    for i in range(0, len(tiles), per_row):
        row = tiles[i:i + per_row]
        rows.append(np.concatenate(row + [blank] * (per_row - len(row)), axis=1))
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "transforms_alignment.png"
    cv2.imwrite(str(path), np.concatenate(rows, axis=0))
    assert path.stat().st_size > 10000
