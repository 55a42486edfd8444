"""CocoDataset on real data (coco_tiny, fruits_nuts): parsing, crowd handling, classes, filtering, aspect
groups; dataset wrappers; build_dataset / build_dataloader and the samplers."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mmdet.core.mask import BitmapMasks, PolygonMasks
from mmdet.datasets import (ClassBalancedDataset, CocoDataset, ConcatDataset, DistributedGroupSampler,
                            DistributedSampler, GroupSampler, RepeatDataset, build_dataloader, build_dataset,
                            unwrap_batch)

ROOT = Path(__file__).resolve().parents[1]
COCO_ANN = ROOT / "data" / "coco_tiny" / "annotations" / "instances_val2017.json"
COCO_IMG = ROOT / "data" / "coco_tiny" / "val2017"
FRUIT = ROOT / "data" / "fruits_nuts"
FRUIT_CLASSES = ("date", "fig", "hazelnut")
SMALL_TRAIN = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations", with_bbox=True, with_mask=True),
    dict(type="Resize", img_scale=(200, 150), keep_ratio=True),
    dict(type="RandomFlip", flip_ratio=0.5),
    dict(type="Normalize", mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True),
    dict(type="Pad", size_divisor=32),
    dict(type="DefaultFormatBundle"),
    dict(type="Collect", keys=["img", "gt_bboxes", "gt_labels", "gt_masks"]),
]


@pytest.fixture(scope="module")
def coco_train():
    return CocoDataset(str(COCO_ANN), SMALL_TRAIN, img_prefix=str(COCO_IMG))


def test_coco_tiny_loading_and_labels(coco_train):
    raw = json.loads(COCO_ANN.read_text())
    assert len(coco_train) == 80 and len(coco_train.CLASSES) == 80
    assert coco_train.cat_ids == sorted(c["id"] for c in raw["categories"])  # COCO: label order = id order
    assert coco_train.cat2label[1] == 0 and coco_train.cat2label[90] == 79
    assert coco_train.img_ids == [i["id"] for i in raw["images"]]
    assert coco_train.ann_faults == []
    assert coco_train.flag.tolist() == [int(i["width"] / i["height"] > 1) for i in raw["images"]]


def test_crowd_annotations_become_ignore_boxes(coco_train):
    idx = coco_train.img_ids.index(184324)
    ann = coco_train.get_ann_info(idx)
    raw = [a for a in coco_train.coco.dataset["annotations"] if a["image_id"] == 184324]
    assert len(ann["bboxes"]) == sum(1 for a in raw if not a["iscrowd"]) == 31
    assert ann["bboxes_ignore"].shape == (1, 4) and len(ann["masks"]) == 31
    crowd = next(a for a in raw if a["iscrowd"])
    x, y, w, h = crowd["bbox"]
    np.testing.assert_allclose(ann["bboxes_ignore"][0], [x, y, x + w, y + h], rtol=1e-6)
    assert ann["bboxes"].dtype == np.float32 and ann["labels"].dtype == np.int64
    np.random.seed(0)
    sample = coco_train[idx]
    assert "gt_bboxes_ignore" not in sample  # Collect keeps only the configured keys


def test_training_sample_structure(coco_train):
    np.random.seed(0)
    sample = coco_train[0]
    assert set(sample) == {"img", "img_metas", "gt_bboxes", "gt_labels", "gt_masks"}
    assert sample["img"].stack and sample["img"].data.dtype == torch.float32 and sample["img"].data.shape[0] == 3
    assert sample["img_metas"].cpu_only and sample["gt_masks"].cpu_only
    assert isinstance(sample["gt_masks"].data, BitmapMasks)
    n = sample["gt_bboxes"].data.shape[0]
    assert sample["gt_labels"].data.shape == (n,) and len(sample["gt_masks"].data) == n
    meta = sample["img_metas"].data
    assert meta["pad_shape"][0] % 32 == 0 and meta["pad_shape"][1] % 32 == 0
    assert sample["gt_masks"].data.masks.shape[1:] == meta["pad_shape"][:2]


def test_classes_subset_tuple_and_text_file(tmp_path):
    subset = CocoDataset(str(COCO_ANN), SMALL_TRAIN, img_prefix=str(COCO_IMG), classes=("dog", "person"))
    assert subset.cat_ids == [18, 1]  # label i is CLASSES[i]
    labels = np.concatenate([subset.get_ann_info(i)["labels"] for i in range(len(subset))])
    assert set(labels.tolist()) == {0, 1}
    raw = json.loads(COCO_ANN.read_text())
    with_sel = {a["image_id"] for a in raw["annotations"] if a["category_id"] in (1, 18)}
    assert len(subset) == len(with_sel)  # filter_empty_gt keeps only images with a selected class
    txt = tmp_path / "classes.txt"
    txt.write_text("dog\nperson\n")
    from_file = CocoDataset(str(COCO_ANN), SMALL_TRAIN, img_prefix=str(COCO_IMG), classes=str(txt))
    assert list(from_file.CLASSES) == ["dog", "person"] and from_file.cat_ids == [18, 1]
    keep_all = CocoDataset(str(COCO_ANN), SMALL_TRAIN, img_prefix=str(COCO_IMG), classes=("dog",),
                           filter_empty_gt=False)
    assert len(keep_all) == 80
    with pytest.raises(ValueError, match=r"classes \['dragon'\] are not categories of"):
        CocoDataset(str(COCO_ANN), SMALL_TRAIN, classes=("dragon",))


def test_fruits_nuts_split_and_polygon_masks():
    train = CocoDataset("train.json", SMALL_TRAIN, data_root=str(FRUIT), img_prefix="images", classes=FRUIT_CLASSES)
    val = CocoDataset("val.json", SMALL_TRAIN, data_root=str(FRUIT), img_prefix="images", classes=FRUIT_CLASSES,
                      test_mode=True)
    full = json.loads((FRUIT / "trainval.json").read_text())
    assert len(train) == 14 and len(val) == 4
    assert set(train.img_ids) | set(val.img_ids) == {i["id"] for i in full["images"]}
    assert not set(train.img_ids) & set(val.img_ids)
    val_labels = np.concatenate([val.get_ann_info(i)["labels"] for i in range(4)])
    assert set(val_labels.tolist()) == {0, 1, 2}
    poly_pipe = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_mask=True, poly2mask=False)]
    polys = CocoDataset("train.json", poly_pipe, data_root=str(FRUIT), img_prefix="images", classes=FRUIT_CLASSES)
    out = polys[0]
    assert isinstance(out["gt_masks"], PolygonMasks) and len(out["gt_masks"]) == len(out["gt_bboxes"])


def test_test_mode_keeps_everything_and_has_no_flags():
    ds = CocoDataset(str(COCO_ANN), [dict(type="LoadImageFromFile")], img_prefix=str(COCO_IMG), test_mode=True)
    assert len(ds) == 80 and not hasattr(ds, "flag")
    assert ds[0]["img"].shape[2] == 3


def test_wrappers_repeat_concat_classbalanced(coco_train):
    rep = RepeatDataset(coco_train, 3)
    assert len(rep) == 240 and rep.flag.tolist() == coco_train.flag.tolist() * 3
    assert rep.get_cat_ids(81) == coco_train.get_cat_ids(1)
    cat = ConcatDataset([coco_train, rep])
    assert len(cat) == 320 and cat.flag.shape == (320,)
    assert cat.get_ann_info(85)["bboxes"].shape == coco_train.get_ann_info(5)["bboxes"].shape
    assert cat.get_cat_ids(-1) == coco_train.get_cat_ids(79)
    with pytest.raises(NotImplementedError, match="separate_eval=True"):
        ConcatDataset([coco_train, coco_train], separate_eval=False)
    cb = ClassBalancedDataset(coco_train, oversample_thr=0.1)
    assert len(cb) > len(coco_train) and len(cb.flag) == len(cb)
    counts = np.bincount(cb.repeat_indices, minlength=80)
    person_only = [i for i in range(80) if set(coco_train.get_cat_ids(i)) == {1}]
    assert all(counts[i] == 1 for i in person_only)  # person is in most images: never oversampled
    assert counts.max() > 1


def test_build_dataset_configs():
    base = dict(type="CocoDataset", ann_file=str(COCO_ANN), img_prefix=str(COCO_IMG), pipeline=SMALL_TRAIN)
    rep = build_dataset(dict(type="RepeatDataset", times=2, dataset=base))
    assert isinstance(rep, RepeatDataset) and len(rep) == 160
    cat = build_dataset([base, base])
    assert isinstance(cat, ConcatDataset) and len(cat) == 160
    multi = build_dataset(dict(base, ann_file=[str(FRUIT / "train.json"), str(FRUIT / "val.json")],
                               img_prefix=[str(FRUIT / "images")] * 2, classes=FRUIT_CLASSES))
    assert [len(d) for d in multi.datasets] == [14, 4]
    test = build_dataset(base, default_args=dict(test_mode=True))
    assert test.test_mode and len(test) == 80
    with pytest.raises(KeyError, match="did you mean 'CocoDataset'"):
        build_dataset(dict(base, type="CocoDatset"))


def test_group_sampler_batches_are_single_group(coco_train):
    np.random.seed(3)
    sampler = GroupSampler(coco_train, samples_per_gpu=4)
    idx = list(sampler)
    sizes = np.bincount(coco_train.flag)
    assert len(idx) == len(sampler) == sum(int(np.ceil(s / 4)) * 4 for s in sizes)
    assert set(idx) == set(range(80))
    for b in range(0, len(idx), 4):
        assert len({int(coco_train.flag[i]) for i in idx[b:b + 4]}) == 1


def test_distributed_group_sampler_partition(coco_train):
    per_rank = []
    for rank in range(3):
        s = DistributedGroupSampler(coco_train, samples_per_gpu=2, num_replicas=3, rank=rank, seed=7)
        s.set_epoch(1)
        per_rank.append(list(s))
        assert len(per_rank[-1]) == len(s)
        for b in range(0, len(per_rank[-1]), 2):
            assert len({int(coco_train.flag[i]) for i in per_rank[-1][b:b + 2]}) == 1
    assert set().union(*map(set, per_rank)) == set(range(80))
    again = DistributedGroupSampler(coco_train, samples_per_gpu=2, num_replicas=3, rank=0, seed=7)
    again.set_epoch(1)
    assert list(again) == per_rank[0]
    again.set_epoch(2)
    assert list(again) != per_rank[0]
    seq = [list(DistributedSampler(coco_train, num_replicas=3, rank=r, shuffle=False)) for r in range(3)]
    assert seq[0][:3] == [0, 3, 6] and sum(len(s) for s in seq) == 81  # padded by repetition


def test_build_dataloader_batches_and_worker_seeding(coco_train):
    loader = build_dataloader(coco_train, samples_per_gpu=2, workers_per_gpu=1, seed=5, persistent_workers=True)
    assert isinstance(loader.sampler, GroupSampler) and loader.batch_size == 2
    batch = next(iter(loader))
    data = unwrap_batch(batch, "cpu")
    assert data["img"].shape[0] == 2 and len(data["img_metas"]) == 2 and len(data["gt_masks"]) == 2
    assert data["img"].shape[2] % 32 == 0
    flips = []
    for _ in range(2):
        batch = next(iter(build_dataloader(coco_train, 2, 1, seed=5, shuffle=False)))
        flips.append([m["flip"] for m in unwrap_batch(batch)["img_metas"]])
    assert flips[0] == flips[1]  # worker RNG seeded from `seed`
    test_ds = CocoDataset(str(COCO_ANN), [dict(type="LoadImageFromFile")], img_prefix=str(COCO_IMG), test_mode=True)
    assert build_dataloader(test_ds, 1, 0, shuffle=False).sampler.__class__.__name__ == "SequentialSampler"
    iter_loader = build_dataloader(coco_train, 2, 0, runner_type="IterBasedRunner", seed=0)
    it = iter(iter_loader.batch_sampler)
    for _ in range(50):  # infinite, grouped
        b = next(it)
        assert len(b) == 2 and len({int(coco_train.flag[i]) for i in b}) == 1


def test_repr(coco_train):
    assert repr(coco_train).startswith("Train dataset CocoDataset with 80 images, 80 classes")


def test_cat2imgs_is_keyed_by_label_for_coco_category_ids(coco_train):
    # COCO category ids go up to 90; labels are 0..79. Every image appears under each label it contains.
    cat2imgs = coco_train.get_cat2imgs()
    assert sorted(cat2imgs) == list(range(80))
    for idx in (0, 5, len(coco_train) - 1):
        for label in set(coco_train.get_ann_info(idx)["labels"].tolist()):
            assert idx in cat2imgs[label]
    assert max(max(coco_train.get_cat_ids(i)) for i in range(len(coco_train))) > 80   # really COCO ids
