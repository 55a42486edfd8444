"""ViTDet backbones (ViT, ViTAE, ViTAE_S): golden parity with the official code, checkpoint loading,
activation checkpointing, SDPA-vs-explicit attention math, inputs of other sizes."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mmdet.engine import load_checkpoint
from mmdet.engine.checkpoint import get_checkpoint_converter, load_state_dict, safe_torch_load
from mmdet.models.backbones.vitdet import ViT, ViTAE, ViTAE_S
from mmdet.models.builder import build_backbone
from mmdet.models.layers.vitdet_blocks import (RelPosAttention, resize_pos_embed, resize_rel_pos_table)

from backbone_golden import assert_outputs_close, model_from_case

GOLDEN = Path(__file__).resolve().parent / "data" / "golden"
FAMILIES = {"vitdet_vit": ViT, "vitdet_vitae_b": ViTAE, "vitdet_vitae_s": ViTAE_S}


def _case(family: str, name: str) -> dict:
    return torch.load(GOLDEN / family / name, weights_only=True)


def _eval_model(family: str):
    case = _case(family, "eval.pt")
    return model_from_case(FAMILIES[family], case), case


def _assert_outputs(outputs, refs, tol):
    assert len(refs) == 4
    assert_outputs_close(outputs, refs, tol)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_golden_eval(family):
    model, case = _eval_model(family)
    assert list(model.state_dict()) == list(case["state_dict"])  # official key names and order
    with torch.no_grad():
        for x, refs in zip(case["inputs"], case["outputs"]):
            _assert_outputs(model(x.float()), refs, case["tolerance"])


def test_registered_names_build_from_config():
    for name, cls in (("ViT", ViT), ("ViTAE", ViTAE), ("ViTAE_S", ViTAE_S)):
        kwargs = _case({"ViT": "vitdet_vit", "ViTAE": "vitdet_vitae_b", "ViTAE_S": "vitdet_vitae_s"}[name],
                       "eval.pt")["constructor_kwargs"]
        assert type(build_backbone(dict(type=name, **kwargs))) is cls


def _loader_cases():
    for family in FAMILIES:
        for ckpt in _case(family, "loader.pt")["checkpoint_files"]:
            yield family, ckpt


@pytest.mark.parametrize("family,ckpt", list(_loader_cases()))
def test_golden_loader_reports_and_converted_entries(family, ckpt):
    """The registered conversion reproduces the official loader: key reports, converted tensors, fingerprints."""
    model, ev = _eval_model(family)
    case = _case(family, "loader.pt")
    converter = get_checkpoint_converter(model)
    state_dict = converter(safe_torch_load(str(GOLDEN / family / ckpt)), model, logging.getLogger("test"))
    report = load_state_dict(model, state_dict)
    assert report["missing"] == case["missing_keys"]
    assert report["unexpected"] == case["unexpected_keys"]
    assert report["size_mismatch"] == []
    own = model.state_dict()
    for key, ref in case["converted_entries"].items():
        torch.testing.assert_close(own[key], ref, **case["tolerance"])
    for key, (ref_sum, ref_abs) in case["state_dict_after_load_fingerprint"].items():
        value = own[key].double()
        assert value.sum().item() == pytest.approx(ref_sum, abs=1e-4 * (1 + ref_abs)), key
        assert value.abs().sum().item() == pytest.approx(ref_abs, rel=1e-6), key
    with torch.no_grad():
        _assert_outputs(model(ev["inputs"][1].float()), case["outputs"][0], case["tolerance"])


@pytest.mark.parametrize("family", list(FAMILIES))
def test_load_checkpoint_and_init_weights_paths(family):
    """Official checkpoints load via mmdet.engine.load_checkpoint and via init_weights(pretrained=...)."""
    case = _case(family, "loader.pt")
    ckpt = str(GOLDEN / family / case["checkpoint_file_for_loader"])
    x = _case(family, "eval.pt")["inputs"][1].float()
    for how in ("engine", "init_weights", "constructor"):
        model, _ = _eval_model(family)
        if how == "engine":
            load_checkpoint(model, ckpt)
        elif how == "init_weights":
            model.init_weights(pretrained=ckpt)
        else:
            model.pretrained = ckpt
            model.init_weights()
        with torch.no_grad():
            _assert_outputs(model(x), case["outputs"][0], case["tolerance"])


def test_init_weights_rejects_bad_pretrained():
    model, _ = _eval_model("vitdet_vit")
    with pytest.raises(TypeError, match=r"ViT.init_weights: pretrained must be a checkpoint path \(str\) or None"):
        model.init_weights(pretrained=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.init_weights()  # no path anywhere: the constructor's random init (here: loaded weights) stays
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_vitae_b_loader_splits_qkv_bias_for_global_blocks():
    """A timm/MAE layout (qkv.bias everywhere) fills the q_bias/v_bias of ViTAE-B global blocks exactly."""
    model, ev = _eval_model("vitdet_vitae_b")
    merged = {k: v for k, v in model.state_dict().items() if not k.endswith(("q_bias", "v_bias"))}
    for i, blk in enumerate(model.blocks):
        if blk.attn.q_bias is not None:
            merged[f"blocks.{i}.attn.qkv.bias"] = blk.attn.qkv_bias_vector().detach() + 0.0
            merged[f"blocks.{i}.attn.qkv.bias"][blk.attn.q_bias.numel():2 * blk.attn.q_bias.numel()] = 0.3
    fresh = ViTAE(**ev["constructor_kwargs"]).eval()
    report = load_state_dict(fresh, get_checkpoint_converter(fresh)({"model": merged}, fresh, logging.getLogger()))
    assert report["missing"] == []
    with torch.no_grad():
        x = ev["inputs"][1].float()
        for a, b in zip(fresh(x), model(x)):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)  # a k bias does not change attention


def _explicit_attention(attn: RelPosAttention, x: torch.Tensor, grid):
    """softmax((q*s)kᵀ + q*s·Rh[dy] + q*s·Rw[dx]) v, rel terms gathered with full (N, N) index tables."""
    b, n, c = x.shape
    heads = attn.num_heads
    qkv = F.linear(x, attn.qkv.weight, attn.qkv_bias_vector()).reshape(b, n, 3, heads, c // heads)
    q, k, v = qkv.permute(2, 0, 3, 1, 4)
    q = q * attn.scale
    h, w = grid
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    rel_h = attn.rel_pos_h[ys[:, None] - ys[None, :] + h - 1]          # (N, N, hd)
    rel_w = attn.rel_pos_w[xs[:, None] - xs[None, :] + w - 1]
    logits = q @ k.transpose(-2, -1) + torch.einsum("bnic,ijc->bnij", q, rel_h + rel_w)
    out = logits.softmax(-1) @ v
    return attn.proj(out.transpose(1, 2).reshape(b, n, c))


@pytest.mark.parametrize("windowed,separate", [(False, False), (False, True), (True, False)])
def test_sdpa_with_rel_pos_mask_equals_explicit_math(windowed, separate):
    torch.manual_seed(0)
    size = 6
    attn = RelPosAttention(24, 3, qkv_bias=True, window_size=(size, size), windowed=windowed,
                           separate_qv_bias=separate).double()
    with torch.no_grad():
        for p in attn.parameters():
            p.normal_(0, 0.5)
    x = torch.randn(2, size * size, 24, dtype=torch.float64)
    ours = attn(x, size, size)  # CPU + grad: the explicit path with the decomposed term added by broadcasting
    ref = _explicit_attention(attn, x, (size, size))
    torch.testing.assert_close(ours, ref, atol=1e-10, rtol=1e-10)
    with torch.no_grad():  # inference: SDPA with the dense mask
        torch.testing.assert_close(attn(x, size, size), ref, atol=1e-10, rtol=1e-10)
    g_ours = torch.autograd.grad(ours.square().sum(), attn.rel_pos_h)[0]
    g_ref = torch.autograd.grad(ref.square().sum(), attn.rel_pos_h)[0]
    torch.testing.assert_close(g_ours, g_ref, atol=1e-9, rtol=1e-10)
    assert g_ours.abs().sum() > 0


def _train_step(model, x, seed):
    torch.manual_seed(seed)
    x = x.clone().requires_grad_()
    outs = model(x)
    loss = sum(o.square().mean() for o in outs)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    return outs, x.grad, grads, buffers


@pytest.mark.parametrize("family", list(FAMILIES))
def test_activation_checkpointing_matches(family, monkeypatch):
    """use_checkpoint=True: same outputs, input/param grads and BN running stats in train mode (drop-path on)."""
    case = _case(family, "eval.pt")
    kwargs = dict(case["constructor_kwargs"], drop_path_rate=0.3)
    x = case["inputs"][1].float()
    calls = []
    original = torch.utils.checkpoint.checkpoint

    def counting(*args, **kw):
        calls.append(kw.get("use_reentrant"))
        return original(*args, **kw)

    results = []
    for use_ckpt in (False, True):
        model = FAMILIES[family](**dict(kwargs, use_checkpoint=use_ckpt))
        model.load_state_dict(case["state_dict"], strict=True)
        model.train()
        if use_ckpt:
            monkeypatch.setattr(torch.utils.checkpoint, "checkpoint", counting)
        results.append(_train_step(model, x, seed=7))
    assert calls and set(calls) == {False}
    (o0, gx0, gp0, b0), (o1, gx1, gp1, b1) = results
    for a, b in zip(o0, o1):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(gx0, gx1, atol=1e-6, rtol=1e-5)
    assert gp0.keys() == gp1.keys() and len(gp0) > 50
    for k in gp0:
        torch.testing.assert_close(gp0[k], gp1[k], atol=1e-6, rtol=1e-5, msg=k)
    for k in b0:
        torch.testing.assert_close(b0[k], b1[k], atol=0, rtol=0, msg=k)


def test_other_input_sizes_interpolate_position_terms():
    """An input of another size equals a model built for that size with bicubically resized pos_embed and
    linearly resized global rel-pos tables; non-square inputs give the expected pyramid shapes."""
    model, case = _eval_model("vitdet_vit")
    big = ViT(**dict(case["constructor_kwargs"], img_size=320)).eval()
    converted = dict(model.state_dict())
    converted["pos_embed"] = resize_pos_embed(converted["pos_embed"], (16, 16), (20, 20))
    for i, blk in enumerate(model.blocks):
        if not blk.attn.windowed:
            for name in ("rel_pos_h", "rel_pos_w"):
                converted[f"blocks.{i}.attn.{name}"] = resize_rel_pos_table(getattr(blk.attn, name), 39)
    big.load_state_dict(converted, strict=True)
    x = torch.randn(1, 3, 320, 320)
    with torch.no_grad():
        for a, b in zip(model(x), big(x)):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
        shapes = [tuple(o.shape) for o in model(torch.randn(1, 3, 192, 320))]
    assert shapes == [(1, 16, 48, 80), (1, 16, 24, 40), (1, 16, 12, 20), (1, 16, 6, 10)]
    vitae_s, _ = _eval_model("vitdet_vitae_s")
    with torch.no_grad():
        shapes = [tuple(o.shape) for o in vitae_s(torch.randn(1, 3, 200, 330))]
    assert shapes == [(1, 24, 52, 84), (1, 24, 26, 42), (1, 24, 13, 21), (1, 24, 6, 10)]


def test_bad_configuration_messages():
    with pytest.raises(ValueError, match="hybrid_backbone is not supported"):
        ViT(img_size=64, embed_dim=16, depth=3, num_heads=2, hybrid_backbone=torch.nn.Identity())
    with pytest.raises(ValueError, match="RC_tokens_type 'transformer' is not supported"):
        ViTAE_S(img_size=64)
