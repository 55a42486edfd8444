"""Loading transforms: image file -> array, annotation dict -> boxes/labels/masks (mmdetection 2.x)."""
from __future__ import annotations

import os.path as osp

import numpy as np
import pycocotools.mask as mask_utils

from mmdet.core.mask import BitmapMasks, PolygonMasks
from mmdet.core.mask.structures import polygons_to_rle
from mmdet.registry import PIPELINES

from .image_ops import SampleLoadError, exif_orientation, imread


def check_disk_backend(file_client_args: dict | None) -> None:
    """Reject ``file_client_args`` naming a storage backend other than local files."""
    backend = (file_client_args or {}).get("backend", "disk")
    if backend != "disk":
        raise ValueError(f"file_client_args backend {backend!r} is not supported; only local files "
                         f"(backend='disk') are")


def valid_polygons(polygons) -> list[np.ndarray]:
    """The polygons of one instance that can be rasterised: even length and at least 3 points."""
    arrays = [np.asarray(p, dtype=np.float64).reshape(-1) for p in polygons]
    return [p for p in arrays if len(p) % 2 == 0 and len(p) >= 6]


def segmentation_to_rle(segm, height: int, width: int) -> dict:
    """One COCO segmentation (polygon list, uncompressed RLE or compressed RLE) -> compressed RLE."""
    if isinstance(segm, list):
        return polygons_to_rle(valid_polygons(segm), height, width)
    if isinstance(segm, dict) and isinstance(segm.get("counts"), list):
        return mask_utils.frPyObjects(segm, height, width)
    return segm


@PIPELINES.register_module()
class LoadImageFromFile:
    """Read ``img_prefix/img_info['filename']`` into ``results['img']`` (cv2 decoding, mmcv ``imfrombytes``).

    Args:
        to_float32: convert the uint8 image to float32.
        color_type: 'color' (3 channels, EXIF orientation applied; grayscale/16-bit/alpha files converted),
            'grayscale', 'unchanged', 'color_ignore_orientation', 'grayscale_ignore_orientation'.
        channel_order: 'bgr' (mmdet default) or 'rgb'.
        file_client_args: only ``dict(backend='disk')`` is supported.

    Sets ``filename``, ``ori_filename``, ``img`` (H, W, C), ``img_shape``, ``ori_shape``, ``img_fields``.
    Raises :class:`SampleLoadError` naming the file when it is missing, empty or undecodable.
    """

    def __init__(self, to_float32: bool = False, color_type: str = "color", channel_order: str = "bgr",
                 file_client_args: dict | None = None):
        check_disk_backend(file_client_args)
        self.to_float32 = to_float32
        self.color_type = color_type
        self.channel_order = channel_order

    def __call__(self, results: dict) -> dict:
        if results.get("img_prefix") is not None:
            filename = osp.join(results["img_prefix"], results["img_info"]["filename"])
        else:
            filename = results["img_info"]["filename"]
        img = imread(filename, flag=self.color_type, channel_order=self.channel_order)
        return self._set_image(results, img, filename, results["img_info"]["filename"])

    def _set_image(self, results: dict, img: np.ndarray, filename, ori_filename) -> dict:
        if self.to_float32:
            img = img.astype(np.float32)
        results["filename"] = filename
        results["ori_filename"] = ori_filename
        results["img"] = img
        results["img_shape"] = img.shape
        results["ori_shape"] = img.shape
        results["img_fields"] = ["img"]
        return results

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(to_float32={self.to_float32}, color_type={self.color_type!r}, "
                f"channel_order={self.channel_order!r})")


@PIPELINES.register_module()
class LoadImageFromWebcam(LoadImageFromFile):
    """Take an in-memory image from ``results['img']`` (an ``(H, W, 3)`` BGR uint8 array, e.g. a video frame).

    Used by :func:`mmdet.apis.inference_detector` for array inputs; ``filename`` and ``ori_filename`` are None.
    """

    def __call__(self, results: dict) -> dict:
        img = results.get("img")
        if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"LoadImageFromWebcam expects results['img'] to be an (H, W, 3) array, got "
                             f"{type(img).__name__} {getattr(img, 'shape', '')}")
        return self._set_image(results, img, None, None)


@PIPELINES.register_module()
class LoadAnnotations:
    """Copy boxes, labels, masks and the semantic map of ``results['ann_info']`` into ``results``.

    Args:
        with_bbox, with_label, with_mask, with_seg: what to load.
        poly2mask: rasterise masks to :class:`BitmapMasks` (uint8 ``(n, H, W)``, all instances decoded in one
            pycocotools call); False keeps :class:`PolygonMasks` (RLE annotations need ``poly2mask=True``).
        denorm_bbox: boxes are given relative to the image size (multiply by w, h).
        file_client_args: only ``dict(backend='disk')``.

    The mask canvas is ``img_info`` height x width. If an image was already loaded and its decoded size
    differs (typically an EXIF-rotated photo annotated unrotated), a :class:`SampleLoadError` is raised,
    because boxes and masks would not line up with the pixels.
    """

    def __init__(self, with_bbox: bool = True, with_label: bool = True, with_mask: bool = False,
                 with_seg: bool = False, poly2mask: bool = True, denorm_bbox: bool = False,
                 file_client_args: dict | None = None):
        check_disk_backend(file_client_args)
        self.with_bbox = with_bbox
        self.with_label = with_label
        self.with_mask = with_mask
        self.with_seg = with_seg
        self.poly2mask = poly2mask
        self.denorm_bbox = denorm_bbox

    def _check_image_size(self, results: dict) -> None:
        info = results["img_info"]
        if "img_shape" not in results or "height" not in info or "width" not in info:
            return
        h, w = results["img_shape"][:2]
        if (h, w) == (info["height"], info["width"]):
            return
        filename = results.get("filename", info.get("filename"))
        reason = (f"decoded image is {h}x{w} (HxW) but the annotation file says "
                  f"{info['height']}x{info['width']}")
        orientation = exif_orientation(filename) if (h, w) == (info["width"], info["height"]) else None
        if orientation is not None and orientation > 1:
            reason += (f"; the file has EXIF orientation {orientation}, which decoding applies, so the annotations "
                       f"were made on the unrotated pixels (re-save the image rotated or fix width/height)")
        raise SampleLoadError(filename, reason)

    def _load_bboxes(self, results: dict) -> None:
        ann = results["ann_info"]
        bboxes = ann["bboxes"].copy()
        if self.denorm_bbox and len(bboxes):
            h, w = results["img_shape"][:2]
            bboxes[:, 0::2] *= w
            bboxes[:, 1::2] *= h
        results["gt_bboxes"] = bboxes
        if ann.get("bboxes_ignore") is not None:
            results["gt_bboxes_ignore"] = ann["bboxes_ignore"].copy()
            results["bbox_fields"].append("gt_bboxes_ignore")
        results["bbox_fields"].append("gt_bboxes")

    def _load_masks(self, results: dict) -> None:
        h, w = results["img_info"]["height"], results["img_info"]["width"]
        # polygon lists are reduced to their usable polygons once, here
        segms = [valid_polygons(s) if isinstance(s, list) else s for s in results["ann_info"]["masks"]]
        filename = results.get("filename", results["img_info"].get("filename"))
        if any(s is None or (isinstance(s, list) and not s) for s in segms):
            raise ValueError(f"'{filename}': an annotation has no usable segmentation; with_mask=True needs "
                             f"one for every instance (set with_mask=False to train boxes only)")
        if self.poly2mask:
            if segms:
                rles = [polygons_to_rle(s, h, w) if isinstance(s, list) else segmentation_to_rle(s, h, w)
                        for s in segms]
                masks = mask_utils.decode(rles).transpose(2, 0, 1)  # (n, H, W) view of the Fortran (H, W, n)
            else:
                masks = []
            results["gt_masks"] = BitmapMasks(masks, h, w)
        else:
            if any(not isinstance(s, list) for s in segms):
                raise ValueError(f"'{filename}': RLE masks cannot be kept as polygons; use poly2mask=True")
            results["gt_masks"] = PolygonMasks(segms, h, w)
        results["mask_fields"].append("gt_masks")

    def _load_semantic_seg(self, results: dict) -> None:
        filename = osp.join(results["seg_prefix"], results["ann_info"]["seg_map"])
        results["gt_semantic_seg"] = imread(filename, flag="unchanged").squeeze()
        results["seg_fields"].append("gt_semantic_seg")

    def __call__(self, results: dict) -> dict:
        self._check_image_size(results)
        if self.with_bbox:
            self._load_bboxes(results)
        if self.with_label:
            results["gt_labels"] = results["ann_info"]["labels"].copy()
        if self.with_mask:
            self._load_masks(results)
        if self.with_seg:
            self._load_semantic_seg(results)
        return results

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(with_bbox={self.with_bbox}, with_label={self.with_label}, "
                f"with_mask={self.with_mask}, with_seg={self.with_seg}, poly2mask={self.poly2mask})")


@PIPELINES.register_module()
class LoadProposals:
    """Put ``results['proposals']`` (``(n, 4)`` or ``(n, 5)``, at most ``num_max_proposals``) in ``proposals``."""

    def __init__(self, num_max_proposals: int | None = None):
        self.num_max_proposals = num_max_proposals

    def __call__(self, results: dict) -> dict:
        proposals = np.asarray(results["proposals"], dtype=np.float32)
        if proposals.ndim != 2 or proposals.shape[1] not in (4, 5):
            raise ValueError(f"proposals must have shape (n, 4) or (n, 5), got {proposals.shape}")
        proposals = proposals[:, :4]
        if self.num_max_proposals is not None:
            proposals = proposals[:self.num_max_proposals]
        if len(proposals) == 0:
            proposals = np.array([[0, 0, 0, 0]], dtype=np.float32)
        results["proposals"] = proposals
        results["bbox_fields"].append("proposals")
        return results
