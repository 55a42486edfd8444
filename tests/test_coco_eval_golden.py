"""CocoDataset.evaluate / results2json / encode_mask_results against real mmdetection 2.28.2 outputs
(tests/data/golden/detectors: results of 2 coco_tiny val images, the eval dicts and the result JSON files)."""
import json
import logging
import re
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch

from mmdet.core.mask import encode_mask_results
from mmdet.datasets import CocoDataset
from mmdet.datasets.coco import COCO_METRIC_INDEX

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).resolve().parent / "data" / "golden" / "detectors"


@pytest.fixture(scope="module")
def golden():
    case = torch.load(GOLDEN / "mask_rcnn_r50_fpn_infer.pt", weights_only=True)
    cfg = json.loads((GOLDEN / "mask_rcnn_r50_fpn_config.json").read_text())
    dataset = CocoDataset(str(GOLDEN / "mask_rcnn_r50_fpn_gt_subset.json"), cfg["test_pipeline"],
                          img_prefix=str(ROOT / "data" / "coco_tiny" / "val2017"), test_mode=True)
    results = [([b.numpy() for b in im["bbox_results"]], im["segm_results_rle"]) for im in case["images"]]
    expected = json.loads((GOLDEN / "mask_rcnn_r50_fpn_eval.json").read_text())
    return dataset, results, expected, case


def _results_from_json():
    """Rebuild per-image (bbox_results, segm_results) from the golden .bbox.json/.segm.json files."""
    bbox_json = json.loads((GOLDEN / "mask_rcnn_r50_fpn_results.bbox.json").read_text())
    segm_json = json.loads((GOLDEN / "mask_rcnn_r50_fpn_results.segm.json").read_text())
    gt = json.loads((GOLDEN / "mask_rcnn_r50_fpn_gt_subset.json").read_text())
    cat_ids = [c["id"] for c in gt["categories"]]
    results = []
    for img in gt["images"]:
        boxes = [[] for _ in cat_ids]
        segms = [[] for _ in cat_ids]
        for b, s in zip(bbox_json, segm_json):
            if b["image_id"] != img["id"]:
                continue
            x, y, w, h = b["bbox"]
            label = cat_ids.index(b["category_id"])
            boxes[label].append([x, y, x + w, y + h, b["score"]])
            segms[label].append(s["segmentation"])
        results.append(([np.array(bx, dtype=np.float32).reshape(-1, 5) for bx in boxes], segms))
    return results


def test_image_order_and_ids(golden):
    dataset, _, expected, _ = golden
    assert dataset.img_ids == expected["img_ids"]
    assert [d["filename"] for d in dataset.data_infos] == expected["image_files"]


BACKENDS = pytest.mark.parametrize("backend", ["pycocotools", "faster_coco_eval"])


@BACKENDS
def test_evaluate_default_matches_mmdet(golden, backend):
    dataset, results, expected, _ = golden
    out = dataset.evaluate(results, metric=["bbox", "segm"], logger="silent", cocoeval_backend=backend)
    assert dict(out) == expected["evaluate_default"]
    assert list(out) == list(expected["evaluate_default"])


@BACKENDS
def test_evaluate_all_metric_items_matches_mmdet(golden, backend):
    dataset, results, expected, _ = golden
    out = dataset.evaluate(results, metric=["bbox", "segm"], logger="silent", metric_items=list(COCO_METRIC_INDEX),
                           cocoeval_backend=backend)
    assert dict(out) == expected["evaluate_all_metric_items"]


def test_evaluate_from_result_json_files(golden):
    dataset, _, expected, _ = golden
    out = dataset.evaluate(_results_from_json(), metric=["bbox", "segm"], logger="silent")
    assert dict(out) == expected["evaluate_default"]


@BACKENDS
def test_classwise_table_is_logged(golden, backend):
    dataset, results, expected, _ = golden
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("test_coco_eval_golden")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        out = dataset.evaluate(results, metric=["bbox"], logger=logger, classwise=True, cocoeval_backend=backend)
    finally:
        logger.removeHandler(handler)
    assert dict(out) == {k: v for k, v in expected["evaluate_classwise"].items() if k.startswith("bbox")}
    table = next(r.getMessage() for r in records if "| category" in r.getMessage())
    assert re.search(r"\| person +\| 0\.\d{3} \|", table) and re.search(r"\| bicycle +\| nan +\|", table)
    assert table.count("category") == 3  # 6 columns: 3 (category, AP) pairs
    assert len(table.strip().splitlines()) == 4 + 27  # 3 rules + header + ceil(80 / 3) rows


def test_results2json_reproduces_golden_files(golden, tmp_path):
    dataset, results, _, _ = golden
    files = dataset.results2json(results, str(tmp_path / "res"))
    assert set(files) == {"bbox", "proposal", "segm"}
    assert Path(files["bbox"]).read_bytes() == (GOLDEN / "mask_rcnn_r50_fpn_results.bbox.json").read_bytes()
    assert Path(files["segm"]).read_bytes() == (GOLDEN / "mask_rcnn_r50_fpn_results.segm.json").read_bytes()


def test_format_results_keeps_files_with_prefix(golden, tmp_path):
    dataset, results, expected, _ = golden
    out = dataset.evaluate(results, metric="bbox", logger="silent", jsonfile_prefix=str(tmp_path / "kept"))
    assert (tmp_path / "kept.bbox.json").is_file() and (tmp_path / "kept.segm.json").is_file()
    assert out["bbox_mAP"] == expected["evaluate_default"]["bbox_mAP"]


def test_encode_mask_results_reproduces_golden_rle(golden):
    _, _, _, case = golden
    rles = case["images"][0]["segm_results_rle"]
    masks = [[mask_utils.decode(r).astype(bool) for r in per_class] for per_class in rles]
    encoded = encode_mask_results(masks)
    assert len(encoded) == 80
    for got_cls, ref_cls in zip(encoded, rles):
        assert [g["counts"].decode() for g in got_cls] == [r["counts"] for r in ref_cls]
        assert [list(g["size"]) for g in got_cls] == [list(r["size"]) for r in ref_cls]
    scores = [np.ones(len(c)) for c in masks]
    enc2, passed = encode_mask_results((masks, scores))
    assert passed is scores and enc2[0][0]["counts"] == encoded[0][0]["counts"]


def test_evaluate_errors(golden):
    dataset, results, _, _ = golden
    with pytest.raises(KeyError, match="metric 'mask' is not supported"):
        dataset.evaluate(results, metric="mask")
    with pytest.raises(KeyError, match="metric item 'AP' is not supported"):
        dataset.evaluate(results, metric="bbox", metric_items=["AP"])
    with pytest.raises(ValueError, match="got 1 results for a dataset of 2 images"):
        dataset.evaluate(results[:1], metric="bbox")


def test_unknown_cocoeval_backend_is_refused(golden):
    dataset, results, _, _ = golden
    with pytest.raises(ValueError, match=r"cocoeval_backend must be one of .*'pycocotools'.* got 'fast'"):
        dataset.evaluate(results, metric="bbox", cocoeval_backend="fast")


def test_proposal_metrics(golden):
    dataset, results, _, _ = golden
    proposals = [np.concatenate([b for b in bbox_res if len(b)]) for bbox_res, _ in results]
    proposals = [p[np.argsort(-p[:, 4])] for p in proposals]
    coco_ar = dataset.evaluate(proposals, metric="proposal", logger="silent")
    reference = dataset.evaluate(proposals, metric="proposal", logger="silent", cocoeval_backend="pycocotools")
    assert coco_ar == reference  # 'auto' (faster_coco_eval) gives pycocotools' recall
    assert list(coco_ar) == ["AR@100", "AR@300", "AR@1000", "AR_s@1000", "AR_m@1000", "AR_l@1000"]
    assert 0 < coco_ar["AR@100"] <= 1
    fast = dataset.evaluate(proposals, metric="proposal_fast", logger="silent", proposal_nums=(1, 10, 100))
    assert list(fast) == ["AR@1", "AR@10", "AR@100"]
    assert 0 < fast["AR@1"] < fast["AR@10"] <= fast["AR@100"] <= 1
