"""BitmapMasks / PolygonMasks: every operation checked against OpenCV / pycocotools / brute force,
and bitmap vs polygon results checked against each other on real fruits_nuts polygons."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torchvision.ops import roi_align

from mmdet.core.mask import (BitmapMasks, PolygonMasks, encode_mask_results, mask2ndarray, mask_target,
                             split_combined_polys)
from mmdet.core.mask.structures import rescale_size

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fruit_polygons():
    """Polygons of the first fruits_nuts image (600x800)."""
    data = json.loads((ROOT / "data" / "fruits_nuts" / "trainval.json").read_text())
    anns = [a for a in data["annotations"] if a["image_id"] == 0]
    polys = [[np.asarray(p, dtype=np.float64) for p in a["segmentation"]] for a in anns]
    return PolygonMasks(polys, 600, 800)


def _iou(a, b):
    a, b = a.astype(bool), b.astype(bool)
    return (a & b).sum() / max((a | b).sum(), 1)


def test_rescale_size_rounding():
    assert rescale_size((640, 480), (1333, 800)) == (1067, 800)
    assert rescale_size((640, 427), (1333, 800)) == (1199, 800)
    assert rescale_size((640, 480), (1024, 1024)) == (1024, 768)
    assert rescale_size((478, 640), (1333, 800)) == (800, 1071)
    assert rescale_size((10, 20), 0.5) == (5, 10)
    with pytest.raises(ValueError, match="positive"):
        rescale_size((10, 10), -1.0)


@pytest.mark.parametrize("out_hw", [(80, 120), (20, 11), (37, 53), (1071, 800), (5, 300)])
def test_bitmap_resize_equals_cv2(out_hw):
    masks = BitmapMasks.random(6, 37, 53, rng=np.random.RandomState(0))
    h, w = out_hw
    for interp, flag in (("nearest", cv2.INTER_NEAREST), ("bilinear", cv2.INTER_LINEAR)):
        got = masks.resize(out_hw, interp)
        ref = np.stack([cv2.resize(m, (w, h), interpolation=flag) for m in masks.masks])
        assert (got.height, got.width) == out_hw
        np.testing.assert_array_equal(got.masks, ref)


def test_bitmap_rescale_flip_pad_crop_expand():
    rng = np.random.RandomState(1)
    masks = BitmapMasks.random(3, 30, 40, rng=rng)
    r = masks.rescale((80, 60))
    assert (r.height, r.width) == (60, 80) and r.masks.shape == (3, 60, 80)
    np.testing.assert_array_equal(masks.flip("horizontal").masks, masks.masks[:, :, ::-1])
    np.testing.assert_array_equal(masks.flip("vertical").masks, masks.masks[:, ::-1])
    np.testing.assert_array_equal(masks.flip("diagonal").masks, masks.masks[:, ::-1, ::-1])
    assert masks.flip().masks.flags["C_CONTIGUOUS"]
    p = masks.pad((35, 48), pad_val=0)
    assert p.masks.shape == (3, 35, 48) and p.masks[:, 30:].sum() == 0 and p.masks[:, :, 40:].sum() == 0
    np.testing.assert_array_equal(p.masks[:, :30, :40], masks.masks)
    c = masks.crop(np.array([5, 7, 25, 50]))
    assert (c.height, c.width) == (23, 20)
    np.testing.assert_array_equal(c.masks, masks.masks[:, 7:30, 5:25])
    e = masks.expand(50, 60, 4, 9)
    np.testing.assert_array_equal(e.masks[:, 4:34, 9:49], masks.masks)
    assert e.masks.sum() == masks.masks.sum()
    assert len(masks[[0, 2]]) == 2 and len(masks[np.array([True, False, False])]) == 1
    np.testing.assert_array_equal(masks.areas, masks.masks.sum((1, 2)))
    empty = BitmapMasks([], 10, 12)
    assert empty.masks.shape == (0, 10, 12) and empty.rescale(2.0).masks.shape == (0, 20, 24)
    with pytest.raises(ValueError, match="do not match the canvas"):
        BitmapMasks(np.zeros((2, 5, 5), np.uint8), 5, 6)


def test_bitmap_get_bboxes_brute_force():
    masks = BitmapMasks.random(5, 20, 30, rng=np.random.RandomState(2))
    masks.masks[:] = 0
    masks.masks[0, 3:8, 4:10] = 1
    masks.masks[1, 0, 29] = 1
    masks.masks[2, 5:20, 0:2] = 1
    masks.masks[4, 10, 10] = 1
    masks.masks[4, 12, 15] = 1
    expected = np.array([[4, 3, 10, 8], [29, 0, 30, 1], [0, 5, 2, 20], [0, 0, 0, 0], [10, 10, 16, 13]], np.float32)
    np.testing.assert_array_equal(masks.get_bboxes(), expected)


def test_bitmap_crop_and_resize_is_aligned_roi_align():
    rng = np.random.RandomState(3)
    masks = BitmapMasks.random(4, 50, 60, rng=rng)
    boxes = np.array([[0, 0, 60, 50], [10.5, 3.2, 40.7, 33.3], [5, 5, 6, 6]], dtype=np.float32)
    inds = np.array([1, 3, 0])
    out = masks.crop_and_resize(boxes, (28, 28), inds)
    rois = torch.cat([torch.arange(3.0)[:, None], torch.from_numpy(boxes)], 1)
    ref = roi_align(torch.from_numpy(masks.masks[inds]).float()[:, None], rois, (28, 28), 1.0, 0, True)[:, 0]
    np.testing.assert_array_equal(out.masks, (ref >= 0.5).numpy())
    soft = masks.crop_and_resize(torch.from_numpy(boxes), (28, 28), torch.from_numpy(inds), binarize=False)
    np.testing.assert_allclose(soft.masks, ref.numpy())
    # a box equal to a constant block returns that block
    block = BitmapMasks(np.pad(np.ones((1, 10, 10), np.uint8), ((0, 0), (5, 5), (5, 5))), 20, 20)
    assert block.crop_and_resize(np.array([[5.0, 5, 15, 15]]), (7, 7), np.array([0])).masks.all()
    assert BitmapMasks([], 5, 5).crop_and_resize(np.zeros((0, 4)), (28, 28), np.zeros(0)).masks.shape == (0, 28, 28)


def test_mask_target_uses_crop_and_resize():
    masks = BitmapMasks(np.pad(np.ones((1, 10, 10), np.uint8), ((0, 0), (5, 5), (5, 5))), 20, 20)
    targets = mask_target([torch.tensor([[5.0, 5, 15, 15], [0, 0, 10, 10]])], [torch.tensor([0, 0])], [masks],
                          dict(mask_size=4))
    assert targets.shape == (2, 4, 4)
    assert targets[0].all() and targets[1, :2, :2].sum() == 0 and targets[1, 2:, 2:].all()


def test_bitmap_translate_shear_rotate():
    masks = BitmapMasks(np.zeros((2, 20, 30), np.uint8), 20, 30)
    masks.masks[0, 5:10, 5:10] = 1
    masks.masks[1, 0:3, 0:30] = 1
    t = masks.translate((20, 30), 4, "horizontal")
    np.testing.assert_array_equal(t.masks[0, 5:10, 9:14], 1)
    assert t.masks[0].sum() == 25 and t.masks[1, 0:3, :4].sum() == 0
    t = masks.translate((20, 30), -3, "vertical")
    assert t.masks[0, 2:7, 5:10].all() and t.masks[1].sum() == 0
    r = masks.rotate((20, 30), 180)
    np.testing.assert_array_equal(r.masks[0], masks.masks[0][::-1, ::-1])
    s = masks.shear((20, 30), 0.0)
    np.testing.assert_array_equal(s.masks, masks.masks)
    assert masks.translate((20, 30), 1).masks.dtype == np.uint8


def test_polygon_ops_agree_with_bitmap(fruit_polygons):
    polys = fruit_polygons
    bitmap = polys.to_bitmap()
    assert bitmap.masks.shape == (len(polys), 600, 800)
    # areas: shoelace vs rasterised pixels
    np.testing.assert_allclose(polys.areas, bitmap.areas, rtol=0.05)
    # boxes: polygon extremes vs mask extents (rasterisation rounds to pixels)
    np.testing.assert_allclose(polys.get_bboxes(), bitmap.get_bboxes(), atol=1.5)
    for direction in ("horizontal", "vertical", "diagonal"):
        a, b = polys.flip(direction).to_ndarray(), bitmap.flip(direction).masks
        assert min(_iou(x, y) for x, y in zip(a, b)) > 0.9
    resized = polys.resize((300, 400)).to_ndarray()
    ref = bitmap.resize((300, 400)).masks
    assert min(_iou(x, y) for x, y in zip(resized, ref)) > 0.85
    box = np.array([150, 100, 500, 420])
    pc, bc = polys.crop(box), bitmap.crop(box)
    assert (pc.height, pc.width) == (320, 350)
    for x, y, area in zip(pc.to_ndarray(), bc.masks, bc.areas):
        if area > 50:
            assert _iou(x, y) > 0.85
    # clipped polygons stay inside the crop
    assert (pc.get_bboxes()[:, 2] <= 350).all() and (pc.get_bboxes()[:, 3] <= 320).all()
    padded = polys.pad((640, 832))
    assert (padded.height, padded.width) == (640, 832) and padded.masks is polys.masks
    expanded = polys.expand(700, 900, 50, 60).to_ndarray()
    assert min(_iou(x[50:650, 60:860], y) for x, y in zip(expanded, bitmap.masks)) > 0.99


def test_polygon_crop_outside_gives_degenerate_polygon():
    polys = PolygonMasks([[np.array([0, 0, 10, 0, 10, 10, 0, 10.0])], [np.array([50, 50, 60, 50, 55, 60.0])]], 100, 100)
    cropped = polys.crop(np.array([40, 40, 80, 80]))
    assert len(cropped) == 2
    np.testing.assert_array_equal(cropped.masks[0][0], np.zeros(6))
    assert cropped.areas[0] == 0 and cropped.areas[1] == pytest.approx(50.0)
    np.testing.assert_array_equal(cropped.get_bboxes()[1], [10, 10, 20, 20])


def test_polygon_crop_and_resize_and_affine():
    polys = PolygonMasks([[np.array([10, 10, 30, 10, 30, 30, 10, 30.0])]], 40, 40)
    out = polys.crop_and_resize(np.array([[10.0, 10, 30, 30]]), (28, 28), np.array([0]))
    assert out.to_ndarray()[0].sum() == 28 * 28
    moved = polys.translate((40, 40), 5, "horizontal")
    np.testing.assert_array_equal(moved.get_bboxes(), [[15, 10, 35, 30]])
    rotated = polys.rotate((40, 40), 90)
    np.testing.assert_allclose(rotated.get_bboxes(), [[9, 10, 29, 30]], atol=1e-6)
    with pytest.raises(ValueError, match="binarize=False"):
        polys.crop_and_resize(np.array([[0.0, 0, 5, 5]]), (4, 4), np.array([0]), binarize=False)
    assert len(polys[[0, 0]]) == 2 and len(polys[0]) == 1 and len(polys[np.array([False])]) == 0


def test_encode_mask_results_and_helpers():
    masks = [np.zeros((5, 6), bool) for _ in range(2)]
    masks[0][1:3, 2:5] = True
    encoded = encode_mask_results([masks, [], [masks[1]]])
    assert [len(c) for c in encoded] == [2, 0, 1]
    import pycocotools.mask as mask_utils
    np.testing.assert_array_equal(mask_utils.decode(encoded[0][0]), masks[0])
    assert mask2ndarray(BitmapMasks(np.stack(masks).astype(np.uint8), 5, 6)).shape == (2, 5, 6)
    assert mask2ndarray(torch.zeros(1, 2, 3)).shape == (1, 2, 3)
    flat = np.arange(18.0)
    split = split_combined_polys([flat], [np.array([6, 6, 6])], [np.array([2, 1])])
    assert len(split[0]) == 2 and len(split[0][0]) == 2
    np.testing.assert_array_equal(split[0][1][0], np.arange(12.0, 18.0))
