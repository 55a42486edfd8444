"""The embedded end-to-end demo: train Mask R-CNN on fruits_nuts, evaluate, draw predictions.

Runs the same commands a user would (printed as they run):

1. ``tools/train.py`` on the 14 training photos (CPU is fine, about 10 minutes on 2 cores),
2. ``tools/test.py --eval bbox segm`` on the 4 held-out photos (prints bbox / segm mAP),
3. draws the predictions on a held-out photo -> ``<work-dir>/predictions.png``,
4. plots the loss and mAP curves from the JSON log -> ``<work-dir>/curves.png``.
"""
from __future__ import annotations

import argparse
import glob
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "configs" / "fruits_nuts" / "mask_rcnn_r18_fpn_fruits_nuts.py"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help="config to train (default: the fruits_nuts demo)")
    p.add_argument("--work-dir", default="work_dirs/fruits_nuts_demo", help="where logs, checkpoints, pictures go")
    p.add_argument("--image", default=str(ROOT / "data" / "fruits_nuts" / "images" / "14.jpg"),
                   help="held-out image to draw predictions on")
    p.add_argument("--score-thr", type=float, default=0.5, help="draw detections scoring at least this")
    p.add_argument("--cfg-options", nargs="+", default=[], help="passed to tools/train.py and tools/test.py")
    return p.parse_args(argv)


def run(cmd: list[str]) -> None:
    print("$ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def main(argv=None) -> None:
    args = parse_args(argv)
    work_dir = Path(args.work_dir)
    if not work_dir.is_absolute():
        work_dir = ROOT / work_dir
    options = ["--cfg-options", *args.cfg_options] if args.cfg_options else []
    py = sys.executable
    run([py, "tools/train.py", args.config, "--work-dir", str(work_dir), "--seed", "0", "--deterministic",
         *options])
    checkpoint = work_dir / "latest.pth"
    run([py, "tools/test.py", args.config, str(checkpoint), "--eval", "bbox", "segm", "--work-dir", str(work_dir),
         "--eval-options", f"jsonfile_prefix={work_dir / 'val_results'}", *options])

    from mmdet.apis import inference_detector, init_detector
    model = init_detector(args.config, str(checkpoint), device="cpu")
    result = inference_detector(model, args.image)
    out_png = work_dir / "predictions.png"
    model.show_result(args.image, result, score_thr=args.score_thr, out_file=str(out_png))
    print(f"wrote {out_png}")

    logs = sorted(glob.glob(str(work_dir / "*.log.json")))
    if logs:
        run([py, "tools/analysis_tools/analyze_logs.py", "plot_curve", logs[-1], "--keys", "loss", "bbox_mAP",
             "segm_mAP", "--out", str(work_dir / "curves.png")])
    evals = sorted(glob.glob(str(work_dir / "eval_*.json")))
    if evals:
        metrics = json.loads(Path(evals[-1]).read_text()).get("metric", {})
        print("held-out mAP: " + ", ".join(f"{k}={metrics[k]}" for k in ("bbox_mAP", "segm_mAP") if k in metrics))


if __name__ == "__main__":
    main()
