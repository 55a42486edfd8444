"""Overfitting two real photos proves that losses, targets, box/mask decoding and COCO evaluation agree.

Mask R-CNN (the fruits_nuts demo model, from scratch) trains 200 iterations on two fruits_nuts photos (18
instances) through ``tools/train.py`` and is evaluated on the same photos: bbox mAP must reach 0.9 and segm mAP
0.8. About 3-4 minutes on 2 CPU cores, hence ``slow`` (run with ``pytest -m slow``).
"""
import glob
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ("0.jpg", "10.jpg")

OVERFIT_CONFIG = """
_base_ = ['{root}/configs/fruits_nuts/mask_rcnn_r18_fpn_fruits_nuts.py']
img_norm_cfg = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', img_scale=(512, 384), keep_ratio=True),
    dict(type='RandomFlip', flip_ratio=0.0),
    dict(type='Normalize', **img_norm_cfg),
    dict(type='Pad', size_divisor=32),
    dict(type='DefaultFormatBundle'),
    dict(type='Collect', keys=['img', 'gt_bboxes', 'gt_labels', 'gt_masks']),
]
data = dict(
    train=dict(times=20, dataset=dict(ann_file='{ann}', pipeline=train_pipeline)),
    val=dict(ann_file='{ann}'),
    test=dict(ann_file='{ann}'))
optimizer = dict(lr=1e-3)
lr_config = dict(warmup_iters=20, step=[8])
runner = dict(max_epochs=10)
evaluation = dict(interval=10)
checkpoint_config = dict(interval=10)
log_config = dict(interval=10)
"""


@pytest.mark.slow
def test_overfit_two_photos_reaches_high_map(tmp_path):
    full = json.loads((ROOT / "data" / "fruits_nuts" / "train.json").read_text())
    images = [im for im in full["images"] if im["file_name"] in PHOTOS]
    ids = {im["id"] for im in images}
    subset = dict(full, images=images, annotations=[a for a in full["annotations"] if a["image_id"] in ids])
    ann = tmp_path / "two_photos.json"
    ann.write_text(json.dumps(subset))
    config = tmp_path / "overfit.py"
    config.write_text(OVERFIT_CONFIG.format(root=ROOT, ann=ann))

    r = subprocess.run([sys.executable, "tools/train.py", str(config), "--work-dir", str(tmp_path / "run"),
                        "--seed", "0"], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    log = glob.glob(str(tmp_path / "run" / "*.log.json"))[0]
    records = [json.loads(line) for line in Path(log).read_text().splitlines()[1:]]
    losses = [rec["loss"] for rec in records if rec["mode"] == "train"]
    assert losses[-1] < 0.5 * losses[0]
    val = [rec for rec in records if rec["mode"] == "val"][-1]
    assert val["bbox_mAP"] >= 0.9, val
    assert val["segm_mAP"] >= 0.8, val
