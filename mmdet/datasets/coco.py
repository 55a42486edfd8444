"""``CocoDataset``: COCO-format instance annotations, COCO result formatting and ``COCOeval`` evaluation
with mmdetection 2.x (2.28) semantics and metric names.

Annotation faults are found once, when the file is loaded: each bad annotation is dropped with a warning
naming the image file, the annotation id and the reason, and the rest of its image is used. Dropped:
a category id missing from ``categories``, a box that is not 4 finite numbers, has zero or negative width or
height, or lies outside the image; a polygon segmentation without any polygon of >= 3 points (single bad
polygons of an otherwise good annotation are ignored with a warning); an RLE whose ``size`` is not the image's
``[height, width]``; a segmentation of unknown type; an annotation of an image id missing from ``images``.
Duplicate image ids or annotation ids are an error naming the ids (and files). Evaluation always uses the
annotation file as it is.
"""
from __future__ import annotations

import contextlib
import io
import itertools
import json
import logging
import math
import os.path as osp
import tempfile
from collections import OrderedDict, defaultdict

import numpy as np
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torchvision.ops import box_iou

from mmdet.registry import DATASETS
from mmdet.utils.logger import get_root_logger, print_log

from .custom import CustomDataset
from .pipelines.loading import valid_polygons

COCOEVAL_BACKENDS = ("auto", "pycocotools", "faster_coco_eval")


def cocoeval_class(backend: str = "auto"):
    """The ``COCOeval`` class of a backend.

    ``'faster_coco_eval'``: ``faster_coco_eval.COCOeval_faster`` (C++ evaluate/accumulate, same API and statistics;
    ``python -m benchmarks.coco_eval --quick``: ``CocoDataset.evaluate`` bbox+segm on coco_tiny 168 ms against
    894 ms for plain pycocotools, 5.3x, identical reported AP, largest stats difference 5.6e-17);
    ``'pycocotools'``: ``pycocotools.cocoeval.COCOeval``; ``'auto'``: the first if installed.
    """
    if backend not in COCOEVAL_BACKENDS:
        raise ValueError(f"cocoeval_backend must be one of {COCOEVAL_BACKENDS}, got {backend!r}")
    if backend != "pycocotools":
        try:
            from faster_coco_eval import COCOeval_faster
            return COCOeval_faster
        except ImportError:
            if backend == "faster_coco_eval":
                raise ImportError("cocoeval_backend='faster_coco_eval' needs the package: pip install faster-coco-eval")
    return COCOeval

COCO_METRIC_INDEX = {"mAP": 0, "mAP_50": 1, "mAP_75": 2, "mAP_s": 3, "mAP_m": 4, "mAP_l": 5, "AR@100": 6,
                     "AR@300": 7, "AR@1000": 8, "AR_s@1000": 9, "AR_m@1000": 10, "AR_l@1000": 11}

#: decimals of the reported metrics (mmdet 2.28.2 rounds to 4; the 2.11 forks printed 3)
EVAL_DECIMALS = 4

#: how many individual annotation warnings are logged before they are summarised
MAX_LOGGED_ANN_FAULTS = 20


def _ascii_table(rows: list[list[str]]) -> str:
    """``terminaltables.AsciiTable``-style table; the first row is the header."""
    widths = [max(len(str(r[c])) if c < len(r) and r[c] is not None else 0 for r in rows)
              for c in range(len(rows[0]))]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def fmt(row):
        cells = [("" if v is None else str(v)) for v in row] + [""] * (len(widths) - len(row))
        return "|" + "|".join(f" {v:<{w}} " for v, w in zip(cells, widths)) + "|"

    return "\n".join([line, fmt(rows[0]), line] + [fmt(r) for r in rows[1:]] + [line])


def _segmentation_fault(segm, height: int, width: int) -> tuple[str | None, str | None]:
    """(reason to drop, reason to warn only) for one segmentation; (None, None) when it is fine or absent."""
    if segm is None or (isinstance(segm, list) and len(segm) == 0):
        return None, None
    if isinstance(segm, list):
        if not all(isinstance(p, (list, tuple, np.ndarray)) for p in segm):
            return "segmentation is a list but not a list of polygons", None
        good = valid_polygons(segm)
        if not good:
            return (f"no polygon has 3 or more points (point counts "
                    f"{[len(p) / 2 for p in segm]})"), None
        if len(good) < len(segm):
            return None, f"{len(segm) - len(good)} of its {len(segm)} polygons have fewer than 3 points (ignored)"
        return None, None
    if isinstance(segm, dict):
        size = segm.get("size")
        if not (isinstance(size, (list, tuple)) and list(size) == [height, width]):
            return f"RLE size {size} does not match the image [height, width] = [{height}, {width}]", None
        if not isinstance(segm.get("counts"), (list, str, bytes)):
            return "RLE 'counts' is neither a list nor a string", None
        return None, None
    return f"segmentation of type {type(segm).__name__} is neither polygons nor RLE", None


@DATASETS.register_module()
class CocoDataset(CustomDataset):
    """COCO instance dataset (mmdetection 2.x ``CocoDataset``); arguments as :class:`CustomDataset`.

    Labels: label ``i`` is the category named ``CLASSES[i]`` (for the 80 COCO classes this is the id order,
    as mmdet). Training samples: non-crowd annotations that pass mmdet's filters (inside the image, area > 0,
    ``w, h >= 1``, selected category) become ``gt_bboxes``/``gt_labels``/masks; crowd ones ``gt_bboxes_ignore``.
    Attributes after loading: ``coco`` (pycocotools index), ``cat_ids``, ``cat2label``, ``img_ids``,
    ``ann_faults`` (list of ``(ann_id, file_name, reason, dropped)``).
    """

    CLASSES = ("person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
               "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
               "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
               "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
               "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
               "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
               "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed",
               "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
               "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
               "teddy bear", "hair drier", "toothbrush")

    # ------------------------------------------------------------------ loading
    def load_annotations(self, ann_file: str) -> list[dict]:
        with open(ann_file) as f:
            try:
                dataset = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"'{ann_file}' is not valid JSON: {e}") from None
        for key in ("images", "annotations", "categories"):
            if key not in dataset:
                raise KeyError(f"'{ann_file}' has no '{key}' list (COCO format needs images, annotations, "
                               f"categories)")
        self._check_unique_ids(dataset, ann_file)
        self.coco = COCO()
        self.coco.dataset = dataset
        with contextlib.redirect_stdout(io.StringIO()):
            self.coco.createIndex()
        self.cat_ids = self._select_cat_ids(dataset["categories"], ann_file)
        self.cat2label = {cat_id: i for i, cat_id in enumerate(self.cat_ids)}
        self.img_ids = [img["id"] for img in dataset["images"]]
        self.ann_faults, self._dropped_ann_ids = self._validate_annotations(dataset)
        data_infos = []
        for img in dataset["images"]:
            info = dict(img)
            info["filename"] = info["file_name"]
            data_infos.append(info)
        return data_infos

    @staticmethod
    def _check_unique_ids(dataset: dict, ann_file: str) -> None:
        seen: dict = {}
        for img in dataset["images"]:
            if img["id"] in seen:
                raise ValueError(f"'{ann_file}': image id {img['id']} is used twice, by '{seen[img['id']]}' and "
                                 f"'{img.get('file_name')}'; image ids must be unique")
            seen[img["id"]] = img.get("file_name")
        ann_ids = [ann["id"] for ann in dataset["annotations"]]
        if len(set(ann_ids)) != len(ann_ids):
            values, counts = np.unique(np.asarray(ann_ids), return_counts=True)
            raise ValueError(f"'{ann_file}': annotation ids are not unique (e.g. {values[counts > 1][:5].tolist()} "
                             f"appear more than once)")

    def _select_cat_ids(self, categories: list[dict], ann_file: str) -> list[int]:
        if self.CLASSES is None:
            raise ValueError(f"{type(self).__name__} needs class names: pass classes=(...) for '{ann_file}'")
        by_name = defaultdict(list)
        for cat in categories:
            by_name[cat["name"]].append(cat["id"])
        missing = [c for c in self.CLASSES if c not in by_name]
        if missing:
            raise ValueError(f"classes {missing} are not categories of '{ann_file}' (it has "
                             f"{sorted(by_name)}); pass classes=... with names from the file")
        dup = [c for c in self.CLASSES if len(by_name[c]) > 1]
        if dup:
            raise ValueError(f"'{ann_file}': category names {dup} are used by several category ids")
        return [by_name[c][0] for c in self.CLASSES]

    def _validate_annotations(self, dataset: dict) -> tuple[list[tuple], set]:
        """Find bad annotations (see the module docstring); log them; return (faults, ids to drop)."""
        images = {img["id"]: img for img in dataset["images"]}
        known_cats = {cat["id"] for cat in dataset["categories"]}
        faults = []
        for ann in dataset["annotations"]:
            img = images.get(ann.get("image_id"))
            if img is None:
                faults.append((ann["id"], None, f"image id {ann.get('image_id')} is not in 'images'", True))
                continue
            drop, warn = self._annotation_fault(ann, img, known_cats)
            if drop is not None:
                faults.append((ann["id"], img.get("file_name"), drop, True))
            elif warn is not None:
                faults.append((ann["id"], img.get("file_name"), warn, False))
        logger = get_root_logger()
        for ann_id, file_name, reason, dropped in faults[:MAX_LOGGED_ANN_FAULTS]:
            action = "dropped" if dropped else "kept"
            logger.warning(f"{osp.basename(self.ann_file)}: annotation {ann_id} of image '{file_name}' {action}: "
                           f"{reason}")
        if len(faults) > MAX_LOGGED_ANN_FAULTS:
            logger.warning(f"{osp.basename(self.ann_file)}: {len(faults) - MAX_LOGGED_ANN_FAULTS} more annotation "
                           f"problems (all listed in dataset.ann_faults)")
        return faults, {f[0] for f in faults if f[3]}

    @staticmethod
    def _annotation_fault(ann: dict, img: dict, known_cats: set) -> tuple[str | None, str | None]:
        if ann.get("category_id") not in known_cats:
            return f"category_id {ann.get('category_id')} is not in the file's categories", None
        box = ann.get("bbox")
        if not (isinstance(box, (list, tuple)) and len(box) == 4 and
                all(isinstance(v, (int, float)) and math.isfinite(v) for v in box)):
            return f"bbox {box!r} is not 4 finite numbers [x, y, w, h]", None
        x, y, w, h = box
        if w <= 0 or h <= 0:
            return f"box has zero or negative size (w={w}, h={h})", None
        inter_w = min(x + w, img["width"]) - max(x, 0)
        inter_h = min(y + h, img["height"]) - max(y, 0)
        if inter_w <= 0 or inter_h <= 0:
            return f"box {box} lies outside the {img['width']}x{img['height']} image", None
        return _segmentation_fault(ann.get("segmentation"), img["height"], img["width"])

    def _kept_anns(self, idx: int) -> list[dict]:
        """The annotations of image ``idx`` that loading did not drop."""
        img_id = self.data_infos[idx]["id"]
        return [self.coco.anns[i] for i in self.coco.getAnnIds(imgIds=[img_id]) if i not in self._dropped_ann_ids]

    def get_ann_info(self, idx: int) -> dict:
        return self._parse_ann_info(self.data_infos[idx], self._kept_anns(idx))

    def get_cat_ids(self, idx: int) -> list[int]:
        return [ann["category_id"] for ann in self._kept_anns(idx)]

    def _filter_imgs(self, min_size: int = 32) -> list[int]:
        """Images with a (non-dropped) annotation of a selected class (if ``filter_empty_gt``) and min side >=
        ``min_size``; updates ``img_ids`` to match."""
        selected = set(self.cat_ids)
        ids_in_cat = {ann["image_id"] for ann in self.coco.dataset["annotations"]
                      if ann["category_id"] in selected and ann["id"] not in self._dropped_ann_ids}
        valid_inds, valid_ids = [], []
        for i, info in enumerate(self.data_infos):
            if self.filter_empty_gt and info["id"] not in ids_in_cat:
                continue
            if min(info["width"], info["height"]) >= min_size:
                valid_inds.append(i)
                valid_ids.append(info["id"])
        self.img_ids = valid_ids
        return valid_inds

    def _parse_ann_info(self, img_info: dict, ann_info: list[dict]) -> dict:
        """Validated annotations of one image -> ``bboxes`` (n, 4) float32, ``labels`` (n,) int64,
        ``bboxes_ignore`` (crowd), ``masks`` (segmentations of the kept boxes), ``seg_map``.

        Boxes outside the image were already dropped by :meth:`_annotation_fault`; mmdet's remaining filters
        (area > 0, ``w, h >= 1``, selected category) apply here."""
        boxes, labels, boxes_ignore, masks = [], [], [], []
        for ann in ann_info:
            if ann.get("ignore", False):
                continue
            x1, y1, w, h = ann["bbox"]
            if ann.get("area", w * h) <= 0 or w < 1 or h < 1:
                continue
            if ann["category_id"] not in self.cat2label:
                continue
            box = [x1, y1, x1 + w, y1 + h]
            if ann.get("iscrowd", False):
                boxes_ignore.append(box)
            else:
                boxes.append(box)
                labels.append(self.cat2label[ann["category_id"]])
                masks.append(ann.get("segmentation", None))
        return dict(
            bboxes=np.array(boxes, dtype=np.float32).reshape(-1, 4),
            labels=np.array(labels, dtype=np.int64),
            bboxes_ignore=np.array(boxes_ignore, dtype=np.float32).reshape(-1, 4),
            masks=masks,
            seg_map=img_info["filename"].rsplit(".", 1)[0] + self.seg_suffix,
        )

    # ------------------------------------------------------------------ results -> COCO json
    @staticmethod
    def xyxy2xywh(bbox: np.ndarray) -> list[float]:
        x1, y1, x2, y2 = bbox[:4].tolist()
        return [x1, y1, x2 - x1, y2 - y1]

    @staticmethod
    def _boxes_to_json(bboxes: np.ndarray) -> tuple[list[list[float]], list[float]]:
        """``(n, 5)`` float32 ``x1, y1, x2, y2, score`` -> COCO ``[x, y, w, h]`` lists and float scores (w, h
        computed in double from the float32 values, exactly as per-box ``tolist()`` arithmetic)."""
        values = bboxes.tolist()
        return ([[b[0], b[1], b[2] - b[0], b[3] - b[1]] for b in values], [b[4] for b in values])

    def _proposal2json(self, results) -> list[dict]:
        out = []
        for img_id, bboxes in zip(self.img_ids, results):
            xywh, scores = self._boxes_to_json(np.asarray(bboxes))
            out.extend(dict(image_id=img_id, bbox=b, score=s, category_id=1) for b, s in zip(xywh, scores))
        return out

    def _det2json(self, results) -> list[dict]:
        out = []
        for img_id, result in zip(self.img_ids, results):
            for label, bboxes in enumerate(result):
                xywh, scores = self._boxes_to_json(np.asarray(bboxes))
                cat_id = self.cat_ids[label]
                out.extend(dict(image_id=img_id, bbox=b, score=s, category_id=cat_id) for b, s in zip(xywh, scores))
        return out

    def _segm2json(self, results) -> tuple[list[dict], list[dict]]:
        bbox_json, segm_json = [], []
        for img_id, (det, seg) in zip(self.img_ids, results):
            for label, bboxes in enumerate(det):
                xywh, scores = self._boxes_to_json(np.asarray(bboxes))
                cat_id = self.cat_ids[label]
                bbox_json.extend(dict(image_id=img_id, bbox=b, score=s, category_id=cat_id)
                                 for b, s in zip(xywh, scores))
                if isinstance(seg, tuple):  # (segms, mask scores) from detectors that score masks separately
                    segms, mask_scores = seg[0][label], [float(s) for s in seg[1][label]]
                else:
                    segms, mask_scores = seg[label], scores
                for b, s, rle in zip(xywh, mask_scores, segms):
                    counts = rle["counts"]
                    rle = dict(rle, counts=counts.decode() if isinstance(counts, bytes) else counts)
                    segm_json.append(dict(image_id=img_id, bbox=b, score=s, category_id=cat_id, segmentation=rle))
        return bbox_json, segm_json

    def results_to_coco(self, results: list) -> dict[str, list[dict]]:
        """Results in COCO result format, in memory: ``{'bbox', 'proposal'[, 'segm']: [dict, ...]}`` for box
        (and mask) results, ``{'proposal': [...]}`` for ``(n, 5)`` proposal arrays."""
        self._check_results(results)
        first = results[0]
        if isinstance(first, list):
            dets = self._det2json(results)
            return {"bbox": dets, "proposal": dets}
        if isinstance(first, tuple):
            dets, segms = self._segm2json(results)
            return {"bbox": dets, "proposal": dets, "segm": segms}
        if isinstance(first, np.ndarray):
            return {"proposal": self._proposal2json(results)}
        raise TypeError(f"a result must be a list (boxes), tuple (boxes, masks) or array (proposals), "
                        f"got {type(first).__name__}")

    @staticmethod
    def _write_json(predictions: dict[str, list[dict]], outfile_prefix: str) -> dict[str, str]:
        files = {}
        if "bbox" in predictions:
            files["bbox"] = files["proposal"] = f"{outfile_prefix}.bbox.json"
        else:
            files["proposal"] = f"{outfile_prefix}.proposal.json"
        if "segm" in predictions:
            files["segm"] = f"{outfile_prefix}.segm.json"
        for kind in ("bbox", "segm", "proposal"):
            if kind in predictions and not (kind == "proposal" and "bbox" in predictions):
                with open(files[kind], "w") as f:
                    json.dump(predictions[kind], f)
        return files

    def results2json(self, results: list, outfile_prefix: str) -> dict[str, str]:
        """Write ``<prefix>.bbox.json`` (and ``<prefix>.segm.json`` for mask results, ``.proposal.json`` for
        proposals) in COCO result format, as mmdet; returns ``{'bbox'|'segm'|'proposal': path}``."""
        return self._write_json(self.results_to_coco(results), outfile_prefix)

    def _check_results(self, results) -> None:
        if not isinstance(results, list):
            raise TypeError(f"results must be a list (one entry per image), got {type(results).__name__}")
        if len(results) != len(self):
            raise ValueError(f"got {len(results)} results for a dataset of {len(self)} images")

    def format_results(self, results: list, jsonfile_prefix: str | None = None, **kwargs):
        """Write the result files (to a temporary folder when no prefix is given); returns (files, tmp_dir)."""
        tmp_dir = None
        if jsonfile_prefix is None:
            tmp_dir = tempfile.TemporaryDirectory()
            jsonfile_prefix = osp.join(tmp_dir.name, "results")
        return self.results2json(results, jsonfile_prefix), tmp_dir

    # ------------------------------------------------------------------ evaluation
    def fast_eval_recall(self, results, proposal_nums, iou_thrs) -> np.ndarray:
        """Average recall (over ``iou_thrs``) of proposals for each number in ``proposal_nums``.

        Greedy one-to-one matching per image (best remaining gt/proposal pair first), as mmdet's
        ``eval_recalls``; crowd and mmdet-filtered annotations are not counted.
        """
        proposal_nums = np.asarray(proposal_nums)
        iou_thrs = np.asarray(iou_thrs)
        best_ious = [[] for _ in proposal_nums]
        for idx, proposals in enumerate(results):
            gts = self.get_ann_info(idx)["bboxes"]
            for k, num in enumerate(proposal_nums):
                props = np.asarray(proposals)[:num, :4]
                if len(gts) == 0:
                    continue
                if len(props) == 0:
                    best_ious[k].append(np.zeros(len(gts)))
                    continue
                ious = box_iou(torch.from_numpy(gts).double(), torch.from_numpy(props).double()).numpy()
                matched = np.zeros(len(gts))
                for j in range(min(len(gts), len(props))):
                    gt_idx, box_idx = np.unravel_index(np.argmax(ious), ious.shape)
                    matched[j] = ious[gt_idx, box_idx]
                    ious[gt_idx, :] = -1
                    ious[:, box_idx] = -1
                best_ious[k].append(matched)
        recalls = np.zeros((len(proposal_nums), len(iou_thrs)))
        for k in range(len(proposal_nums)):
            all_ious = np.concatenate(best_ious[k]) if best_ious[k] else np.zeros(0)
            num_gts = max(len(all_ious), 1)
            recalls[k] = [(all_ious >= thr).sum() / num_gts for thr in iou_thrs]
        return recalls.mean(axis=1)

    def evaluate(self, results, metric="bbox", logger=None, jsonfile_prefix=None, classwise=False,
                 proposal_nums=(100, 300, 1000), iou_thrs=None, metric_items=None, cocoeval_backend="auto"):
        """COCO evaluation with mmdet's metric names.

        Args:
            results: per image, ``bbox_results`` (list over classes of ``(n, 5)`` arrays), or a tuple
                ``(bbox_results, segm_results)`` with RLE-encoded masks, or ``(n, 5)`` proposals.
            metric: 'bbox', 'segm', 'proposal', 'proposal_fast' or a list of them.
            logger: where the COCO summaries (and the classwise table) are printed.
            jsonfile_prefix: keep the result json files under this prefix.
            classwise: log a per-category AP table.
            proposal_nums: ``COCOeval.params.maxDets`` (the reported mAP uses the last one).
            iou_thrs: IoU thresholds (default 0.50:0.05:0.95).
            metric_items: subset of ``mAP, mAP_50, mAP_75, mAP_s, mAP_m, mAP_l, AR@100, AR@300, AR@1000,
                AR_s@1000, AR_m@1000, AR_l@1000``.
            cocoeval_backend: ``'auto'`` (faster_coco_eval when installed), ``'pycocotools'`` or
                ``'faster_coco_eval'`` (:func:`cocoeval_class`); e.g. ``evaluation=dict(cocoeval_backend=...)``.

        Returns:
            ``OrderedDict`` with ``{metric}_{item}`` values rounded to 4 decimals (mmdet 2.28) and
            ``{metric}_mAP_copypaste``. For segm the ``bbox`` of each prediction is removed before loading
            (2.12+ behaviour: small/medium/large use the mask area).
        """
        metrics = metric if isinstance(metric, list) else [metric]
        for m in metrics:
            if m not in ("bbox", "segm", "proposal", "proposal_fast"):
                raise KeyError(f"metric {m!r} is not supported; use 'bbox', 'segm', 'proposal' or 'proposal_fast'")
        if metric_items is not None:
            metric_items = metric_items if isinstance(metric_items, list) else [metric_items]
            for item in metric_items:
                if item not in COCO_METRIC_INDEX:
                    raise KeyError(f"metric item {item!r} is not supported; choose from {list(COCO_METRIC_INDEX)}")
        evaluator = cocoeval_class(cocoeval_backend)
        if iou_thrs is None:
            iou_thrs = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
        predictions = self.results_to_coco(results)
        if jsonfile_prefix is not None:
            self._write_json(predictions, jsonfile_prefix)
        return self._evaluate_predictions(results, predictions, metrics, logger, classwise, proposal_nums,
                                          iou_thrs, metric_items, evaluator)

    def _evaluate_predictions(self, results, all_predictions, metrics, logger, classwise, proposal_nums, iou_thrs,
                              metric_items, evaluator) -> OrderedDict:
        """COCOeval per metric on in-memory COCO-format predictions (the same content mmdet reloads from its
        temporary json files: floats survive the json round trip exactly)."""
        eval_results = OrderedDict()
        for metric in metrics:
            print_log(("\n" if logger is None else "") + f"Evaluating {metric}...", logger=logger)
            if metric == "proposal_fast":
                if isinstance(results[0], tuple):
                    raise KeyError("proposal_fast is not supported for instance segmentation results")
                ar = self.fast_eval_recall(results, proposal_nums, iou_thrs)
                for num, value in zip(proposal_nums, ar):
                    eval_results[f"AR@{num}"] = float(value)
                print_log("".join(f"\nAR@{num}\t{value:.4f}" for num, value in zip(proposal_nums, ar)), logger=logger)
                continue
            iou_type = "bbox" if metric == "proposal" else metric
            if metric not in all_predictions:
                raise KeyError(f"{metric} is not in the results (they hold {sorted(all_predictions)})")
            predictions = [dict(p) for p in all_predictions[metric]]  # loadRes adds keys in place
            if not predictions:
                print_log("The testing results of the whole dataset is empty.", logger=logger, level=logging.ERROR)
                break
            if iou_type == "segm":
                for p in predictions:
                    p.pop("bbox", None)
            with contextlib.redirect_stdout(io.StringIO()):
                coco_det = self.coco.loadRes(predictions)
            coco_eval = evaluator(self.coco, coco_det, iou_type)
            coco_eval.params.catIds = self.cat_ids
            coco_eval.params.imgIds = self.img_ids
            coco_eval.params.maxDets = list(proposal_nums)
            coco_eval.params.iouThrs = iou_thrs
            if metric == "proposal":
                coco_eval.params.useCats = 0
            summary = io.StringIO()
            with contextlib.redirect_stdout(summary):
                coco_eval.evaluate()
                coco_eval.accumulate()
                coco_eval.summarize()
            print_log("\n" + summary.getvalue(), logger=logger)
            if metric == "proposal":
                items = metric_items or ["AR@100", "AR@300", "AR@1000", "AR_s@1000", "AR_m@1000", "AR_l@1000"]
                for item in items:
                    eval_results[item] = float(f"{coco_eval.stats[COCO_METRIC_INDEX[item]]:.{EVAL_DECIMALS}f}")
                continue
            if classwise:
                print_log("\n" + self._classwise_table(coco_eval.eval["precision"]), logger=logger)
            items = metric_items or ["mAP", "mAP_50", "mAP_75", "mAP_s", "mAP_m", "mAP_l"]
            for item in items:
                value = coco_eval.stats[COCO_METRIC_INDEX[item]]
                eval_results[f"{metric}_{item}"] = float(f"{value:.{EVAL_DECIMALS}f}")
            eval_results[f"{metric}_mAP_copypaste"] = " ".join(f"{v:.{EVAL_DECIMALS}f}" for v in coco_eval.stats[:6])
        return eval_results

    def _classwise_table(self, precisions: np.ndarray) -> str:
        """Per-category AP (IoU 0.50:0.95, all areas, last maxDets) as a 6-column table.

        ``precisions`` is ``COCOeval.eval['precision']`` of shape (iou, recall, class, area, maxDets).
        """
        if precisions.shape[2] != len(self.cat_ids):
            raise ValueError(f"classwise: {precisions.shape[2]} classes evaluated but {len(self.cat_ids)} cat_ids")
        per_cat = []
        for idx, cat_id in enumerate(self.cat_ids):
            p = precisions[:, :, idx, 0, -1]
            p = p[p > -1]
            ap = float(np.mean(p)) if p.size else float("nan")
            per_cat.append((self.coco.loadCats(cat_id)[0]["name"], f"{ap:0.3f}"))
        num_columns = min(6, len(per_cat) * 2)
        flat = list(itertools.chain(*per_cat))
        rows = [["category", "AP"] * (num_columns // 2)]
        rows += [list(r) for r in itertools.zip_longest(*[flat[i::num_columns] for i in range(num_columns)])]
        return _ascii_table(rows)
