"""Mask R-CNN R50-FPN against the mmdetection 2.28.2 golden case (tests/data/golden/detectors/README.md).

One forward per golden image and one training forward/backward; every assertion reads cached results.
Tolerances are the README's recommended ones.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_util

from mmdet.core.mask import BitmapMasks
from mmdet.models import build_detector

from golden_detector import GOLDEN, input_from_resized, q4_state_dict


def plain_meta(meta: dict) -> dict:
    out = dict(meta)
    out["scale_factor"] = np.asarray(meta["scale_factor"], dtype=np.float32)
    out["img_norm_cfg"] = {k: (np.asarray(v) if isinstance(v, torch.Tensor) else v)
                           for k, v in meta["img_norm_cfg"].items()}
    out.pop("batch_input_shape", None)
    return out


def tensor_stats_close(x: torch.Tensor, stats: dict) -> None:
    flat = x.reshape(-1).double()
    np.testing.assert_allclose(flat[stats["sample_flat_index"]].numpy(), stats["sample_values"], atol=1e-3,
                               rtol=1e-3)
    np.testing.assert_allclose(flat.abs().sum().item(), stats["abs_sum"], rtol=1e-4)
    np.testing.assert_allclose((flat ** 2).sum().item(), stats["sq_sum"], rtol=1e-4)
    np.testing.assert_allclose(flat.sum().item(), stats["sum"], rtol=1e-3, atol=1e-3 * stats["abs_sum"] * 1e-3)


def match_boxes(ours: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every ref row, the index of our nearest box (max coordinate difference) and that difference."""
    if len(ours) == 0:
        return np.zeros(len(ref), np.int64), np.full(len(ref), np.inf)
    diff = np.abs(ref[:, None, :4] - ours[None, :, :4]).max(-1)
    idx = diff.argmin(1)
    return idx, diff[np.arange(len(ref)), idx]


@pytest.fixture(scope="module", params=[False, True], ids=["nchw", "channels_last"])
def golden(request):
    """The golden model, once in the default memory format and once with ``channels_last=True`` (every test below
    then checks that NHWC strides reproduce mmdetection too)."""
    torch.set_num_threads(2)
    cfg = json.loads((GOLDEN / "mask_rcnn_r50_fpn_config.json").read_text())["model"]
    train_case = torch.load(GOLDEN / "mask_rcnn_r50_fpn_train.pt", weights_only=True)
    cfg["train_cfg"] = train_case["train_cfg"]
    cfg["channels_last"] = request.param
    model = build_detector(cfg)
    state = q4_state_dict(GOLDEN / "mask_rcnn_r50_fpn_weights_q4.pt")
    model.load_state_dict(state, strict=True)
    conv_weight = model.backbone.conv1.weight
    assert conv_weight.is_contiguous(memory_format=torch.channels_last) == request.param
    assert conv_weight.is_contiguous() != request.param
    infer_case = torch.load(GOLDEN / "mask_rcnn_r50_fpn_infer.pt", weights_only=True)
    return model, infer_case, train_case


@pytest.fixture(scope="module")
def inference(golden):
    """Per golden image, one ``model(return_loss=False, rescale=True, ...)`` call (FPN levels and proposals are
    captured on the way), plus the RoI heads run on the golden rois / mask rois (stage-isolated checks)."""
    model, case, _ = golden
    model.eval()
    captured = {}
    neck_hook = model.neck.register_forward_hook(lambda module, args, output: captured.update(feats=output))
    rpn_test = model.rpn_head.simple_test_rpn

    def capture_proposals(x, img_metas):
        captured["proposals"] = rpn_test(x, img_metas)
        return captured["proposals"]

    model.rpn_head.simple_test_rpn = capture_proposals
    runs = []
    try:
        with torch.no_grad():
            for im in case["images"]:
                meta = plain_meta(im["img_metas"])
                img = input_from_resized(im["img_resized_uint8_bgr"].numpy(), meta["pad_shape"])
                results = model(img=[img], img_metas=[[meta]], return_loss=False, rescale=True)
                feats = captured["feats"]
                cls_score = model.roi_head._bbox_forward(feats, im["rois"])["cls_score"]
                mask_logits = model.roi_head._mask_forward(feats, im["mask_rois"])["mask_pred"]
                runs.append(dict(img=img, meta=meta, feats=feats, proposals=captured["proposals"][0],
                                 results=results, result=results[0], cls_score=cls_score,
                                 mask_logits=mask_logits[torch.arange(len(im["det_labels"])), im["det_labels"]]))
    finally:
        neck_hook.remove()
        del model.rpn_head.simple_test_rpn  # back to the class method
    return runs


def test_input_and_fpn(golden, inference):
    model, case, _ = golden
    for im, run in zip(case["images"], inference):
        stats = im["input_tensor_stats"]
        assert list(run["img"].shape) == stats["shape"]
        flat = run["img"].reshape(-1).double()
        assert flat.sum().item() == stats["sum"] and flat.abs().sum().item() == stats["abs_sum"]
        assert [list(f.shape) for f in run["feats"]] == [list(s) for s in im["fpn_shapes"]]
        assert all(f.is_contiguous(memory_format=torch.channels_last) == model.channels_last for f in run["feats"])
        for level, level_stats in zip(run["feats"], im["fpn_stats"]):
            tensor_stats_close(level, level_stats)


def test_proposals(golden, inference):
    _, case, _ = golden
    for im, run in zip(case["images"], inference):
        ours, ref = run["proposals"].numpy(), im["proposals"].numpy()
        assert ours.shape == ref.shape
        idx, diff = match_boxes(ours, ref)
        matched = diff <= 0.05
        assert matched.mean() >= 0.99, f"only {matched.mean():.3f} of the proposals match within 0.05 px"
        np.testing.assert_allclose(ours[idx[matched], 4], ref[matched, 4], atol=1e-4)


def test_bbox_head_on_golden_rois(golden, inference):
    _, case, _ = golden
    for im, run in zip(case["images"], inference):
        torch.testing.assert_close(run["cls_score"], im["cls_score"], atol=3e-3, rtol=0)


def test_detections(golden, inference):
    _, case, _ = golden
    for im, run in zip(case["images"], inference):
        bbox_results = run["result"][0]
        assert len(bbox_results) == 80 and all(b.dtype == np.float32 and b.shape[1] == 5 for b in bbox_results)
        for label, (ours, ref) in enumerate(zip(bbox_results, im["bbox_results"])):
            ref = ref.numpy()
            must = ref[ref[:, 4] >= 0.06]
            idx, diff = match_boxes(ours, must)
            assert (diff <= 0.02).all(), f"class {label}: golden dets not reproduced (max diff {diff.max()})"
            np.testing.assert_allclose(ours[idx, 4], must[:, 4], atol=1e-4)
        assert abs(sum(len(b) for b in bbox_results) - len(im["det_labels"])) <= 2


def test_masks(golden, inference):
    _, case, _ = golden
    total_pixels = total_diff = 0
    for im, run in zip(case["images"], inference):
        torch.testing.assert_close(run["mask_logits"], im["mask_logits_label_channel"], atol=1e-2, rtol=0)
        segm_results = run["result"][1]
        for label, (ours, ref_rles) in enumerate(zip(segm_results, im["segm_results_rle"])):
            assert len(ours) == len(ref_rles), f"class {label}: {len(ours)} masks vs {len(ref_rles)}"
            for mask, rle in zip(ours, ref_rles):
                ref = mask_util.decode(dict(size=rle["size"], counts=rle["counts"].encode())).astype(bool)
                assert mask.dtype == bool and mask.shape == ref.shape
                union = np.logical_or(mask, ref).sum()
                assert np.logical_and(mask, ref).sum() / max(union, 1) >= 0.99
                total_diff += np.logical_xor(mask, ref).sum()
                total_pixels += ref.size
    assert total_diff <= 0.002 * total_pixels


def test_forward_test_interface(inference):
    """``single_gpu_test``'s call: one result per image, ``batch_input_shape`` written into the metas."""
    for run in inference:
        assert len(run["results"]) == 1
        assert run["meta"]["batch_input_shape"] == tuple(run["img"].shape[-2:])
        bbox_results, segm_results = run["result"]
        assert len(bbox_results) == len(segm_results) == 80
        assert all(len(b) == len(s) for b, s in zip(bbox_results, segm_results))


@pytest.fixture(scope="module")
def training(golden):
    model, _, case = golden
    im_meta = plain_meta(case["img_metas"])
    infer_case_img = golden[1]["images"][case["same_input_as_infer_image_index"]]
    img = input_from_resized(infer_case_img["img_resized_uint8_bgr"].numpy(), im_meta["pad_shape"])
    h, w = case["gt_masks_shape"][1:]
    masks = np.stack([mask_util.decode(dict(size=r["size"], counts=r["counts"].encode())) for r in case["gt_masks_rle"]])
    gt_masks = BitmapMasks(masks, h, w)
    model.train()
    model.zero_grad()
    outputs = model.train_step(dict(img=img, img_metas=[im_meta], gt_bboxes=[case["gt_bboxes"]],
                                    gt_labels=[case["gt_labels"]], gt_masks=[gt_masks]), None)
    outputs["loss"].backward()
    grads = {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    model.eval()
    return outputs, grads, img, im_meta


def test_training_losses(golden, training):
    _, _, case = golden
    outputs, _, img, meta = training
    assert outputs["num_samples"] == 1
    assert meta["batch_input_shape"] == tuple(img.shape[-2:])
    log_vars = outputs["log_vars"]
    assert list(log_vars) == list(case["log_vars"])
    for name, ref in case["log_vars"].items():
        if name == "acc":
            assert log_vars[name] == pytest.approx(ref, abs=1e-3)
        else:
            assert log_vars[name] == pytest.approx(ref, rel=1e-4), name
    assert float(outputs["loss"].detach()) == pytest.approx(case["loss"], rel=1e-4)


def test_training_gradients(golden, training):
    model, _, case = golden
    _, grads, _, _ = training
    frozen = {name for name, p in model.named_parameters() if name not in grads}
    assert sorted(frozen) == sorted(case["params_without_grad"])
    assert len(grads) == case["num_params_with_grad"]
    total = torch.sqrt(sum((g.double() ** 2).sum() for g in grads.values())).item()
    assert total == pytest.approx(case["total_grad_norm"], rel=1e-4)
    for name, ref in case["grad_norms"].items():
        assert grads[name].double().norm().item() == pytest.approx(ref, rel=2e-3), name
    for name, ref in case["grads_full"].items():
        if name == "backbone.layer3.5.bn3.weight":
            torch.testing.assert_close(grads[name], ref, atol=2e-3, rtol=0)
            assert ((grads[name] - ref).norm() / ref.norm()).item() <= 2e-2
        else:
            torch.testing.assert_close(grads[name], ref, atol=1e-4, rtol=1e-3)
