"""``tools/test.py --eval bbox segm`` on mmdetection 2.28's golden Mask R-CNN reproduces its COCO evaluation.

The golden weights are written as an mmcv-layout checkpoint; the stock R50-FPN config is run unchanged (only the
test annotation file is pointed at the golden 2-image subset of coco_tiny val2017). This exercises the whole user
path: config -> dataset -> pipeline -> checkpoint loading -> detector -> result encoding -> COCO evaluation.
"""
import json
import pickle
import subprocess
import sys
from pathlib import Path

import torch

from golden_detector import GOLDEN, q4_state_dict

ROOT = Path(__file__).resolve().parents[1]


def test_tools_test_reproduces_golden_coco_eval(tmp_path):
    weights = torch.load(GOLDEN / "mask_rcnn_r50_fpn_weights_q4.pt", map_location="cpu", weights_only=True)
    checkpoint = tmp_path / "mask_rcnn_r50_fpn_golden.pth"
    torch.save({"meta": dict(weights["meta"]), "state_dict": q4_state_dict()}, checkpoint)
    cmd = [sys.executable, "tools/test.py", "configs/mask_rcnn/mask_rcnn_r50_fpn_1x_coco.py", str(checkpoint),
           "--eval", "bbox", "segm", "--work-dir", str(tmp_path), "--out", str(tmp_path / "res.pkl"),
           "--show-dir", str(tmp_path / "shows"),
           "--eval-options", f"jsonfile_prefix={tmp_path / 'results'}",
           "--cfg-options", "model.backbone.init_cfg=None",
           f"data.test.ann_file={GOLDEN / 'mask_rcnn_r50_fpn_gt_subset.json'}",
           f"data.test.img_prefix={ROOT / 'data' / 'coco_tiny' / 'val2017'}/"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]

    expected = json.loads((GOLDEN / "mask_rcnn_r50_fpn_eval.json").read_text())["evaluate_default"]
    metric = json.loads(next(tmp_path.glob("eval_*.json")).read_text())["metric"]
    for key, value in expected.items():
        if key.endswith("copypaste"):
            assert metric[key] == value, key
        else:
            assert abs(metric[key] - value) <= 1e-4, (key, metric[key], value)
    # the result files hold the same detections as mmdetection's (same count per image and category)
    ours = json.loads((tmp_path / "results.bbox.json").read_text())
    ref = json.loads((GOLDEN / "mask_rcnn_r50_fpn_results.bbox.json").read_text())
    count = lambda dets: sorted((d["image_id"], d["category_id"]) for d in dets)  # noqa: E731
    assert count(ours) == count(ref)
    segm = json.loads((tmp_path / "results.segm.json").read_text())
    assert len(segm) == len(ours) and isinstance(segm[0]["segmentation"]["counts"], str)
    # --out: the raw per-image results; --show-dir: one drawing per test image
    with open(tmp_path / "res.pkl", "rb") as f:
        results = pickle.load(f)
    assert len(results) == 2 and len(results[0][0]) == 80 and len(results[0][1]) == 80
    shows = sorted(p.name for p in (tmp_path / "shows").rglob("*.jpg")) + \
        sorted(p.name for p in (tmp_path / "shows").rglob("*.png"))
    assert shows and {Path(n).stem for n in shows} == {"000000047112", "000000376322"}
