"""Pipelines: bit-exact test/train preprocessing against real mmdetection 2.28.2 (golden), transform
semantics (Resize modes, flips, Pad, MultiScaleFlipAug TTA metadata), collate / unwrap_batch."""
import json
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch

from mmdet.core.mask import BitmapMasks
from mmdet.datasets import (CocoDataset, DataContainer, collate, get_loading_pipeline, replace_ImageToTensor,
                            unwrap_batch)
from mmdet.datasets.pipelines import Compose, Pad, RandomFlip, Resize

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).resolve().parent / "data" / "golden" / "detectors"
VAL_DIR = ROOT / "data" / "coco_tiny" / "val2017"
NORM = dict(type="Normalize", mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)


@pytest.fixture(scope="module")
def golden():
    case = torch.load(GOLDEN / "mask_rcnn_r50_fpn_infer.pt", weights_only=True)
    cfg = json.loads((GOLDEN / "mask_rcnn_r50_fpn_config.json").read_text())
    return case, cfg


def _stats_equal(x: torch.Tensor, stats: dict) -> None:
    xd = x.double()
    assert list(x.shape) == stats["shape"]
    assert xd.sum().item() == stats["sum"]
    assert xd.abs().sum().item() == stats["abs_sum"]
    assert (xd * xd).sum().item() == stats["sq_sum"]
    assert x.min().item() == stats["min"] and x.max().item() == stats["max"]
    assert x.reshape(-1)[stats["sample_flat_index"]].tolist() == stats["sample_values"]


def test_decode_and_resize_bit_exact(golden):
    case, _ = golden
    pipe = Compose([dict(type="LoadImageFromFile"), dict(type="Resize", img_scale=(1333, 800), keep_ratio=True)])
    for im in case["images"]:
        out = pipe(dict(img_info=dict(filename=im["file_name"]), img_prefix=str(VAL_DIR), bbox_fields=[]))
        assert out["img"].dtype == np.uint8
        np.testing.assert_array_equal(out["img"], im["img_resized_uint8_bgr"].numpy())


def test_test_pipeline_bit_exact_with_metas(golden):
    case, cfg = golden
    pipe = Compose(cfg["test_pipeline"])
    for im in case["images"]:
        out = pipe(dict(img_info=dict(filename=im["file_name"]), img_prefix=str(VAL_DIR)))
        assert isinstance(out["img"], list) and len(out["img"]) == 1
        _stats_equal(out["img"][0][None], im["input_tensor_stats"])
        meta, ref = out["img_metas"][0].data, im["img_metas"]
        assert out["img_metas"][0].cpu_only
        assert meta["ori_filename"] == ref["ori_filename"] and meta["filename"].endswith(ref["ori_filename"])
        for key in ("ori_shape", "img_shape", "pad_shape", "flip", "flip_direction"):
            assert meta[key] == ref[key], key
        assert meta["scale_factor"].dtype == np.float32
        np.testing.assert_array_equal(meta["scale_factor"], ref["scale_factor"].numpy())
        np.testing.assert_array_equal(meta["img_norm_cfg"]["mean"], ref["img_norm_cfg"]["mean"].numpy())
        np.testing.assert_array_equal(meta["img_norm_cfg"]["std"], ref["img_norm_cfg"]["std"].numpy())
        assert meta["img_norm_cfg"]["to_rgb"] is True


def test_train_pipeline_matches_golden_training_case(golden):
    _, cfg = golden
    train = torch.load(GOLDEN / "mask_rcnn_r50_fpn_train.pt", weights_only=True)
    dataset = CocoDataset(str(GOLDEN / "mask_rcnn_r50_fpn_gt_subset.json"), cfg["train_case_pipeline"],
                          img_prefix=str(VAL_DIR))
    idx = next(i for i, info in enumerate(dataset.data_infos) if info["file_name"] == train["image_file"])
    batch = unwrap_batch(collate([dataset[idx]], samples_per_gpu=1), "cpu")
    assert torch.equal(batch["gt_bboxes"][0], train["gt_bboxes"])
    assert torch.equal(batch["gt_labels"][0], train["gt_labels"])
    masks = batch["gt_masks"][0]
    assert isinstance(masks, BitmapMasks) and list(masks.masks.shape) == train["gt_masks_shape"]
    np.testing.assert_array_equal(masks.masks, mask_utils.decode(train["gt_masks_rle"]).transpose(2, 0, 1))
    assert masks.areas.tolist() == list(train["gt_masks_area"])
    _stats_equal(batch["img"], train["input_tensor_stats"])
    meta = batch["img_metas"][0]
    assert meta["img_shape"] == train["img_metas"]["img_shape"] and meta["pad_shape"] == (800, 1088, 3)


def _results(img: np.ndarray, boxes=None, masks=None) -> dict:
    res = dict(img=img, img_shape=img.shape, ori_shape=img.shape, img_fields=["img"], bbox_fields=[],
               mask_fields=[], seg_fields=[])
    if boxes is not None:
        res["gt_bboxes"] = boxes
        res["bbox_fields"].append("gt_bboxes")
    if masks is not None:
        res["gt_masks"] = masks
        res["mask_fields"].append("gt_masks")
    return res


def test_resize_modes_and_override():
    img = np.zeros((480, 640, 3), np.uint8)
    np.random.seed(0)
    scales = [(1333, s) for s in range(480, 801, 32)]
    value = Resize(img_scale=scales, multiscale_mode="value")
    seen = {value(_results(img.copy()))["scale"] for _ in range(60)}
    assert seen <= set(scales) and len(seen) > 5
    rng = Resize(img_scale=[(1333, 640), (1333, 800)], multiscale_mode="range")
    drawn = [rng(_results(img.copy()))["scale"] for _ in range(40)]
    assert all(s[0] == 1333 and 640 <= s[1] <= 800 for s in drawn) and len({s[1] for s in drawn}) > 10
    ratio = Resize(img_scale=(1024, 1024), ratio_range=(0.1, 2.0))
    for _ in range(20):
        out = ratio(_results(img.copy()))
        r = out["scale"][0] / 1024
        assert 0.1 - 1e-3 <= r < 2.0 and out["scale"][0] == out["scale"][1]
        assert max(out["img_shape"][:2]) == int(640 * min(out["scale"][0] / 640, out["scale"][1] / 480) + 0.5)
    fixed = Resize(img_scale=(300, 200), keep_ratio=False)(_results(img.copy(), boxes=np.array([[0, 0, 640, 480.0]],
                                                                                                   np.float32)))
    assert fixed["img_shape"] == (200, 300, 3)
    np.testing.assert_allclose(fixed["gt_bboxes"], [[0, 0, 300, 200]])
    first = Resize(img_scale=(1333, 800))(_results(img.copy()))
    with pytest.raises(ValueError, match="override=True"):
        Resize(img_scale=(600, 400))(first)
    again = Resize(img_scale=(600, 400), override=True)(first)
    assert again["img_shape"] == (400, 534, 3)  # int(1067 * 0.5 + 0.5)
    np.testing.assert_allclose(again["scale_factor"], [534 / 1067, 0.5, 534 / 1067, 0.5], rtol=1e-6)
    with pytest.raises(ValueError, match="exactly one img_scale"):
        Resize(img_scale=[(1, 2), (3, 4)], ratio_range=(0.5, 1.5))


def test_resize_scale_factor_mode_and_clip():
    img = np.zeros((100, 200, 3), np.uint8)
    res = _results(img, boxes=np.array([[150, 50, 210, 120]], np.float32))
    res["scale_factor"] = 0.5
    out = Resize(keep_ratio=True)(res)
    assert out["img_shape"] == (50, 100, 3)
    np.testing.assert_allclose(out["gt_bboxes"], [[75, 25, 100, 50]])  # clipped to the image


def test_random_flip_directions_and_ratios():
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    boxes = np.array([[0, 0, 1, 2]], np.float32)
    out = RandomFlip(flip_ratio=1.0, direction="diagonal")(_results(img.copy(), boxes=boxes.copy()))
    assert out["flip"] and out["flip_direction"] == "diagonal"
    np.testing.assert_array_equal(out["img"], img[::-1, ::-1])
    np.testing.assert_array_equal(out["gt_bboxes"], [[2, 0, 3, 2]])
    np.random.seed(0)
    flipper = RandomFlip(flip_ratio=[0.3, 0.5], direction=["horizontal", "vertical"])
    dirs = [flipper(_results(img.copy()))["flip_direction"] for _ in range(2000)]
    assert abs(dirs.count("horizontal") / 2000 - 0.3) < 0.04 and abs(dirs.count("vertical") / 2000 - 0.5) < 0.04
    assert abs(dirs.count(None) / 2000 - 0.2) < 0.04
    never = RandomFlip()(_results(img.copy()))
    assert never["flip"] is False and never["flip_direction"] is None
    with pytest.raises(ValueError, match="sum to <= 1"):
        RandomFlip(flip_ratio=[0.7, 0.7], direction=["horizontal", "vertical"])


def test_pad_variants():
    img = np.ones((30, 50, 3), np.float32)
    masks = BitmapMasks(np.ones((1, 30, 50), np.uint8), 30, 50)
    out = Pad(size_divisor=32)(_results(img.copy(), masks=masks))
    assert out["pad_shape"] == (32, 64, 3) and out["gt_masks"].masks.shape == (1, 32, 64)
    assert out["img"][30:].sum() == 0 and out["pad_size_divisor"] == 32
    out = Pad(size=(64, 80), pad_val=dict(img=7, masks=0, seg=255))(_results(img.copy()))
    assert out["img"].shape == (64, 80, 3) and out["img"][40, 60, 0] == 7
    out = Pad(pad_to_square=True)(_results(img.copy()))
    assert out["img"].shape == (50, 50, 3)
    out = Pad(size=(16, 16))(_results(img.copy()))  # larger images are not cropped (mmcv impad)
    assert out["img"].shape == (30, 50, 3)
    with pytest.raises(ValueError, match="exactly one of size and size_divisor"):
        Pad(size=(10, 10), size_divisor=32)


def test_multiscale_flip_aug_tta_metadata():
    pipe = Compose([
        dict(type="LoadImageFromFile"),
        dict(type="MultiScaleFlipAug", img_scale=[(1333, 800), (666, 400)], flip=True,
             flip_direction=["horizontal", "vertical"],
             transforms=[dict(type="Resize", keep_ratio=True), dict(type="RandomFlip"), NORM,
                         dict(type="Pad", size_divisor=32), dict(type="ImageToTensor", keys=["img"]),
                         dict(type="Collect", keys=["img"])]),
    ])
    out = pipe(dict(img_info=dict(filename="000000047112.jpg"), img_prefix=str(VAL_DIR)))
    metas = [m.data for m in out["img_metas"]]
    assert [(m["img_shape"][:2], m["flip"], m["flip_direction"]) for m in metas] == [
        ((800, 1067), False, None), ((800, 1067), True, "horizontal"), ((800, 1067), True, "vertical"),
        ((400, 533), False, None), ((400, 533), True, "horizontal"), ((400, 533), True, "vertical")]
    np.testing.assert_array_equal(out["img"][1][:, :, :1067].numpy(), out["img"][0][:, :, :1067].flip(-1).numpy())
    np.testing.assert_array_equal(out["img"][2][:, :800].numpy(), out["img"][0][:, :800].flip(-2).numpy())
    # a batch of 2 images with 6 augmentations each -> per-aug tensors and metas
    batch = unwrap_batch(collate([out, out], samples_per_gpu=2))
    assert len(batch["img"]) == 6 and batch["img"][3].shape == (2, 3, 416, 544)
    assert len(batch["img_metas"]) == 6 and batch["img_metas"][1][1]["flip_direction"] == "horizontal"


def test_collate_pads_and_unwrap_batch():
    samples = []
    for h, w in ((5, 7), (6, 4)):
        samples.append(dict(img=DataContainer(torch.ones(3, h, w), stack=True),
                            img_metas=DataContainer(dict(h=h), cpu_only=True),
                            gt_bboxes=DataContainer(torch.zeros(h, 4)),
                            gt_masks=DataContainer(BitmapMasks(np.zeros((1, h, w), np.uint8), h, w), cpu_only=True)))
    batch = collate(samples, samples_per_gpu=2)
    assert isinstance(batch["img"], DataContainer) and batch["img"].data[0].shape == (2, 3, 6, 7)
    data = unwrap_batch(batch, "cpu")
    assert data["img"].shape == (2, 3, 6, 7)
    assert data["img"][0, :, 5:].sum() == 0 and data["img"][1, :, :, 4:].sum() == 0
    assert data["img"][0, :, :5, :7].min() == 1
    assert data["img_metas"] == [dict(h=5), dict(h=6)]
    assert [b.shape[0] for b in data["gt_bboxes"]] == [5, 6]
    assert all(isinstance(m, BitmapMasks) for m in data["gt_masks"])
    # two chunks (non-distributed multi-GPU loader) merge into one padded batch
    two = unwrap_batch(collate(samples, samples_per_gpu=1))
    assert two["img"].shape == (2, 3, 6, 7) and torch.equal(two["img"], data["img"])


def test_replace_image_to_tensor_and_loading_pipeline(golden):
    _, cfg = golden
    with pytest.warns(UserWarning, match="DefaultFormatBundle"):
        replaced = replace_ImageToTensor(cfg["test_pipeline"])
    assert replaced[1]["transforms"][4] == {"type": "DefaultFormatBundle"}
    assert cfg["test_pipeline"][1]["transforms"][4]["type"] == "ImageToTensor"  # input untouched
    assert [c["type"] for c in get_loading_pipeline(cfg["train_case_pipeline"])] == ["LoadImageFromFile",
                                                                                     "LoadAnnotations"]


def test_compose_errors_name_the_problem():
    with pytest.raises(KeyError, match="'Resise' is not registered in the pipeline registry; did you mean 'Resize'"):
        Compose([dict(type="Resise")])
    with pytest.raises(TypeError, match="config dict or a callable"):
        Compose([42])
    with pytest.raises(KeyError, match="meta keys \\['flip'\\] are not in the results"):
        Compose([dict(type="Collect", keys=["img"], meta_keys=("flip",))])(dict(img=1))
