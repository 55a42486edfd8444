"""configs/vitdet: backbones against the golden manifests of the published ViTDet configs, and the full
detectors (Mask R-CNN rows and their Cascade variants) built through Config.fromfile + build_detector."""
from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest
import torch

from mmdet.models.builder import build_backbone

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs" / "vitdet"
GOLDEN = Path(__file__).resolve().parent / "data" / "golden"

MODELS = {  # config stem -> (golden manifest, Mask R-CNN parameters of spec §1.6)
    "ViTDet-ViT-Base-100e": ("vitdet_vit/manifest_ViTDet-ViT-Base-100e.json", 118_563_824),
    "ViTDet-ViTAE-Base-100e": ("vitdet_vitae_b/manifest_ViTDet-ViTAE-Base-100e.json", 121_334_768),
    "ViTDet-ViTAE-Small-100e": ("vitdet_vitae_s/manifest_ViTDet-ViTAE-Small-100e.json", 47_722_768),
}
# Cascade = Mask R-CNN + 2 more 4conv1fc LN box heads (15,618,449 each) + 2 more LN mask heads (2,644,304 each)
CASCADE_EXTRA = 2 * 15_618_449 + 2 * 2_644_304


def _jsonable(value):
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _file_backbone(stem: str) -> dict:
    """``model['backbone']`` as written in the config file (the backbone is fully given there)."""
    backbone = dict(runpy.run_path(str(CONFIGS / f"{stem}.py"))["model"]["backbone"])
    assert backbone.pop("_delete_") is True  # replaces the ResNet-50 of the stock model base
    return backbone


@pytest.mark.parametrize("stem", list(MODELS))
def test_backbone_matches_golden_manifest(stem):
    manifest = json.loads((GOLDEN / MODELS[stem][0]).read_text())
    cfg = _file_backbone(stem)
    assert cfg["type"] == manifest["backbone_class"]
    assert {k: _jsonable(v) for k, v in cfg.items() if k != "type"} == manifest["constructor_kwargs"]
    assert _file_backbone(f"{stem}-Cascade") == cfg
    backbone = build_backbone(cfg)
    ours = [(k, list(v.shape), str(v.dtype).replace("torch.", "")) for k, v in backbone.state_dict().items()]
    ref = [(e["key"], e["shape"], e["dtype"]) for e in manifest["state_dict"]]
    assert ours == ref
    params = list(backbone.parameters())
    assert sum(p.numel() for p in params) == manifest["total_parameters"]
    assert sum(p.numel() for p in params if p.requires_grad) == manifest["trainable_parameters"]


@pytest.mark.parametrize("stem,cascade", [(s, c) for s in MODELS for c in (False, True)])
def test_detector_config_builds_with_expected_parameters(stem, cascade):
    from mmdet.engine.config import Config
    from mmdet.models import build_detector

    cfg = Config.fromfile(str(CONFIGS / (f"{stem}-Cascade.py" if cascade else f"{stem}.py")))
    manifest = json.loads((GOLDEN / MODELS[stem][0]).read_text())
    model_cfg = cfg.model
    assert model_cfg["type"] == ("CascadeRCNN" if cascade else "MaskRCNN")
    assert model_cfg["neck"] == dict(type="FPN", in_channels=manifest["neck_in_channels"], out_channels=256,
                                     norm_cfg=dict(type="LN", requires_grad=True), use_residual=False, num_outs=5)
    assert model_cfg["rpn_head"]["num_convs"] == 2
    bbox_heads = model_cfg["roi_head"]["bbox_head"]
    if cascade:
        assert model_cfg["roi_head"]["num_stages"] == 3 and len(bbox_heads) == 3
        assert [h["bbox_coder"]["target_stds"] for h in bbox_heads] == [
            [0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067]]
    else:
        assert bbox_heads["type"] == "Shared4Conv1FCBBoxHead"
    optimizer = cfg.optimizer
    assert (optimizer["type"], optimizer["lr"], optimizer["weight_decay"]) == ("AdamW", 1e-4, 0.1)
    assert optimizer["constructor"] == "LayerDecayOptimizerConstructor"
    paramwise = optimizer["paramwise_cfg"]
    assert paramwise["layer_decay_rate"] == 0.7
    assert paramwise["num_layers"] == (17 if "Small" in stem else 12)
    assert "momentum" not in optimizer  # the LSJ base's SGD placeholder is replaced, not merged
    lr = cfg.lr_config
    assert (lr["policy"], lr["warmup"], lr["warmup_iters"], lr["warmup_ratio"], list(lr["step"])) == \
        ("step", "linear", 250, 0.067, [22, 24])
    assert (cfg.runner["type"], cfg.runner["max_epochs"]) == ("EpochBasedRunner", 25)
    assert (cfg.data["train"]["type"], cfg.data["train"]["times"], cfg.data["samples_per_gpu"]) == \
        ("RepeatDataset", 4, 2)

    detector = build_detector(model_cfg)
    expected = MODELS[stem][1] + (CASCADE_EXTRA if cascade else 0)
    total = sum(p.numel() for p in detector.parameters())
    assert abs(total - expected) <= 100_000, (total, expected)
    backbone_total = sum(p.numel() for p in detector.backbone.parameters())
    assert backbone_total == manifest["total_parameters"]
    assert isinstance(detector.backbone, torch.nn.Module) and type(detector.backbone).__name__ == \
        manifest["backbone_class"]
