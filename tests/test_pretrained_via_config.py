"""``--cfg-options model.pretrained=PATH`` loads official checkpoints into every transformer backbone.

For each family: the seed config's detector is built with the golden (reduced-size) backbone arguments, the
golden loader case's official-format checkpoint is passed as ``model.pretrained`` exactly as a user does it, and
``model.init_weights()`` (what tools/train.py calls) must give the backbone outputs the official loader gave.
"""
from pathlib import Path

import pytest
import torch

from mmdet.engine import Config
from mmdet.models import build_detector

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "golden"

CASES = [
    ("vitaev2/loader.pt", "configs/vitaev2/mask_rcnn_vitaev2_s_mstrain_480-800_adamw_1x_coco.py"),
    ("vitaev2_vsa/vsa_s_loader.pt", "configs/vitaev2_vsa/mask_rcnn_vitaev2_vsa_s_mstrain_480-800_adamw_1x_coco.py"),
    ("vitdet_vit/loader.pt", "configs/vitdet/ViTDet-ViT-Base-100e.py"),
    ("vitdet_vitae_b/loader.pt", "configs/vitdet/ViTDet-ViTAE-Base-100e.py"),
    ("vitdet_vitae_s/loader.pt", "configs/vitdet/ViTDet-ViTAE-Small-100e.py"),
    ("swin/loader.pt", "configs/swin/mask_rcnn_swin_tiny_patch4_window7_mstrain_480-800_adamw_1x_coco.py"),
    ("swin_visformer/loader.pt", "configs/swin_visformer/mask_rcnn_swin_visformer_small_v2_adamw_1x_coco.py"),
]


@pytest.mark.parametrize("loader_file,config", CASES, ids=[c[0].split("/")[0] for c in CASES])
def test_model_pretrained_cfg_option_loads_official_checkpoint(loader_file, config):
    case = torch.load(GOLDEN / loader_file, weights_only=True)
    family = GOLDEN / loader_file.split("/")[0]
    start = torch.load(family / case["init_state_dict_from"], weights_only=True)
    checkpoint = family / case["checkpoint_file_for_loader"]

    cfg = Config.fromfile(str(ROOT / config))
    backbone_type = cfg.model.backbone.type
    cfg.model.backbone = dict(type=backbone_type, **case["constructor_kwargs"])
    cfg.model.neck.in_channels = [o.shape[1] for o in case["outputs"][0]]
    cfg.merge_from_dict({"model.pretrained": str(checkpoint)})       # = --cfg-options model.pretrained=PATH
    model = build_detector(cfg.model)
    model.backbone.load_state_dict(start["state_dict"], strict=True)  # keys absent from the file keep these values
    model.init_weights()
    model.eval()
    with torch.no_grad():
        outputs = model.backbone(start["inputs"][1].float())
    tol = case["tolerance"]
    assert len(outputs) == len(case["outputs"][0])
    for ours, ref in zip(outputs, case["outputs"][0]):
        torch.testing.assert_close(ours, ref, atol=tol["atol"], rtol=tol["rtol"])
