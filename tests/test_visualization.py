"""imshow_det_bboxes / imshow_gt_det_bboxes draw on a real photo: pixels change inside the drawn boxes, labels and
masks, with the requested colours and mask opacity, and nowhere else."""
from pathlib import Path

import cv2
import numpy as np
import pytest

from mmdet.core.visualization import (MASK_ALPHA, get_palette, imshow_det_bboxes, imshow_gt_det_bboxes,
                                      parse_det_result)

ROOT = Path(__file__).resolve().parents[1]
IMAGE = ROOT / "data" / "fruits_nuts" / "images" / "0.jpg"
CLASSES = ("date", "fig", "hazelnut")
THICKNESS = 2


@pytest.fixture(scope="module")
def photo():
    img = cv2.imread(str(IMAGE))
    assert img is not None and img.shape == (600, 800, 3)
    return img


def _instances(shape):
    """Two kept instances (scores 0.9, 0.8) and one below the 0.5 threshold, with rectangular masks inside
    their boxes."""
    bboxes = np.array([[90, 290, 260, 410, 0.9], [490, 40, 710, 160, 0.8], [300, 450, 420, 560, 0.3]], np.float32)
    labels = np.array([0, 2, 1])
    segms = np.zeros((3,) + shape[:2], bool)
    segms[0, 340:400, 120:250] = True
    segms[1, 100:150, 520:700] = True
    segms[2, 470:550, 320:400] = True
    return bboxes, labels, segms


def _box_region(shape, box, pad):
    region = np.zeros(shape[:2], bool)
    x1, y1, x2, y2 = (int(v) for v in box[:4])
    region[max(y1 - pad, 0):y2 + pad + 1, max(x1 - pad, 0):x2 + pad + 1] = True
    return region


def test_changes_only_inside_kept_boxes_with_palette_colours_and_mask_blend(photo):
    bboxes, labels, segms = _instances(photo.shape)
    palette = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]               # RGB per class
    out = imshow_det_bboxes(photo, bboxes, labels, segms, CLASSES, score_thr=0.5, bbox_color=palette,
                            text_color="white", mask_color=palette, thickness=THICKNESS, show=False)
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert not np.shares_memory(out, photo)
    changed = (out != photo).any(-1)
    allowed = _box_region(photo.shape, bboxes[0], THICKNESS) | _box_region(photo.shape, bboxes[1], THICKNESS)
    assert not changed[~allowed].any()                               # third box (0.3 <= thr) and background
    for i in (0, 1):                                                  # each kept box's outline and mask changed
        x1, y1, x2, y2 = bboxes[i, :4].astype(int)
        assert changed[y1:y2 + 1, x1].all() and changed[y2, x1:x2 + 1].all()
        rgb = palette[labels[i]]
        assert tuple(out[y2, (x1 + x2) // 2]) == (rgb[2], rgb[1], rgb[0])   # BGR on the bottom edge
        inner = segms[i].copy()
        inner[:y1 + 30] = False                                        # away from the label box
        expected = photo[inner].astype(np.float32) * (1 - MASK_ALPHA) + np.array(rgb[::-1]) * MASK_ALPHA
        np.testing.assert_allclose(out[inner], expected, atol=1)
    assert changed[segms[0]].all()
    between = _box_region(photo.shape, bboxes[0], THICKNESS) & ~segms[0]
    between[:int(bboxes[0, 1]) + 30] = False                           # skip label row
    between[:, :int(bboxes[0, 0]) + THICKNESS + 1] = False              # skip outline columns
    between[:, int(bboxes[0, 2]) - THICKNESS:] = False
    between[int(bboxes[0, 3]) - THICKNESS:] = False
    assert between.any() and not changed[between].any()              # inside the box, outside the mask


def test_label_text_drawn_at_box_top_left(photo):
    bboxes, labels, _ = _instances(photo.shape)
    plain = imshow_det_bboxes(photo, bboxes[:1], labels[:1], class_names=CLASSES, thickness=THICKNESS, show=False)
    boxed = imshow_det_bboxes(photo, bboxes[:1, :4], labels[:1], class_names=CLASSES, thickness=THICKNESS,
                              show=False)
    x1, y1 = int(bboxes[0, 0]), int(bboxes[0, 1])
    label_row = (slice(y1 + THICKNESS + 1, y1 + 16), slice(x1 + THICKNESS + 1, x1 + 75))
    assert (plain[label_row] != photo[label_row]).any(-1).mean() > 0.5      # dark label box
    # "date|0.90" is wider than "date": the score part changes pixels the 4-column boxes leave alone
    assert (plain[label_row] != boxed[label_row]).any()


def test_out_file_written_and_gt_det_stacked(tmp_path, photo):
    bboxes, labels, segms = _instances(photo.shape)
    result = ([bboxes[labels == c] for c in range(3)], [[m for m, lab in zip(segms, labels) if lab == c]
                                                         for c in range(3)])
    flat_boxes, flat_labels, flat_masks = parse_det_result(result)
    assert flat_boxes.shape == (3, 5) and flat_labels.tolist() == [0, 1, 2] and len(flat_masks) == 3
    out_file = tmp_path / "sub" / "gt_det.png"
    drawn = imshow_gt_det_bboxes(str(IMAGE), dict(gt_bboxes=bboxes[:2, :4], gt_labels=labels[:2]), result,
                                 class_names=CLASSES, score_thr=0.5, show=False, out_file=str(out_file),
                                 overlay_gt_pred=False)
    assert drawn.shape == (1200, 800, 3)
    np.testing.assert_array_equal(cv2.imread(str(out_file)), drawn)
    gt_half, det_half = drawn[:600], drawn[600:]
    third = _box_region(photo.shape, bboxes[2], THICKNESS)
    assert (gt_half[third] == photo[third]).all()            # the third instance is neither gt nor kept
    assert (det_half[third] == photo[third]).all()
    assert (det_half[segms[1]] != photo[segms[1]]).any(-1).all()
    assert (gt_half[segms[1]] == photo[segms[1]]).all()      # gt had no masks


def test_palettes_and_bad_inputs(photo):
    assert get_palette(None, 4) == get_palette("random", 4) and len(get_palette(None, 4)) == 4
    assert get_palette("green", 2) == [(0, 255, 0)] * 2
    with pytest.raises(ValueError, match="unknown colour name 'greenish'"):
        get_palette("greenish", 2)
    with pytest.raises(ValueError, match="palette has 1 colours but labels go up to class 2"):
        imshow_det_bboxes(photo, np.zeros((1, 4)), np.array([2]), bbox_color=[(1, 2, 3)], show=False)
    with pytest.raises(ValueError, match="segms has 2 masks but there are 1 labels"):
        imshow_det_bboxes(photo, np.zeros((1, 4)), np.array([0]), np.zeros((2, 600, 800), bool), show=False)
    with pytest.raises(ValueError, match=r"mask of shape \(10, 10\) does not match the image \(600, 800\)"):
        imshow_det_bboxes(photo, np.zeros((1, 4)), np.array([0]), [np.zeros((10, 10), bool)], show=False)
    with pytest.warns(UserWarning, match="no display in this build"):
        imshow_det_bboxes(photo, show=True)
