"""init_detector / inference_detector / demo/image_demo.py on the golden mmdetection 2.28 Mask R-CNN."""
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from golden_detector import GOLDEN, q4_state_dict

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "mask_rcnn" / "mask_rcnn_r50_fpn_1x_coco.py"
IMAGE = ROOT / "data" / "coco_tiny" / "val2017" / "000000047112.jpg"


@pytest.fixture(scope="module")
def golden_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "golden_mask_rcnn.pth"
    meta = torch.load(GOLDEN / "mask_rcnn_r50_fpn_weights_q4.pt", map_location="cpu", weights_only=True)["meta"]
    torch.save({"meta": dict(meta), "state_dict": q4_state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def model(golden_checkpoint):
    from mmdet.apis import init_detector
    return init_detector(str(CONFIG), str(golden_checkpoint), device="cpu",
                         cfg_options={"model.backbone.init_cfg": None})


def test_inference_detector_matches_golden_results(model):
    from mmdet.apis import inference_detector
    assert len(model.CLASSES) == 80 and model.CLASSES[0] == "person"       # from the checkpoint's meta
    bbox_results, segm_results = inference_detector(model, str(IMAGE))
    golden = torch.load(GOLDEN / "mask_rcnn_r50_fpn_infer.pt", weights_only=True)["images"][0]["bbox_results"]
    assert len(bbox_results) == len(segm_results) == 80
    for ours, ref in zip(bbox_results, golden):
        assert ours.shape == tuple(ref.shape)
        np.testing.assert_allclose(np.sort(ours[:, 4]), np.sort(ref[:, 4].numpy()), atol=1e-4)
    person_masks = segm_results[0]
    assert len(person_masks) == len(bbox_results[0]) and person_masks[0].shape == (480, 640)
    assert person_masks[0].dtype == bool


def test_array_and_list_inputs_give_the_same_results(model):
    from mmdet.apis import inference_detector
    from_file = inference_detector(model, str(IMAGE))
    batch = inference_detector(model, [cv2.imread(str(IMAGE))])
    assert isinstance(batch, list) and len(batch) == 1
    for a, b in zip(from_file[0], batch[0][0]):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_image_demo_draws_where_detections_are(golden_checkpoint, tmp_path, model):
    from mmdet.apis import inference_detector
    out = tmp_path / "demo.png"
    r = subprocess.run([sys.executable, "demo/image_demo.py", str(IMAGE), str(CONFIG), str(golden_checkpoint),
                        "--out-file", str(out), "--score-thr", "0.3"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    drawn, original = cv2.imread(str(out)), cv2.imread(str(IMAGE))
    assert drawn.shape == original.shape
    changed = np.abs(drawn.astype(int) - original.astype(int)).sum(-1) > 0
    bboxes = np.vstack(inference_detector(model, str(IMAGE))[0])
    keep = bboxes[bboxes[:, 4] > 0.3]
    assert len(keep) == 9                                    # README: 9 detections above 0.3 on this image
    inside = np.zeros_like(changed)
    for x1, y1, x2, y2, _ in keep:
        inside[int(y1):int(np.ceil(y2)) + 1, int(x1):int(np.ceil(x2)) + 1] = True
    assert changed[inside].mean() > 0.2                      # masks are blended inside the boxes
    assert changed[~inside].mean() < 0.02                    # labels may spill a little above boxes
