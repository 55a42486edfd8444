"""Data faults on real images (coco_tiny val copies damaged inside tmp dirs): what training and testing do
with unreadable files, odd image formats, EXIF rotation and bad annotations."""
import json
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from mmdet.datasets import CocoDataset, SampleLoadError, TooManyBadSamplesError
from mmdet.datasets.pipelines import LoadImageFromFile

ROOT = Path(__file__).resolve().parents[1]
COCO_ANN = ROOT / "data" / "coco_tiny" / "annotations" / "instances_val2017.json"
COCO_IMG = ROOT / "data" / "coco_tiny" / "val2017"
PIPELINE = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations", with_bbox=True, with_mask=True),
    dict(type="Resize", img_scale=(160, 120), keep_ratio=True),
    dict(type="RandomFlip", flip_ratio=0.0),
    dict(type="Pad", size_divisor=32),
    dict(type="DefaultFormatBundle"),
    dict(type="Collect", keys=["img", "gt_bboxes", "gt_labels", "gt_masks"]),
]


@pytest.fixture(scope="module")
def coco_raw():
    return json.loads(COCO_ANN.read_text())


@pytest.fixture()
def records():
    """Warnings logged by the toolbox (the 'mmdet' logger)."""
    got = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = lambda r: got.append(r.getMessage())
    logger = logging.getLogger("mmdet")
    logger.addHandler(handler)
    yield got
    logger.removeHandler(handler)


def make_subset(tmp_path, raw, n_land=5, n_port=3):
    """Copy ``n_land`` landscape and ``n_port`` portrait coco_tiny images and their annotations to tmp_path."""
    land = [i for i in raw["images"] if i["width"] > i["height"]][:n_land]
    port = [i for i in raw["images"] if i["width"] <= i["height"]][:n_port]
    images = [dict(i) for i in land + port]
    ids = {i["id"] for i in images}
    anns = [dict(a) for a in raw["annotations"] if a["image_id"] in ids]
    img_dir = tmp_path / "images"
    img_dir.mkdir(exist_ok=True)
    for i in images:
        shutil.copy(COCO_IMG / i["file_name"], img_dir / i["file_name"])
    return dict(images=images, annotations=anns, categories=raw["categories"]), img_dir


def build(tmp_path, data, img_dir, **kwargs):
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(data))
    return CocoDataset(str(ann), kwargs.pop("pipeline", PIPELINE), img_prefix=str(img_dir), **kwargs)


def _filename(sample):
    return sample["img_metas"].data["ori_filename"]


@pytest.mark.parametrize("damage, reason", [
    ("missing", "file does not exist"),
    ("truncated", "OpenCV cannot decode"),
    ("zero_bytes", "file is empty (0 bytes)"),
    ("garbage", "OpenCV cannot decode"),
])
def test_unreadable_image_is_skipped_in_training(tmp_path, coco_raw, records, damage, reason):
    data, img_dir = make_subset(tmp_path, coco_raw)
    bad = data["images"][6]  # a portrait image
    path = img_dir / bad["file_name"]
    if damage == "missing":
        path.unlink()
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "zero_bytes":
        path.write_bytes(b"")
    else:
        path.write_bytes(np.random.RandomState(0).bytes(5000))
    ds = build(tmp_path, data, img_dir, max_bad_sample_ratio=0.2)
    idx = ds.img_ids.index(bad["id"])
    np.random.seed(0)
    sample = ds[idx]
    assert _filename(sample) != bad["file_name"]
    replacement = next(i for i in data["images"] if i["file_name"] == _filename(sample))
    assert replacement["width"] <= replacement["height"]  # same aspect group (portrait)
    msg = next(m for m in records if "skipping training sample" in m)
    assert bad["file_name"] in msg and reason in msg
    assert list(ds.bad_samples) == [idx]
    ds[idx]  # a known-bad sample is not warned about twice
    assert sum("skipping training sample" in m for m in records) == 1


def test_unreadable_image_in_test_mode_is_an_error(tmp_path, coco_raw):
    data, img_dir = make_subset(tmp_path, coco_raw)
    bad = data["images"][2]
    (img_dir / bad["file_name"]).write_bytes(b"")
    ds = build(tmp_path, data, img_dir, test_mode=True, pipeline=[dict(type="LoadImageFromFile")])
    with pytest.raises(SampleLoadError, match=f"cannot use image '.*{bad['file_name']}': file is empty"):
        ds[2]
    assert ds[0]["img"].ndim == 3


def test_too_many_bad_samples_stops_with_summary(tmp_path, coco_raw):
    data, img_dir = make_subset(tmp_path, coco_raw)
    for i in (data["images"][0], data["images"][6]):  # one landscape, one portrait
        (img_dir / i["file_name"]).unlink()
    ds = build(tmp_path, data, img_dir, max_bad_sample_ratio=0.2)
    np.random.seed(0)
    assert _filename(ds[0]) != data["images"][0]["file_name"]  # 1 of 8 bad: tolerated
    with pytest.raises(TooManyBadSamplesError, match=r"2 of 8 training samples .*\(25.0%\) could not be loaded, "
                                                     r"more than max_bad_sample_ratio=0.2: .*does not exist"):
        ds[6]
    strict = build(tmp_path, data, img_dir, max_bad_sample_ratio=0.0)
    with pytest.raises(TooManyBadSamplesError, match="1 of 8"):
        strict[0]


def test_odd_image_formats_decode_to_bgr_uint8(tmp_path):
    src = cv2.imread(str(COCO_IMG / "000000047112.jpg"))
    gray = cv2.cvtColor(src, cv2.COLOR_BGR2GRAY)
    bgra = np.dstack([src, np.full(src.shape[:2], 77, np.uint8)])
    cv2.imwrite(str(tmp_path / "alpha.png"), bgra)
    cv2.imwrite(str(tmp_path / "gray16.png"), gray.astype(np.uint16) * 257)
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    load = LoadImageFromFile()
    out = {name: load(dict(img_info=dict(filename=name), img_prefix=str(tmp_path)))["img"]
           for name in ("alpha.png", "gray16.png", "gray.png")}
    for img in out.values():
        assert img.dtype == np.uint8 and img.shape == src.shape
    np.testing.assert_array_equal(out["alpha.png"], src)  # alpha dropped, colours kept
    np.testing.assert_array_equal(out["gray16.png"], np.dstack([gray] * 3))  # 16 bit -> 8 bit
    np.testing.assert_array_equal(out["gray.png"], np.dstack([gray] * 3))
    as_float = LoadImageFromFile(to_float32=True)(dict(img_info=dict(filename="gray.png"), img_prefix=str(tmp_path)))
    assert as_float["img"].dtype == np.float32


def _write_exif_rotated(src_path: Path, dst_path: Path) -> np.ndarray:
    """Re-save a JPEG with EXIF orientation 6 (display = rotate 90 deg clockwise); returns the stored pixels."""
    with Image.open(src_path) as im:
        exif = Image.Exif()
        exif[0x0112] = 6
        im.save(dst_path, exif=exif, quality=95)
    return cv2.imread(str(dst_path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)


def test_exif_rotation_is_applied(tmp_path):
    stored = _write_exif_rotated(COCO_IMG / "000000047112.jpg", tmp_path / "rot.jpg")
    out = LoadImageFromFile()(dict(img_info=dict(filename="rot.jpg"), img_prefix=str(tmp_path)))
    assert stored.shape == (480, 640, 3) and out["img"].shape == (640, 480, 3) == out["ori_shape"]
    np.testing.assert_array_equal(out["img"], cv2.rotate(stored, cv2.ROTATE_90_CLOCKWISE))
    raw = LoadImageFromFile(color_type="color_ignore_orientation")(
        dict(img_info=dict(filename="rot.jpg"), img_prefix=str(tmp_path)))
    assert raw["img"].shape == (480, 640, 3)


def test_exif_rotated_image_annotated_unrotated_is_skipped(tmp_path, coco_raw, records):
    data, img_dir = make_subset(tmp_path, coco_raw)
    target = data["images"][0]
    _write_exif_rotated(COCO_IMG / target["file_name"], img_dir / target["file_name"])
    ds = build(tmp_path, data, img_dir, max_bad_sample_ratio=0.2)
    np.random.seed(1)
    sample = ds[0]
    assert _filename(sample) != target["file_name"]
    msg = next(m for m in records if "skipping training sample" in m)
    assert target["file_name"] in msg and "EXIF orientation 6" in msg
    assert f"decoded image is {target['width']}x{target['height']} (HxW)" in msg


def test_bad_annotations_are_dropped_and_the_rest_used(tmp_path, coco_raw, records):
    data, img_dir = make_subset(tmp_path, coco_raw)
    img = data["images"][0]
    anns = [a for a in data["annotations"] if a["image_id"] == img["id"] and not a["iscrowd"]]
    n_before = len(anns)
    faults = {
        anns[0]["id"]: ("zero or negative size", dict(bbox=[10, 10, 0, 20])),
        anns[1]["id"]: ("zero or negative size", dict(bbox=[10, 10, 20, -3])),
        anns[2]["id"]: ("no polygon has 3 or more points", dict(segmentation=[[1, 1, 5, 5]])),
        anns[3]["id"]: ("RLE size [10, 10] does not match", dict(segmentation=dict(size=[10, 10], counts=[100]),
                                                                 iscrowd=0)),
        anns[4]["id"]: ("category_id 999 is not in the file's categories", dict(category_id=999)),
        anns[5]["id"]: ("lies outside the", dict(bbox=[img["width"] + 5, 3, 10, 10])),
    }
    for a in anns:
        if a["id"] in faults:
            a.update(faults[a["id"]][1])
    anns[6]["segmentation"] = anns[6]["segmentation"] + [[0, 0, 3, 3]]  # one extra degenerate polygon: kept
    ds = build(tmp_path, data, img_dir)
    for ann_id, (reason, _) in faults.items():
        msg = next(m for m in records if f"annotation {ann_id} of" in m)
        assert img["file_name"] in msg and reason in msg and "dropped" in msg
    kept_msg = next(m for m in records if f"annotation {anns[6]['id']} of" in m)
    assert "kept" in kept_msg and "fewer than 3 points" in kept_msg
    assert {f[0] for f in ds.ann_faults if f[3]} == set(faults)
    idx = ds.img_ids.index(img["id"])
    info = ds.get_ann_info(idx)
    assert len(info["bboxes"]) == n_before - len(faults)
    sample = ds[idx]
    assert _filename(sample) == img["file_name"]
    n = len(sample["gt_bboxes"].data)
    assert n == n_before - len(faults) and len(sample["gt_masks"].data) == n


def test_image_without_annotations(tmp_path, coco_raw):
    data, img_dir = make_subset(tmp_path, coco_raw)
    empty = data["images"][1]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] != empty["id"]]
    train = build(tmp_path, data, img_dir)
    assert len(train) == 7 and empty["id"] not in train.img_ids  # filter_empty_gt drops it
    keep = build(tmp_path, data, img_dir, filter_empty_gt=False)
    sample = keep[keep.img_ids.index(empty["id"])]
    assert sample["gt_bboxes"].data.shape == (0, 4) and sample["gt_labels"].data.shape == (0,)
    assert sample["gt_masks"].data.masks.shape == (0,) + tuple(sample["img"].data.shape[1:])
    test = build(tmp_path, data, img_dir, test_mode=True, pipeline=[dict(type="LoadImageFromFile")])
    assert len(test) == 8


def test_duplicate_ids_are_errors(tmp_path, coco_raw):
    data, img_dir = make_subset(tmp_path, coco_raw)
    first, second = data["images"][0], data["images"][1]
    dup = json.loads(json.dumps(data))
    dup["images"][1]["id"] = first["id"]
    with pytest.raises(ValueError, match=f"image id {first['id']} is used twice, by '{first['file_name']}' and "
                                         f"'{second['file_name']}'"):
        build(tmp_path, dup, img_dir)
    dup = json.loads(json.dumps(data))
    dup["annotations"][1]["id"] = dup["annotations"][0]["id"]
    with pytest.raises(ValueError, match=f"annotation ids are not unique .*{dup['annotations'][0]['id']}"):
        build(tmp_path, dup, img_dir)


def test_missing_annotation_file_and_bad_json(tmp_path):
    with pytest.raises(FileNotFoundError, match="annotation file '.*nope.json' does not exist"):
        CocoDataset(str(tmp_path / "nope.json"), PIPELINE)
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="broken.json' is not valid JSON"):
        CocoDataset(str(tmp_path / "broken.json"), PIPELINE)


def test_pipeline_returning_none_redraws_from_same_group(tmp_path, coco_raw):
    data, img_dir = make_subset(tmp_path, coco_raw)
    rejected = data["images"][5]["file_name"]  # a portrait image

    def reject_one(results):
        return None if results["img_info"]["file_name"] == rejected else results

    ds = build(tmp_path, data, img_dir, pipeline=[PIPELINE[0], reject_one] + PIPELINE[1:])
    np.random.seed(0)
    for _ in range(5):
        info = next(i for i in data["images"] if i["file_name"] == _filename(ds[5]))
        assert info["file_name"] != rejected and info["height"] >= info["width"]
    assert ds.bad_samples == {}  # a None from a transform is not a load fault
