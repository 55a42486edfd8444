"""End-to-end runs on the embedded real photos through the user-facing tools.

Cascade Mask R-CNN trains one epoch on fruits_nuts with ``tools/train.py``, evaluates bbox + segm on the held-out
images, and ``tools/test.py`` reproduces the evaluation from the saved checkpoint.
"""
import glob
import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASCADE = ROOT / "configs" / "fruits_nuts" / "cascade_mask_rcnn_r18_fpn_fruits_nuts.py"


def _records(work_dir: Path) -> list[dict]:
    logs = glob.glob(str(work_dir / "*.log.json"))
    assert len(logs) == 1, logs
    lines = [json.loads(line) for line in Path(logs[0]).read_text().splitlines() if line.strip()]
    assert "config" in lines[0] and "mode" not in lines[0]          # metadata header first
    return lines[1:]


def test_cascade_trains_one_epoch_and_evaluates_on_fruits_nuts(tmp_path):
    work_dir = tmp_path / "cascade"
    train = [sys.executable, "tools/train.py", str(CASCADE), "--work-dir", str(work_dir), "--seed", "0",
             "--cfg-options", "runner.max_epochs=1", "data.train.times=1", "evaluation.interval=1",
             "log_config.interval=1", "lr_config.warmup_iters=5", "checkpoint_config.interval=1"]
    r = subprocess.run(train, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]

    records = _records(work_dir)
    train_records = [x for x in records if x["mode"] == "train"]
    assert len(train_records) == 7                                   # 14 images / 2 per batch, logged every iter
    stage_keys = [f"s{i}.{k}" for i in range(3) for k in ("loss_cls", "acc", "loss_bbox", "loss_mask")]
    for rec in train_records:
        for key in ["loss_rpn_cls", "loss_rpn_bbox", *stage_keys, "loss"]:
            assert key in rec and math.isfinite(rec[key]), (key, rec)
        stage_sum = sum(rec[k] for k in stage_keys if "loss" in k) + rec["loss_rpn_cls"] + rec["loss_rpn_bbox"]
        assert abs(stage_sum - rec["loss"]) < 2e-3 * max(1.0, rec["loss"])
    val = [x for x in records if x["mode"] == "val"]
    assert len(val) == 1
    for key in ("bbox_mAP", "bbox_mAP_50", "segm_mAP", "segm_mAP_50"):
        assert 0.0 <= val[0][key] <= 1.0
    assert len(val[0]["bbox_mAP_copypaste"].split()) == 6

    test = [sys.executable, "tools/test.py", str(CASCADE), str(work_dir / "latest.pth"), "--eval", "bbox", "segm",
            "--work-dir", str(work_dir)]
    r = subprocess.run(test, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    metric = json.loads(Path(glob.glob(str(work_dir / "eval_*.json"))[0]).read_text())["metric"]
    assert metric["bbox_mAP"] == val[0]["bbox_mAP"] and metric["segm_mAP"] == val[0]["segm_mAP"]
