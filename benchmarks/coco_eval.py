"""COCO evaluation time: ``CocoDataset.evaluate(results, ['bbox', 'segm'])`` vs plain pycocotools.

Data: the coco_tiny val2017 annotations (80 real images, 815 instances) and synthetic detections of
mmdet's result format: per image, every GT instance jittered (box and mask shifted a few pixels) plus random
false positives, ``--dets`` per image in total, masks RLE-encoded as ``single_gpu_test`` returns them.

Reference ("pycocotools"): the straightforward script a user writes: per-box Python loop to COCO json dicts,
``COCO.loadRes``, ``COCOeval`` evaluate/accumulate/summarize for bbox and segm (bbox removed from segm
predictions, as mmdet 2.12+). Both must give identical ``stats``. If ``faster_coco_eval`` is installed, it is
timed too (same dicts) and its largest ``stats`` difference reported.
"""
from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_utils
from pycocotools.cocoeval import COCOeval

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import base_parser, machine_line, print_result, setup, time_interleaved  # noqa: E402
from mmdet.datasets import CocoDataset  # noqa: E402
from mmdet.datasets.coco import COCO_METRIC_INDEX  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ANN = ROOT / "data" / "coco_tiny" / "annotations" / "instances_val2017.json"


def make_results(dataset: CocoDataset, dets_per_image: int, seed: int = 0) -> list:
    """mmdet-format results: per image (80 lists of (n, 5) float32 boxes, 80 lists of RLE masks)."""
    rng = np.random.RandomState(seed)
    coco = dataset.coco
    results = []
    for img_id in dataset.img_ids:
        info = coco.imgs[img_id]
        h, w = info["height"], info["width"]
        boxes = [[] for _ in dataset.cat_ids]
        masks = [[] for _ in dataset.cat_ids]
        anns = [a for a in coco.imgToAnns[img_id] if not a["iscrowd"]]
        for k in range(dets_per_image):
            if k < len(anns):
                ann = anns[k]
                label = dataset.cat2label[ann["category_id"]]
                dx, dy = rng.randint(-4, 5, 2)
                m = np.roll(coco.annToMask(ann), (dy, dx), axis=(0, 1))
                x, y, bw, bh = ann["bbox"]
                box = [x + dx, y + dy, x + dx + bw, y + dy + bh]
            else:
                label = rng.randint(len(dataset.cat_ids))
                x1, y1 = rng.uniform(0, w - 20), rng.uniform(0, h - 20)
                x2, y2 = x1 + rng.uniform(5, w - x1), y1 + rng.uniform(5, h - y1)
                m = np.zeros((h, w), np.uint8)
                m[int(y1):int(y2), int(x1):int(x2)] = 1
                box = [x1, y1, x2, y2]
            boxes[label].append(box + [rng.uniform(0.05, 1.0)])
            masks[label].append(mask_utils.encode(np.asfortranarray(m[:, :, None]))[0])
        results.append(([np.array(b, np.float32).reshape(-1, 5) for b in boxes], masks))
    return results


def plain_json(dataset: CocoDataset, results: list) -> tuple[list, list]:
    """The straightforward conversion: one dict per detection, Python loops."""
    bbox_json, segm_json = [], []
    for img_id, (det, seg) in zip(dataset.img_ids, results):
        for label, (boxes, rles) in enumerate(zip(det, seg)):
            for box, rle in zip(boxes, rles):
                b = [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])]
                entry = dict(image_id=img_id, bbox=b, score=float(box[4]), category_id=dataset.cat_ids[label])
                bbox_json.append(entry)
                segm = dict(rle, counts=rle["counts"].decode() if isinstance(rle["counts"], bytes) else rle["counts"])
                segm_json.append(dict(image_id=img_id, score=float(box[4]), category_id=dataset.cat_ids[label],
                                      segmentation=segm))
    return bbox_json, segm_json


def run_cocoeval(gt, bbox_json, segm_json, eval_cls=COCOeval) -> dict[str, np.ndarray]:
    stats = {}
    with contextlib.redirect_stdout(io.StringIO()):
        for iou_type, preds in (("bbox", bbox_json), ("segm", segm_json)):
            dt = gt.loadRes([dict(p) for p in preds])
            ev = eval_cls(gt, dt, iou_type)
            ev.params.maxDets = [100, 300, 1000]
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            stats[iou_type] = np.asarray(ev.stats[:12])
    return stats


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--dets", type=int, default=None, help="detections per image (default 30 quick, 100 full)")
    args = parser.parse_args()
    setup(args)
    reps = args.reps or (3 if args.quick else 5)
    dets = args.dets or (30 if args.quick else 100)
    print(machine_line())
    dataset = CocoDataset(str(ANN), [], test_mode=True)
    results = make_results(dataset, dets)
    gt = dataset.coco
    print(f"{len(results)} images, {dets} detections per image, {len(gt.anns)} GT instances")

    ours_stats = {}

    def ours():
        out = dataset.evaluate(results, metric=["bbox", "segm"], logger="silent", metric_items=list(COCO_METRIC_INDEX))
        ours_stats.update(out)

    def reference():
        bbox_json, segm_json = plain_json(dataset, results)
        return run_cocoeval(gt, bbox_json, segm_json)

    candidates = {"ours": ours, "pycocotools": reference}
    fast = None
    try:
        from faster_coco_eval import COCOeval_faster

        def fast():
            bbox_json, segm_json = plain_json(dataset, results)
            return run_cocoeval(gt, bbox_json, segm_json, eval_cls=COCOeval_faster)

        candidates["faster_coco_eval"] = fast
    except ImportError:
        print("faster_coco_eval not installed: skipped")

    ref_stats = reference()
    ours()
    for iou_type in ("bbox", "segm"):
        expected = [float(f"{v:.4f}") for v in ref_stats[iou_type]]
        got = [ours_stats[f"{iou_type}_{k}"] for k in COCO_METRIC_INDEX]
        assert got == expected, f"{iou_type}: ours {got} != pycocotools {expected}"
    print(f"reported AP identical (all 12 rounded values of bbox and segm): bbox mAP {ours_stats['bbox_mAP']}, segm mAP {ours_stats['segm_mAP']}")
    fast_diff = None
    if fast is not None:
        fast_stats = fast()
        fast_diff = max(float(np.abs(fast_stats[t] - ref_stats[t]).max()) for t in ("bbox", "segm"))
        print(f"faster_coco_eval max |stats - pycocotools stats| = {fast_diff:.3g}")

    times = time_interleaved(candidates, reps=reps, warmup=0)
    for name, t in times.items():
        print(f"{name:>18}: {t * 1000:8.1f} ms")
    values = dict(speedup_vs_pycocotools=times["pycocotools"] / times["ours"], ours_ms=times["ours"] * 1000,
                  pycocotools_ms=times["pycocotools"] * 1000, reported_ap_identical=1)
    if fast is not None:
        values.update(faster_coco_eval_ms=times["faster_coco_eval"] * 1000,
                      faster_coco_eval_speedup_vs_pycocotools=times["pycocotools"] / times["faster_coco_eval"],
                      faster_coco_eval_max_stat_diff=f"{fast_diff:.1e}")
    print_result(**values)


if __name__ == "__main__":
    main()
