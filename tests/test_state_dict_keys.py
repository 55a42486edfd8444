"""State-dict key names / shapes / counts of the detectors against mmdetection 2.x (spec §4, golden key order)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from mmdet.engine.config import Config
from mmdet.models import build_detector, build_head, build_neck

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "golden" / "detectors"
MASK_RCNN = ROOT / "configs" / "mask_rcnn" / "mask_rcnn_r50_fpn_1x_coco.py"
CASCADE = ROOT / "configs" / "cascade_rcnn" / "cascade_mask_rcnn_r50_fpn_1x_coco.py"
CASCADE_SEED = (ROOT / "configs" / "cascade_rcnn"
                / "cascade_mask_rcnn_r50_fpn_mstrain_480-800_giou_4conv1f_adamw_1x_coco.py")


def build_on_meta(config_path: Path) -> torch.nn.Module:
    """Build the config's detector without allocating weights."""
    with torch.device("meta"):
        return build_detector(Config.fromfile(str(config_path)).model)


def shapes(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def test_mask_rcnn_keys_equal_golden_checkpoint():
    model = build_on_meta(MASK_RCNN)
    golden = torch.load(GOLDEN / "mask_rcnn_r50_fpn_weights_q4.pt", map_location="cpu", weights_only=True)
    ref = {k: tuple(golden["q4"][k]["shape"]) if k in golden["q4"] else tuple(golden["plain"][k].shape)
           for k in golden["key_order"]}
    ours = shapes(model)
    assert list(ours) == list(golden["key_order"])  # names and order
    assert ours == ref
    assert len(ours) == 360
    assert sum(torch.Size(s).numel() for s in ours.values()) == 44_449_509
    assert sum(p.numel() for p in model.parameters()) == 44_396_336
    backbone = {k: s for k, s in ours.items() if k.startswith("backbone.")}
    assert len(backbone) == 318 and sum(torch.Size(s).numel() for s in backbone.values()) == 23_561_205
    assert ours["roi_head.mask_head.upsample.weight"] == (256, 256, 2, 2)
    assert ours["roi_head.bbox_head.fc_cls.weight"] == (81, 1024)


def test_stock_cascade_counts():
    model = build_on_meta(CASCADE)
    ours = shapes(model)
    assert len(ours) == 400
    assert sum(p.numel() for p in model.parameters()) == 77_324_606
    for stage in range(3):
        assert ours[f"roi_head.bbox_head.{stage}.fc_reg.weight"] == (4, 1024)
        assert ours[f"roi_head.bbox_head.{stage}.shared_fcs.1.weight"] == (1024, 1024)
        assert ours[f"roi_head.mask_head.{stage}.conv_logits.weight"] == (80, 256, 1, 1)


def test_seed_4conv1fc_cascade_keys():
    model = build_on_meta(CASCADE_SEED)
    ours = shapes(model)
    assert len(ours) == 466
    assert sum(torch.Size(s).numel() for s in ours.values()) == 82_290_867
    mask_rcnn = shapes(build_on_meta(MASK_RCNN))
    shared = {k: s for k, s in mask_rcnn.items() if not k.startswith("roi_head.")}
    assert {k: s for k, s in ours.items() if not k.startswith("roi_head.")} == shared
    for stage in range(3):
        bbox = {k[len(f"roi_head.bbox_head.{stage}."):]: s for k, s in ours.items()
                if k.startswith(f"roi_head.bbox_head.{stage}.")}
        expected = {}
        for conv in range(4):
            expected[f"shared_convs.{conv}.conv.weight"] = (256, 256, 3, 3)
            for buf in ("weight", "bias", "running_mean", "running_var"):
                expected[f"shared_convs.{conv}.bn.{buf}"] = (256,)
            expected[f"shared_convs.{conv}.bn.num_batches_tracked"] = ()
        expected.update({"shared_fcs.0.weight": (1024, 12544), "shared_fcs.0.bias": (1024,),
                         "fc_cls.weight": (81, 1024), "fc_cls.bias": (81,), "fc_reg.weight": (320, 1024),
                         "fc_reg.bias": (320,)})
        assert bbox == expected
        assert sum(torch.Size(s).numel() for s in bbox.values()) == 15_620_501
        mask = {k[len(f"roi_head.mask_head.{stage}."):]: s for k, s in ours.items()
                if k.startswith(f"roi_head.mask_head.{stage}.")}
        assert mask == {k[len("roi_head.mask_head."):]: s for k, s in mask_rcnn.items()
                        if k.startswith("roi_head.mask_head.")}
        assert len(mask) == 12 and sum(torch.Size(s).numel() for s in mask.values()) == 2_643_280
    # SyncBN heads are nn.SyncBatchNorm modules saved under ``bn``
    assert isinstance(model.roi_head.bbox_head[0].shared_convs[0].bn, torch.nn.SyncBatchNorm)


LN = dict(type="LN", requires_grad=True)


def test_vitdet_ln_fpn_keys():
    neck = build_neck(dict(type="FPN", in_channels=[768] * 4, out_channels=256, num_outs=5, norm_cfg=LN,
                           use_residual=False))
    ours = shapes(neck)
    expected = {}
    for i in range(4):
        expected[f"lateral_convs.{i}.conv.weight"] = (256, 768, 1, 1)
        expected[f"lateral_convs.{i}.ln.weight"] = expected[f"lateral_convs.{i}.ln.bias"] = (256,)
        expected[f"fpn_convs.{i}.conv.weight"] = (256, 256, 3, 3)
        expected[f"fpn_convs.{i}.ln.weight"] = expected[f"fpn_convs.{i}.ln.bias"] = (256,)
    assert ours == expected


def test_vitdet_ln_head_keys():
    bbox_head = build_head(dict(type="Shared4Conv1FCBBoxHead", in_channels=256, conv_out_channels=256,
                                fc_out_channels=1024, roi_feat_size=7, num_classes=80, norm_cfg=LN,
                                loss_bbox=dict(type="L1Loss", loss_weight=1.0)))
    keys = list(bbox_head.state_dict())
    assert [k for k in keys if k.startswith("shared_convs.")] == [
        f"shared_convs.{i}.{p}" for i in range(4) for p in ("conv.weight", "ln.weight", "ln.bias")]
    assert shapes(bbox_head)["shared_fcs.0.weight"] == (1024, 256 * 49)
    mask_head = build_head(dict(type="FCNMaskHead", num_convs=4, in_channels=256, conv_out_channels=256,
                                num_classes=80, norm_cfg=LN))
    assert list(mask_head.state_dict()) == (
        [f"convs.{i}.{p}" for i in range(4) for p in ("conv.weight", "ln.weight", "ln.bias")]
        + ["upsample.weight", "upsample.bias", "conv_logits.weight", "conv_logits.bias"])


@pytest.mark.parametrize("norm_cfg, name", [(dict(type="BN"), "bn"), (dict(type="SyncBN"), "bn"),
                                             (dict(type="GN", num_groups=32), "gn"), (LN, "ln")])
def test_head_norm_key_names(norm_cfg, name):
    head = build_head(dict(type="ConvFCBBoxHead", num_shared_convs=1, num_shared_fcs=1, norm_cfg=norm_cfg,
                           loss_bbox=dict(type="L1Loss")))
    norm_keys = [k for k in head.state_dict() if k.startswith("shared_convs.0.") and "conv." not in k]
    assert norm_keys and all(re.fullmatch(rf"shared_convs\.0\.{name}\.\w+", k) for k in norm_keys)
    assert "shared_convs.0.conv.bias" not in head.state_dict()  # bias='auto' drops the conv bias under a norm
