"""ResNet, FPN and ConvModule behaviour (mmcv / mmdetection 2.x semantics)."""
from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn
from torch.nn import functional as F

from mmdet.models import build_backbone, build_neck
from mmdet.models.layers.conv_module import ConvModule, build_norm_layer


def test_resnet18_matches_torchvision_and_loads_its_checkpoint(tmp_path):
    torch.manual_seed(0)
    reference = torchvision.models.resnet18().eval()
    ckpt = tmp_path / "resnet18_tv.pth"
    torch.save(reference.state_dict(), ckpt)
    model = build_backbone(dict(type="ResNet", depth=18, frozen_stages=-1, init_cfg=dict(type="Pretrained",
                                                                                            checkpoint=str(ckpt))))
    model.init_weights()
    model.eval()
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, reference.state_dict()[key], rtol=0, atol=0)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        outs = model(x)
        y = reference.maxpool(reference.relu(reference.bn1(reference.conv1(x))))
        expected = []
        for layer in (reference.layer1, reference.layer2, reference.layer3, reference.layer4):
            y = layer(y)
            expected.append(y)
    assert [o.shape[1] for o in outs] == [64, 128, 256, 512]
    for o, e in zip(outs, expected):
        torch.testing.assert_close(o, e)


def test_resnet50_shapes_frozen_stages_and_norm_eval():
    model = build_backbone(dict(type="ResNet", depth=50, frozen_stages=1, norm_eval=True, out_indices=(0, 1, 2, 3)))
    model.train()
    assert not model.conv1.weight.requires_grad and not model.layer1[0].conv1.weight.requires_grad
    assert model.layer2[0].conv1.weight.requires_grad
    assert all(not m.training for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert model.layer2[0].conv2.stride == (2, 2) and model.layer2[0].conv1.stride == (1, 1)  # pytorch style
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 256, 16, 16), (1, 512, 8, 8), (1, 1024, 4, 4), (1, 2048, 2, 2)]
    caffe = build_backbone(dict(type="ResNet", depth=50, style="caffe"))
    assert caffe.layer2[0].conv1.stride == (2, 2) and caffe.layer2[0].conv2.stride == (1, 1)


def test_resnet_norm_requires_grad_false_and_errors():
    model = build_backbone(dict(type="ResNet", depth=18, norm_cfg=dict(type="BN", requires_grad=False),
                                frozen_stages=-1))
    assert not model.bn1.weight.requires_grad and model.conv1.weight.requires_grad
    with pytest.raises(KeyError, match="ResNet depth must be one of"):
        build_backbone(dict(type="ResNet", depth=42))
    with pytest.raises(ValueError, match="compiled ops"):
        build_backbone(dict(type="ResNet", depth=50, dcn=dict(type="DCNv2")))


def test_resnet_default_init_zero_residual():
    model = build_backbone(dict(type="ResNet", depth=18))
    model.init_weights()
    assert torch.all(model.layer1[0].bn2.weight == 0) and torch.all(model.bn1.weight == 1)


def _fpn_inputs():
    torch.manual_seed(0)
    return tuple(torch.randn(1, c, s, s + 2) for c, s in zip((8, 16, 32, 64), (32, 16, 8, 4)))


def test_fpn_default_topdown_and_maxpool_p6():
    fpn = build_neck(dict(type="FPN", in_channels=[8, 16, 32, 64], out_channels=4, num_outs=5))
    fpn.init_weights()
    inputs = _fpn_inputs()
    outs = fpn(inputs)
    assert [tuple(o.shape[2:]) for o in outs] == [(32, 34), (16, 18), (8, 10), (4, 6), (2, 3)]
    torch.testing.assert_close(outs[4], outs[3][:, :, ::2, ::2])
    laterals = [conv.conv(x) for conv, x in zip(fpn.lateral_convs, inputs)]
    for i in (3, 2, 1):
        laterals[i - 1] = laterals[i - 1] + F.interpolate(laterals[i], size=laterals[i - 1].shape[2:], mode="nearest")
    torch.testing.assert_close(outs[0], fpn.fpn_convs[0].conv(laterals[0]))
    assert all(m.conv.bias is not None for m in fpn.lateral_convs)


@pytest.mark.parametrize("mode, source_channels", [("on_input", 64), ("on_lateral", 4), ("on_output", 4), (True, 64)])
def test_fpn_extra_convs(mode, source_channels):
    fpn = build_neck(dict(type="FPN", in_channels=[8, 16, 32, 64], out_channels=4, num_outs=6,
                          add_extra_convs=mode, relu_before_extra_convs=True))
    assert len(fpn.fpn_convs) == 6 and fpn.fpn_convs[4].conv.in_channels == source_channels
    outs = fpn(_fpn_inputs())
    assert [tuple(o.shape[2:]) for o in outs][4:] == [(2, 3), (1, 2)]


def test_fpn_ln_without_residual_is_vitdet_fpn():
    fpn = build_neck(dict(type="FPN", in_channels=[8] * 4, out_channels=4, num_outs=5,
                          norm_cfg=dict(type="LN", requires_grad=True), use_residual=False))
    inputs = tuple(torch.randn(2, 8, s, s) for s in (16, 8, 4, 2))
    with torch.no_grad():
        for p in fpn.parameters():
            p.normal_()
        outs = fpn(inputs)
    conv = fpn.lateral_convs[1]
    assert conv.conv.bias is None and isinstance(conv.ln, nn.LayerNorm)
    lateral = conv.conv(inputs[1])
    lateral = F.layer_norm(lateral.permute(0, 2, 3, 1), (4,), conv.ln.weight, conv.ln.bias, 1e-5).permute(0, 3, 1, 2)
    out_conv = fpn.fpn_convs[1]
    expected = F.layer_norm(out_conv.conv(lateral).permute(0, 2, 3, 1), (4,), out_conv.ln.weight, out_conv.ln.bias,
                            1e-5).permute(0, 3, 1, 2)
    torch.testing.assert_close(outs[1], expected)  # no top-down addition, no activation


def test_fpn_errors():
    with pytest.raises(ValueError, match="add_extra_convs"):
        build_neck(dict(type="FPN", in_channels=[8, 16], out_channels=4, num_outs=3, add_extra_convs="on_top"))
    fpn = build_neck(dict(type="FPN", in_channels=[8, 16], out_channels=4, num_outs=2))
    with pytest.raises(ValueError, match="FPN got 1 inputs"):
        fpn((torch.randn(1, 8, 4, 4),))


def test_conv_module_orders_and_names():
    m = ConvModule(3, 6, 3, padding=1, norm_cfg=dict(type="GN", num_groups=3), order=("norm", "conv", "act"))
    assert m.gn.num_channels == 3 and m.conv.bias is None
    x = torch.randn(2, 3, 5, 5)
    torch.testing.assert_close(m(x), F.relu(m.conv(m.gn(x))))
    assert list(ConvModule(3, 6, 1, act_cfg=dict(type="LeakyReLU", negative_slope=0.2)).state_dict()) == [
        "conv.weight", "conv.bias"]
    with pytest.raises(KeyError, match="GN needs 'num_groups'"):
        build_norm_layer(dict(type="GN"), 8)
    with pytest.raises(KeyError, match="unknown norm layer type 'BatchNorm'"):
        build_norm_layer(dict(type="BatchNorm"), 8)
    name, layer = build_norm_layer(dict(type="SyncBN", requires_grad=False), 8, postfix=2)
    assert name == "bn2" and isinstance(layer, nn.SyncBatchNorm) and not layer.weight.requires_grad
    layer.train()
    y = layer(torch.randn(4, 8, 3, 3))  # single process: plain BatchNorm statistics
    assert torch.allclose(y.mean((0, 2, 3)), torch.zeros(8), atol=1e-5)
