"""Swin-T and Swin-Visformer configs: backbones against the golden manifests, detectors against official counts."""
from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest
import torch

from mmdet.models import build_backbone

REPO = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).resolve().parent / "data" / "golden"
SWIN_MANIFEST = GOLDEN / "swin" / "manifest_swin_t.json"
VISFORMER_MANIFEST = GOLDEN / "swin_visformer" / "manifest_mask_rcnn_swin_visformer_small_v2_adamw_1x_coco.json"

# Official full-model parameter counts (Swin-Visformer README / spec §3.3). The v1 numbers are derived from them:
# v1 backbone 39,198,064 + the v2 neck/heads + 122,880 for the wider FPN laterals (96..768 instead of 64..512).
MASK_V2, CASCADE_V2 = 42_844_528, 80_679_730
MASK_SWIN_T, CASCADE_SWIN_T = 47_794_602, 85_629_804
MASK_V1, CASCADE_V1 = 59_471_968, 97_307_170
V1_BACKBONE = 39_198_064

DETECTOR_PARAMS = {
    "swin/mask_rcnn_swin_tiny_patch4_window7_mstrain_480-800_adamw_1x_coco.py": MASK_SWIN_T,
    "swin/mask_rcnn_swin_tiny_patch4_window7_mstrain_480-800_adamw_3x_coco.py": MASK_SWIN_T,
    "swin/cascade_mask_rcnn_swin_tiny_patch4_window7_mstrain_480-800_giou_4conv1f_adamw_1x_coco.py": CASCADE_SWIN_T,
    "swin/cascade_mask_rcnn_swin_tiny_patch4_window7_mstrain_480-800_giou_4conv1f_adamw_3x_coco.py": CASCADE_SWIN_T,
    "swin_visformer/mask_rcnn_swin_visformer_small_v2_adamw_1x_coco.py": MASK_V2,
    "swin_visformer/mask_rcnn_swin_visformer_small_v2_mstrain_480-800_adamw_3x_coco.py": MASK_V2,
    "swin_visformer/cascade_mask_rcnn_swin_visformer_small_v2_mstrain_480-800_adamw_1x_coco.py": CASCADE_V2,
    "swin_visformer/cascade_mask_rcnn_swin_visformer_small_v2_mstrain_480-800_adamw_3x_coco.py": CASCADE_V2,
    "swin_visformer/mask_rcnn_swin_visformer_small_v1_adamw_1x_coco.py": MASK_V1,
    "swin_visformer/mask_rcnn_swin_visformer_small_v1_mstrain_480-800_adamw_3x_coco.py": MASK_V1,
    "swin_visformer/cascade_mask_rcnn_swin_visformer_small_v1_mstrain_480-800_adamw_1x_coco.py": CASCADE_V1,
    "swin_visformer/cascade_mask_rcnn_swin_visformer_small_v1_mstrain_480-800_adamw_3x_coco.py": CASCADE_V1,
    "swin_visformer/cascade_mask_rcnn_swin_visformer_small_v1_test_benchmark.py": CASCADE_V1,
}
CONFIGS = sorted(DETECTOR_PARAMS)


def _manifest_for(config: str) -> tuple[dict, dict] | None:
    """(manifest, expected backbone kwargs) when a golden manifest describes ``config``'s backbone."""
    for path in (SWIN_MANIFEST, VISFORMER_MANIFEST):
        manifest = json.loads(path.read_text())
        if manifest["config"] == f"configs/{config}":
            return manifest, dict(manifest["constructor_kwargs"])
        for other in manifest["other_configs_same_state_dict"]:
            if other["config"] == f"configs/{config}":
                return manifest, {**manifest["constructor_kwargs"], **other["kwargs_that_differ"]}
    return None


def _model_section(config: str) -> dict:
    """``model`` of ``configs/<config>`` merged over its ``_base_/models`` file (the backbone/neck part of Config).

    Only the model base is read, so this works before the dataset / schedule / runtime bases exist.
    """
    path = REPO / "configs" / config
    own = runpy.run_path(str(path))
    (model_base,) = [b for b in own["_base_"] if "/models/" in b]
    model = runpy.run_path(str((path.parent / model_base).resolve()))["model"]
    for part in ("backbone", "neck"):
        model[part] = {**model[part], **own["model"].get(part, {})}
    return model


def _jsonable(value):
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


@pytest.mark.parametrize("config", CONFIGS)
def test_backbone_matches_manifest(config):
    model = _model_section(config)
    with torch.device("meta"):
        backbone = build_backbone(dict(model["backbone"]))
    assert list(model["neck"]["in_channels"]) == backbone.num_features
    total = sum(p.numel() for p in backbone.parameters())
    found = _manifest_for(config)
    if found is None:                                                # v1 configs: no manifest, official count
        assert total == V1_BACKBONE
        return
    manifest, expected_kwargs = found
    kwargs = {k: _jsonable(v) for k, v in model["backbone"].items() if k != "type"}
    assert kwargs == expected_kwargs
    assert total == manifest["total_parameters"]
    ours = [(k, list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in backbone.state_dict().items()]
    assert ours == [(e["key"], e["shape"], e["dtype"]) for e in manifest["state_dict"]]


@pytest.mark.parametrize("config", CONFIGS)
def test_detector_parameter_count(config):
    from mmdet.engine.config import Config
    from mmdet.models import build_detector
    cfg = Config.fromfile(str(REPO / "configs" / config))
    assert cfg.runner.type == "EpochBasedRunnerAmp" and cfg.optimizer_config.type == "DistOptimizerHook"
    with torch.device("meta"):                                       # shapes only: no weight initialisation
        detector = build_detector(cfg.model)
    total = sum(p.numel() for p in detector.parameters())
    assert abs(total - DETECTOR_PARAMS[config]) <= 100_000, f"{config}: {total:,} parameters"
