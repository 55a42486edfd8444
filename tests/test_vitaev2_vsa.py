"""ViTAEv2*+VSA backbone: parity with the official code (golden files), loader, small maps, checkpointing."""
import logging
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mmdet.engine.checkpoint import load_checkpoint
from mmdet.models.backbones.vitaev2_vsa import ViTAEv2_VSA
from mmdet.models.layers.vitae_cells import VSAWindowAttention
from mmdet.registry import BACKBONES

from backbone_golden import assert_outputs_close

GOLDEN = Path(__file__).resolve().parent / "data" / "golden" / "vitaev2_vsa"


def load_case(name):
    return torch.load(GOLDEN / name, weights_only=True)


@pytest.fixture(scope="module")
def s_case():
    return load_case("vsa_s_eval.pt")


def build(case, **overrides):
    model = ViTAEv2_VSA(**dict(case["constructor_kwargs"], **overrides))
    model.load_state_dict(case["state_dict"], strict=True)
    return model


@pytest.mark.parametrize("name", ["vsa_s_eval.pt", "vsa_48m_eval.pt"])
def test_eval_parity_with_official(name):
    case = load_case(name)
    assert BACKBONES.get("ViTAEv2_VSA") is ViTAEv2_VSA
    model = build(case).eval()
    assert list(model.state_dict()) == list(case["state_dict"])
    with torch.no_grad():
        for x, refs in zip(case["inputs"], case["outputs"]):
            assert_outputs_close(model(x.float()), refs, case["tolerance"])


@pytest.mark.parametrize("name", ["vsa_s_loader.pt", "vsa_s_loader_relpos_resize_ws5.pt"])
def test_official_loader_cases(s_case, name, caplog):
    case = load_case(name)
    model = build(s_case, **case["constructor_kwargs"])
    with caplog.at_level(logging.INFO, logger="mmdet"):
        load_checkpoint(model, str(GOLDEN / case["checkpoint_file_for_loader"]), logger=logging.getLogger("mmdet"))
    assert "loading from state_dict_ema" in caplog.text
    assert "head.weight" in caplog.text and "head.bias" in caplog.text
    state = model.state_dict()
    for key, ref in case["converted_entries"].items():  # bicubically resized relative-position tables
        torch.testing.assert_close(state[key], ref, atol=case["tolerance"]["atol"], rtol=case["tolerance"]["rtol"])
    for key, (total, total_abs) in case["state_dict_after_load_fingerprint"].items():
        value = state[key].double()
        assert value.sum().item() == pytest.approx(total, rel=1e-5, abs=1e-5), key
        assert value.abs().sum().item() == pytest.approx(total_abs, rel=1e-5, abs=1e-5), key
    model.eval()
    with torch.no_grad():
        outs = model(s_case["inputs"][1].float())
    assert_outputs_close(outs, case["outputs"][0], case["tolerance"])


def test_init_weights_pretrained(s_case):
    case = load_case("vsa_s_loader.pt")
    model = build(s_case)
    model.init_weights(pretrained=str(GOLDEN / case["checkpoint_file_for_loader"]))
    with torch.no_grad():
        outs = model.eval()(s_case["inputs"][1].float())
    assert_outputs_close(outs, case["outputs"][0], case["tolerance"])


def test_maps_under_window_size_stay_finite(s_case):
    """Upstream divides the offsets by h // 7 = 0 here (inf/nan); we treat the window count as 1."""
    model = build(s_case).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 320))  # stride-32 map 2x10, stride-16 map 4x20
    assert [tuple(o.shape[-2:]) for o in outs] == [(16, 80), (8, 40), (4, 20), (2, 10)]
    assert all(torch.isfinite(o).all() for o in outs)


def test_zero_sampling_is_window_attention_with_relative_bias():
    """With zero offset/scale convs, VSA is plain window attention (zero-padded q/k/v) plus the bias."""
    torch.manual_seed(0)
    attn = VSAWindowAttention(16, 2, out_dim=8, window_size=7).eval()
    for seq in (attn.sampling_offsets, attn.sampling_scales):
        torch.nn.init.zeros_(seq[2].weight)
        torch.nn.init.zeros_(seq[2].bias)
    x = torch.randn(2, 10, 12, 16)
    with torch.no_grad():
        out = attn(x)
        qkv = F.linear(x, attn.qkv.weight.flatten(1), attn.qkv.bias)
        qkv = F.pad(qkv, (0, 0, 1, 1, 2, 2))  # 10 -> 14 (top 2), 12 -> 14 (left 1)
        win = qkv.view(2, 2, 7, 2, 7, 3, 2, 4).permute(5, 0, 1, 3, 6, 2, 4, 7).reshape(3, 8, 2, 49, 4)
        q, k, v = win
        logits = q @ k.transpose(-1, -2) * 8 ** -0.5 + attn.relative_position_bias()  # scale from INPUT width 16
        ref = (logits.softmax(-1) @ v).view(2, 2, 2, 2, 7, 7, 4).permute(0, 1, 4, 2, 5, 3, 6).reshape(2, 14, 14, 8)
        ref = F.linear(ref[:, 2:12, 1:13], attn.proj.weight.flatten(1), attn.proj.bias)
    torch.testing.assert_close(out, ref, atol=2e-5, rtol=1e-4)


def test_use_checkpoint_same_outputs_and_grads(s_case):
    x = s_case["inputs"][1].float()[:, :, :128, :128]
    results = []
    for use_checkpoint in (False, True):
        model = build(s_case, drop_path_rate=0.0, use_checkpoint=use_checkpoint).train()
        xi = x.clone().requires_grad_()
        outs = model(xi)
        sum(o.mean() for o in outs).backward()
        results.append((outs, xi.grad, {n: p.grad for n, p in model.named_parameters()},
                        {n: b for n, b in model.named_buffers()}))
    (o0, g0, p0, b0), (o1, g1, p1, b1) = results
    for a, b in zip(o0, o1):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(g0, g1, atol=1e-7, rtol=1e-5)
    for name in p0:
        torch.testing.assert_close(p0[name], p1[name], atol=1e-6, rtol=1e-5, msg=name)
    for name in b0:
        assert torch.equal(b0[name], b1[name]), name


def test_frozen_stages_and_unsupported_types(s_case):
    model = build(s_case, frozen_stages=1).train()
    assert not any(p.requires_grad for p in model.layers[0].parameters())
    assert not model.layers[0].training and model.layers[1].training
    assert model.layers[0].RC.attn.relative_position_bias_table.requires_grad is False
    with pytest.raises(ValueError, match="NC_tokens_type 'window' is not supported"):
        ViTAEv2_VSA(**dict(s_case["constructor_kwargs"], NC_tokens_type="window"))
