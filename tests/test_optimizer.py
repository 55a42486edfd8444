"""build_optimizer: torch.optim registration, DefaultOptimizerConstructor paramwise rules (mmcv) and
ViTDet's LayerDecayOptimizerConstructor, checked through the lr / weight decay each parameter ends up with."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from mmdet.engine.config import ConfigDict
from mmdet.engine.optimizer import (DefaultOptimizerConstructor, LayerDecayOptimizerConstructor, build_optimizer,
                                    sort_custom_keys, vit_layer_id)
from mmdet.registry import OPTIMIZER_BUILDERS, OPTIMIZERS

BASE_LR, BASE_WD = 1e-4, 0.05
SEED_CUSTOM_KEYS = {"absolute_pos_embed": dict(decay_mult=0.0), "relative_position_bias_table": dict(decay_mult=0.0),
                    "norm": dict(decay_mult=0.0)}


class _Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.relative_position_bias_table = nn.Parameter(torch.zeros(9, 2))
        self.qkv = nn.Linear(8, 24)


class _Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1 = nn.LayerNorm(8)
        self.attn = _Attention()


class _ConvBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, bias=False)
        self.bn = nn.BatchNorm2d(8)


class TinyDetector(nn.Module):
    """Parameter names like a Swin/ViTAEv2 Mask R-CNN: backbone norms, rel-pos tables, head BN named ``bn``."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Module()
        self.backbone.absolute_pos_embed = nn.Parameter(torch.zeros(1, 8, 4, 4))
        self.backbone.stem = nn.Conv2d(3, 8, 3)
        self.backbone.dw = nn.Conv2d(8, 8, 3, groups=8)
        self.backbone.layers = nn.ModuleList([_Block()])
        self.backbone.frozen = nn.Linear(2, 2)
        self.backbone.frozen.requires_grad_(False)
        self.neck = nn.Module()
        self.neck.conv = nn.Conv2d(8, 8, 1)
        self.neck.gn = nn.GroupNorm(2, 8)
        self.roi_head = nn.Module()
        self.roi_head.shared_convs = nn.ModuleList([_ConvBN()])
        self.roi_head.fc_cls = nn.Linear(8, 3)
        self.scale = nn.Parameter(torch.ones(1))


def _lr_wd(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, tuple[float, float]]:
    """name -> (lr, weight_decay) of the param group holding that parameter."""
    where = {id(p): group for group in optimizer.param_groups for p in group["params"]}
    return {name: (where[id(p)]["lr"], where[id(p)]["weight_decay"]) for name, p in model.named_parameters()
            if id(p) in where}


def _approx(table: dict[str, tuple[float, float]]) -> dict:
    return {k: (pytest.approx(lr, rel=1e-12), pytest.approx(wd, rel=1e-12, abs=0)) for k, (lr, wd) in table.items()}


def test_every_torch_optimizer_is_registered():
    for name in ("SGD", "Adam", "AdamW", "Adamax", "Adagrad", "Adadelta", "RMSprop", "Rprop", "ASGD", "NAdam",
                 "RAdam", "SparseAdam", "LBFGS"):
        assert OPTIMIZERS.get(name) is getattr(torch.optim, name)
    assert "DefaultOptimizerConstructor" in OPTIMIZER_BUILDERS
    assert "LayerDecayOptimizerConstructor" in OPTIMIZER_BUILDERS


def test_without_paramwise_cfg_one_group_with_all_args():
    model = TinyDetector()
    cfg = dict(type="SGD", lr=0.02, momentum=0.9, weight_decay=1e-4)
    optimizer = build_optimizer(model, cfg)
    assert type(optimizer) is torch.optim.SGD and len(optimizer.param_groups) == 1
    group = optimizer.param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.02, 0.9, 1e-4)
    assert len(group["params"]) == len(list(model.parameters()))
    assert cfg == dict(type="SGD", lr=0.02, momentum=0.9, weight_decay=1e-4)  # not modified


def test_seed_custom_keys_give_expected_lr_and_weight_decay():
    """The 2.11 seeds' paramwise_cfg: 'norm' in the name -> wd 0, but head BN (``bn``) keeps wd 0.05."""
    model = TinyDetector()
    cfg = ConfigDict(type="AdamW", lr=BASE_LR, betas=(0.9, 0.999), weight_decay=BASE_WD,
                     paramwise_cfg=dict(custom_keys=SEED_CUSTOM_KEYS))
    optimizer = build_optimizer(model, cfg)
    assert type(optimizer) is torch.optim.AdamW
    # one group per parameter (frozen ones included), in module-tree order
    assert len(optimizer.param_groups) == len(list(model.parameters()))
    assert optimizer.param_groups[0]["params"][0] is model.scale  # the root's own params come first
    got = _lr_wd(model, optimizer)
    lr, wd = BASE_LR, BASE_WD
    assert got == _approx({
        "scale": (lr, wd),
        "backbone.absolute_pos_embed": (lr, 0.0),
        "backbone.stem.weight": (lr, wd), "backbone.stem.bias": (lr, wd),
        "backbone.dw.weight": (lr, wd), "backbone.dw.bias": (lr, wd),
        "backbone.layers.0.norm1.weight": (lr, 0.0), "backbone.layers.0.norm1.bias": (lr, 0.0),
        "backbone.layers.0.attn.relative_position_bias_table": (lr, 0.0),
        "backbone.layers.0.attn.qkv.weight": (lr, wd), "backbone.layers.0.attn.qkv.bias": (lr, wd),
        "neck.conv.weight": (lr, wd), "neck.conv.bias": (lr, wd),
        "neck.gn.weight": (lr, wd), "neck.gn.bias": (lr, wd),
        "roi_head.shared_convs.0.conv.weight": (lr, wd),
        "roi_head.shared_convs.0.bn.weight": (lr, wd), "roi_head.shared_convs.0.bn.bias": (lr, wd),
        "roi_head.fc_cls.weight": (lr, wd), "roi_head.fc_cls.bias": (lr, wd),
        "backbone.frozen.weight": (lr, wd), "backbone.frozen.bias": (lr, wd),
    })
    frozen = [g for g in optimizer.param_groups if not g["params"][0].requires_grad]
    assert [g["params"][0] for g in frozen] == [model.backbone.frozen.weight, model.backbone.frozen.bias]


def test_bias_norm_dwconv_multipliers_and_custom_key_precedence():
    model = TinyDetector()
    cfg = dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=0.01,
               paramwise_cfg=dict(bias_lr_mult=2.0, bias_decay_mult=0.0, norm_decay_mult=0.0, dwconv_decay_mult=0.5,
                                  custom_keys={"qkv": dict(lr_mult=0.1, decay_mult=3.0)}))
    got = _lr_wd(model, build_optimizer(model, cfg))
    assert got == _approx({
        "scale": (0.1, 0.01),
        "backbone.absolute_pos_embed": (0.1, 0.01),
        "backbone.stem.weight": (0.1, 0.01), "backbone.stem.bias": (0.2, 0.0),
        # depthwise conv: dwconv_decay_mult wins over bias_decay_mult for its bias; bias_lr_mult still applies
        "backbone.dw.weight": (0.1, 0.005), "backbone.dw.bias": (0.2, 0.005),
        # norm modules: norm_decay_mult; their bias gets no bias_lr_mult
        "backbone.layers.0.norm1.weight": (0.1, 0.0), "backbone.layers.0.norm1.bias": (0.1, 0.0),
        "backbone.layers.0.attn.relative_position_bias_table": (0.1, 0.01),
        # a custom key match sets lr and wd and nothing else applies (no bias_lr_mult / bias_decay_mult)
        "backbone.layers.0.attn.qkv.weight": (0.01, 0.03), "backbone.layers.0.attn.qkv.bias": (0.01, 0.03),
        "neck.conv.weight": (0.1, 0.01), "neck.conv.bias": (0.2, 0.0),
        "neck.gn.weight": (0.1, 0.0), "neck.gn.bias": (0.1, 0.0),
        "roi_head.shared_convs.0.conv.weight": (0.1, 0.01),
        "roi_head.shared_convs.0.bn.weight": (0.1, 0.0), "roi_head.shared_convs.0.bn.bias": (0.1, 0.0),
        "roi_head.fc_cls.weight": (0.1, 0.01), "roi_head.fc_cls.bias": (0.2, 0.0),
        "backbone.frozen.weight": (0.1, 0.01), "backbone.frozen.bias": (0.1, 0.01),  # frozen: defaults only
    })


def test_custom_keys_longest_first_then_alphabetical():
    assert sort_custom_keys({"norm": 1, "backbone": 1, "layers.0.norm": 1, "stem": 1, "bias": 1}) == [
        "layers.0.norm", "backbone", "bias", "norm", "stem"]
    model = TinyDetector()
    cfg = dict(type="SGD", lr=1.0, weight_decay=1.0,
               paramwise_cfg=dict(custom_keys={"norm": dict(decay_mult=0.0), "layers.0.norm": dict(lr_mult=0.5),
                                               "backbone": dict(lr_mult=0.3), "stem": dict(lr_mult=5.0),
                                               "bias": dict(lr_mult=3.0, decay_mult=0.25)}))
    got = _lr_wd(model, build_optimizer(model, cfg))
    assert got["backbone.layers.0.norm1.weight"] == pytest.approx((0.5, 1.0))  # longest key, not 'norm'
    assert got["backbone.stem.weight"] == pytest.approx((0.3, 1.0))  # 'backbone' (8 chars) before 'stem'
    assert got["neck.gn.weight"] == pytest.approx((1.0, 1.0))  # no key matches
    assert got["neck.conv.bias"] == pytest.approx((3.0, 0.25))
    # same length: alphabetical order decides ('bias' < 'stem')
    detached = nn.Module()
    detached.stem = nn.Conv2d(1, 1, 1)
    got = _lr_wd(detached, build_optimizer(detached, dict(
        type="SGD", lr=1.0, weight_decay=1.0,
        paramwise_cfg=dict(custom_keys={"stem": dict(lr_mult=5.0), "bias": dict(lr_mult=3.0)}))))
    assert got == {"stem.weight": (5.0, 1.0), "stem.bias": (3.0, 1.0)}


def test_shared_parameters_need_bypass_duplicate(mmdet_warnings):
    model = nn.Module()
    model.a = nn.Linear(2, 2)
    model.b = nn.Module()
    model.b.shared = model.a  # the same module reachable under two names
    model.b.own = nn.Linear(2, 2)
    cfg = dict(type="SGD", lr=0.1, weight_decay=0.0, paramwise_cfg=dict(bias_lr_mult=2.0))
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        build_optimizer(model, cfg)
    cfg["paramwise_cfg"]["bypass_duplicate"] = True
    optimizer = build_optimizer(model, cfg)
    assert len(optimizer.param_groups) == 4
    assert mmdet_warnings == ["b.shared.weight is duplicate. It is skipped since bypass_duplicate=True",
                              "b.shared.bias is duplicate. It is skipped since bypass_duplicate=True"]


def test_unknown_paramwise_key_is_reported(mmdet_warnings):
    model = TinyDetector()
    build_optimizer(model, dict(type="AdamW", lr=1e-4, weight_decay=0.1,
                                paramwise_cfg=dict(num_layers=12, layer_decay_rate=0.7)))
    assert len(mmdet_warnings) == 1
    assert "paramwise_cfg keys ['layer_decay_rate', 'num_layers'] are not used by DefaultOptimizerConstructor" in \
        mmdet_warnings[0]


def test_wrapped_model_is_unwrapped_and_errors_are_clear():
    class Wrapper(nn.Module):
        def __init__(self, module):
            super().__init__()
            self.module = module

    model = TinyDetector()
    optimizer = build_optimizer(Wrapper(model), dict(type="SGD", lr=1.0, weight_decay=1.0,
                                                     paramwise_cfg=dict(custom_keys={"backbone.stem": {}})))
    assert _lr_wd(model, optimizer)["backbone.stem.weight"] == (1.0, 1.0)
    with pytest.raises(KeyError, match="'AdamWW' is not registered in the optimizer registry; did you mean 'AdamW'"):
        build_optimizer(model, dict(type="AdamWW", lr=1.0))
    with pytest.raises(KeyError, match="'LayerDecayConstructor' is not registered in the optimizer constructor"):
        build_optimizer(model, dict(type="AdamW", lr=1.0, constructor="LayerDecayConstructor"))
    with pytest.raises(ValueError, match="paramwise_cfg.norm_decay_mult needs optimizer.weight_decay"):
        build_optimizer(model, dict(type="SGD", lr=1.0, paramwise_cfg=dict(norm_decay_mult=0.0)))
    with pytest.raises(TypeError, match=r"custom_keys\['norm'\] should be a dict"):
        build_optimizer(model, dict(type="SGD", lr=1.0, paramwise_cfg=dict(custom_keys={"norm": 0.0})))
    with pytest.raises(TypeError, match="SGD .*could not be built"):
        build_optimizer(model, dict(type="SGD", lr=1.0, momentun=0.9))


# ---------------------------------------------------------------------------------------------
# LayerDecayOptimizerConstructor (ViTDet, vitdet_visformer.md §2.3)
# ---------------------------------------------------------------------------------------------
class _VitBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1 = nn.LayerNorm(4)
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(4, 12)
        self.attn.rel_pos_h = nn.Parameter(torch.zeros(7, 2))
        self.attn.rel_pos_w = nn.Parameter(torch.zeros(7, 2))
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(4, 8)


class ViTDetLike(nn.Module):
    """Parameter names of a ViTDet Mask R-CNN (ViT-B layout, 12 blocks, tiny widths)."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Module()
        self.backbone.cls_token = nn.Parameter(torch.zeros(1, 1, 4))
        self.backbone.pos_embed = nn.Parameter(torch.zeros(1, 5, 4))
        self.backbone.patch_embed = nn.Module()
        self.backbone.patch_embed.proj = nn.Conv2d(3, 4, 4, 4)
        self.backbone.blocks = nn.ModuleList([_VitBlock() for _ in range(12)])
        self.backbone.fpn1 = nn.Sequential(nn.ConvTranspose2d(4, 4, 2, 2), nn.BatchNorm2d(4))
        self.backbone.norm = nn.LayerNorm(4)
        self.neck = nn.Module()
        self.neck.lateral_convs = nn.ModuleList([nn.Module()])
        self.neck.lateral_convs[0].conv = nn.Conv2d(4, 4, 1, bias=False)
        self.neck.lateral_convs[0].ln = nn.LayerNorm(4)
        self.roi_head = nn.Module()
        self.roi_head.fc_cls = nn.Linear(4, 81)


VITDET_PARAMWISE = dict(num_layers=12, layer_decay_rate=0.7, custom_keys={
    "bias": dict(decay_multi=0.0), "pos_embed": dict(decay_mult=0.0),
    "relative_position_bias_table": dict(decay_mult=0.0), "norm": dict(decay_mult=0.0),
    "rel_pos_h": dict(decay_mult=0.0), "rel_pos_w": dict(decay_mult=0.0)})


def _vitdet_optimizer(model, paramwise_cfg):
    return build_optimizer(model, dict(type="AdamW", lr=1e-4, betas=(0.9, 0.999), weight_decay=0.1,
                                       constructor="LayerDecayOptimizerConstructor", paramwise_cfg=paramwise_cfg))


def test_layer_decay_lr_and_weight_decay_of_vitdet_parameters():
    model = ViTDetLike()
    optimizer = _vitdet_optimizer(model, VITDET_PARAMWISE)
    got = _lr_wd(model, optimizer)
    # hand-computed from lr = 1e-4 * 0.7 ** (14 - layer_id - 1): id 0 -> 0.7**13, block i -> 0.7**(12 - i)
    id0, blk0, blk5, blk11, top = 9.688901040699992e-07, 1.384128720099999e-06, 8.235429999999996e-06, 7e-05, 1e-4
    expected = {
        "backbone.cls_token": (id0, 0.0), "backbone.pos_embed": (id0, 0.0),
        "backbone.patch_embed.proj.weight": (id0, 0.1), "backbone.patch_embed.proj.bias": (id0, 0.0),
        "backbone.blocks.0.norm1.weight": (blk0, 0.0), "backbone.blocks.0.norm1.bias": (blk0, 0.0),
        "backbone.blocks.0.attn.qkv.weight": (blk0, 0.1), "backbone.blocks.0.attn.qkv.bias": (blk0, 0.0),
        "backbone.blocks.0.attn.rel_pos_h": (blk0, 0.0), "backbone.blocks.0.attn.rel_pos_w": (blk0, 0.0),
        "backbone.blocks.5.mlp.fc1.weight": (blk5, 0.1), "backbone.blocks.5.mlp.fc1.bias": (blk5, 0.0),
        "backbone.blocks.11.attn.qkv.weight": (blk11, 0.1), "backbone.blocks.11.norm1.weight": (blk11, 0.0),
        "backbone.fpn1.0.weight": (top, 0.1), "backbone.fpn1.0.bias": (top, 0.0),
        "backbone.fpn1.1.weight": (top, 0.0), "backbone.norm.weight": (top, 0.0),
        "neck.lateral_convs.0.conv.weight": (top, 0.1), "neck.lateral_convs.0.ln.weight": (top, 0.0),
        "roi_head.fc_cls.weight": (top, 0.1), "roi_head.fc_cls.bias": (top, 0.0),
    }
    for name, (lr, wd) in expected.items():
        assert got[name] == (pytest.approx(lr, rel=1e-9), wd), name
    assert len(got) == len(list(model.parameters()))
    # spec numbers: scale 0.00969 for id 0, 0.01384 for block 0, 0.7 for block 11
    groups = {g["group_name"]: g for g in optimizer.param_groups}
    assert groups["layer_0_no_decay_pos_embed"]["lr_scale"] == pytest.approx(0.00969, abs=5e-6)
    assert groups["layer_1_decay"]["lr_scale"] == pytest.approx(0.01384, abs=5e-6)
    assert groups["layer_12_decay"]["lr_scale"] == pytest.approx(0.7)
    # custom keys: alphabetical first match only names the group; 'bias' before 'norm' for norm biases
    assert groups["layer_1_no_decay_bias"]["param_names"] == [
        "backbone.blocks.0.norm1.bias", "backbone.blocks.0.attn.qkv.bias", "backbone.blocks.0.mlp.fc1.bias"]
    assert groups["layer_1_no_decay_norm"]["param_names"] == ["backbone.blocks.0.norm1.weight"]
    assert groups["layer_1_no_decay_rel_pos_h"]["param_names"] == ["backbone.blocks.0.attn.rel_pos_h"]
    assert list(groups)[:4] == ["layer_0_no_decay", "layer_0_no_decay_pos_embed", "layer_0_decay",
                                "layer_0_no_decay_bias"]
    # the optimizer steps with the extra group keys
    sum(p.sum() for p in model.parameters()).backward()
    optimizer.step()


def test_layer_decay_custom_keys_read_lr_mult_only():
    model = ViTDetLike()
    paramwise = dict(num_layers=12, layer_decay_rate=0.7,
                     custom_keys={"fc_cls": dict(lr_mult=2.0, decay_mult=0.0), "qkv": dict(decay_mult=0.0)})
    optimizer = _vitdet_optimizer(model, paramwise)
    got = _lr_wd(model, optimizer)
    assert got["roi_head.fc_cls.weight"] == (pytest.approx(2e-4), 0.1)  # decay_mult is not read
    assert got["backbone.blocks.3.attn.qkv.weight"] == (pytest.approx(1e-4 * 0.7 ** 9), 0.1)
    names = [g["group_name"] for g in optimizer.param_groups]
    assert "layer_13_decay_fc_cls" in names and "layer_4_decay_qkv" in names


def test_layer_decay_vitae_s_stage_layer_ids():
    """ViTAE-S names with layer_sep=[0, 1, 2] and the logged run's num_layers=17 (L = 19)."""
    model = nn.Module()
    model.backbone = nn.Module()
    model.backbone.layers = nn.ModuleList()
    for num_nc in (1, 1, 14):
        stage = nn.Module()
        stage.RC = nn.Linear(2, 2)
        stage.NC = nn.ModuleList([nn.Linear(2, 2) for _ in range(num_nc)])
        model.backbone.layers.append(stage)
    model.backbone.layers[2].NC[0].w = nn.Parameter(torch.zeros(2, 2), requires_grad=False)  # performer matrix
    model.rpn_head = nn.Conv2d(2, 3, 1)
    optimizer = _vitdet_optimizer(model, dict(num_layers=17, layer_decay_rate=0.7, layer_sep=[0, 1, 2]))
    got = _lr_wd(model, optimizer)
    expected_scale = {
        "backbone.layers.0.RC.weight": 0.001628413597910447,  # 0.7 ** 18
        "backbone.layers.1.RC.weight": 0.0023263051398720674,  # 0.7 ** 17
        "backbone.layers.0.NC.0.weight": 0.0023263051398720674,  # layer_sep[0] + 0 + 1
        "backbone.layers.2.RC.weight": 0.0033232930569600965,  # 0.7 ** 16
        "backbone.layers.2.NC.0.weight": 0.004747561509942996,  # 0.7 ** 15
        "backbone.layers.2.NC.13.weight": 0.48999999999999994,  # 0.7 ** 2
        "rpn_head.weight": 1.0,
    }
    for name, scale in expected_scale.items():
        assert got[name] == (pytest.approx(1e-4 * scale, rel=1e-9), 0.1), name
    assert "backbone.layers.2.NC.0.w" not in got  # frozen parameters are skipped
    assert sum(len(g["params"]) for g in optimizer.param_groups) == sum(
        p.requires_grad for p in model.parameters())
    with pytest.raises(KeyError, match="backbone.layers.0.RC.weight needs optimizer.paramwise_cfg.layer_sep"):
        _vitdet_optimizer(model, dict(num_layers=17, layer_decay_rate=0.7))


def test_layer_id_rule_and_required_keys():
    assert vit_layer_id("backbone.mask_token", 14) == 0
    assert vit_layer_id("backbone.pos_embed_extra", 14) == 13  # exact names only for the token/pos params
    assert vit_layer_id("backbone.patch_embed.norm.weight", 14) == 0
    assert vit_layer_id("backbone.blocks.7.attn.proj.weight", 14) == 8
    assert vit_layer_id("blocks.0.attn.qkv.weight", 14) == 13  # no 'backbone.' prefix: not a backbone layer
    with pytest.raises(KeyError, match="needs optimizer.paramwise_cfg.layer_decay_rate"):
        LayerDecayOptimizerConstructor(dict(type="AdamW", lr=1e-4, weight_decay=0.1), dict(num_layers=12))
    assert isinstance(DefaultOptimizerConstructor(dict(type="SGD", lr=0.1)), DefaultOptimizerConstructor)
