"""tools/model_converters: vit2mmdet.py (timm / MAE ViT -> ViTDet ViT) and publish_model.py, on small
synthetic checkpoints."""
from __future__ import annotations

import hashlib
import re
import runpy
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F

from mmdet.engine import load_checkpoint
from mmdet.engine.checkpoint import get_checkpoint_converter, load_state_dict, safe_torch_load
from mmdet.models.backbones.vitdet import ViT

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "tools" / "model_converters"
DIM, DEPTH, HEADS = 16, 3, 2


def _tool(name: str) -> dict:
    return runpy.run_path(str(TOOLS / name), run_name="tool_under_test")


def _timm_vit(q_v_bias: bool) -> "OrderedDict[str, torch.Tensor]":
    """A timm/MAE ViT classification state_dict (224 px, patch 16: 14x14 grid + cls)."""
    torch.manual_seed(0)
    sd = OrderedDict(cls_token=torch.randn(1, 1, DIM), pos_embed=torch.randn(1, 197, DIM))
    sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"] = torch.randn(DIM, 3, 16, 16), torch.randn(DIM)
    for i in range(DEPTH):
        p = f"blocks.{i}."
        sd[p + "norm1.weight"], sd[p + "norm1.bias"] = torch.rand(DIM) + 0.5, torch.randn(DIM)
        sd[p + "attn.qkv.weight"] = torch.randn(3 * DIM, DIM) / 4
        if q_v_bias:
            sd[p + "attn.q_bias"], sd[p + "attn.v_bias"] = torch.randn(DIM), torch.randn(DIM)
        else:
            sd[p + "attn.qkv.bias"] = torch.randn(3 * DIM)
        sd[p + "attn.proj.weight"], sd[p + "attn.proj.bias"] = torch.randn(DIM, DIM) / 4, torch.randn(DIM)
        sd[p + "norm2.weight"], sd[p + "norm2.bias"] = torch.rand(DIM) + 0.5, torch.randn(DIM)
        sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"] = torch.randn(4 * DIM, DIM) / 4, torch.randn(4 * DIM)
        sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"] = torch.randn(DIM, 4 * DIM) / 8, torch.randn(DIM)
    sd["norm.weight"], sd["norm.bias"] = torch.rand(DIM) + 0.5, torch.randn(DIM)
    sd["head.weight"], sd["head.bias"] = torch.randn(10, DIM), torch.randn(10)
    return sd


def _vit(img_size=64):
    return ViT(img_size=img_size, embed_dim=DIM, depth=DEPTH, num_heads=HEADS, qkv_bias=True, use_abs_pos_emb=True)


def test_vit2mmdet_mae_layout(tmp_path):
    sd = _timm_vit(q_v_bias=True)
    src, dst = tmp_path / "mae.pth", tmp_path / "vit.pth"
    torch.save({"model": OrderedDict(("module." + k, v) for k, v in sd.items()), "epoch": 3}, src)
    assert _tool("vit2mmdet.py")["main"]([str(src), str(dst), "--img-size", "64"]) == 0
    out = safe_torch_load(str(dst))
    converted = out["state_dict"]
    assert not any(re.search(r"cls_token|head\.|q_bias|v_bias", k) for k in converted)
    expected_pos = F.interpolate(sd["pos_embed"][:, 1:].reshape(1, 14, 14, DIM).permute(0, 3, 1, 2), size=(4, 4),
                                 mode="bicubic", align_corners=False).permute(0, 2, 3, 1).reshape(1, 16, DIM)
    torch.testing.assert_close(converted["pos_embed"], expected_pos)
    torch.testing.assert_close(converted["blocks.1.attn.qkv.bias"],
                               torch.cat([sd["blocks.1.attn.q_bias"], torch.zeros(DIM), sd["blocks.1.attn.v_bias"]]))
    model = _vit()
    report = load_state_dict(model, get_checkpoint_converter(model)(out, model, None))
    assert report["unexpected"] == [] and report["size_mismatch"] == []
    assert sorted(report["missing"]) == sorted(
        [f"blocks.{i}.attn.rel_pos_{a}" for i in range(DEPTH) for a in "hw"]
        + ["fpn1.0.weight", "fpn1.0.bias", "fpn1.1.ln.weight", "fpn1.1.ln.bias", "fpn1.3.weight", "fpn1.3.bias",
           "fpn2.0.weight", "fpn2.0.bias"])
    torch.testing.assert_close(model.blocks[2].mlp.fc2.weight.detach(), sd["blocks.2.mlp.fc2.weight"])


def test_vit2mmdet_output_equals_online_loading(tmp_path):
    """Converting offline or loading the timm file directly into ViT gives the same weights."""
    sd = _timm_vit(q_v_bias=False)
    src, dst = tmp_path / "timm.pth", tmp_path / "vit.pth"
    torch.save({"state_dict_ema": sd, "state_dict": OrderedDict((k, v * 0) for k, v in sd.items())}, src)
    _tool("vit2mmdet.py")["main"]([str(src), str(dst), "--img-size", "64"])
    offline, online = _vit(), _vit()
    online.load_state_dict(offline.state_dict())
    load_checkpoint(offline, str(dst))
    load_checkpoint(online, str(src))
    for (k, a), b in zip(offline.state_dict().items(), online.state_dict().values()):
        assert torch.equal(a, b), k
    assert offline.norm.weight.abs().sum() > 0  # EMA weights, not the zeroed state_dict


def test_vit2mmdet_bad_grid_message(tmp_path):
    src = tmp_path / "timm.pth"
    torch.save({"model": _timm_vit(q_v_bias=False)}, src)
    convert = _tool("vit2mmdet.py")["convert"]
    try:
        convert(safe_torch_load(str(src)), img_size=100, patch_size=16)
    except ValueError as e:
        assert str(e) == "--img-size 100 is not a multiple of --patch-size 16"
    else:
        raise AssertionError("no error for an img_size that is not a multiple of the patch size")


def test_converters_help(capsys):
    for name, words in (("vit2mmdet.py", "--img-size"), ("publish_model.py", "sha256")):
        try:
            _tool(name)["main"](["--help"])
        except SystemExit as e:
            assert e.code == 0
        else:
            raise AssertionError(f"{name} --help did not exit")
        text = capsys.readouterr().out
        assert text.startswith("usage:") and words in text


def test_publish_model(tmp_path):
    model = _vit()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model(torch.randn(1, 3, 64, 64))[0].mean().backward()
    optimizer.step()
    src = tmp_path / "epoch_25.pth"
    torch.save({"meta": {"epoch": 25, "CLASSES": ("a", "b")}, "state_dict": model.state_dict(),
                "optimizer": optimizer.state_dict()}, src)
    final = _tool("publish_model.py")["publish"](str(src), str(tmp_path / "vitdet_vit.pth"))
    m = re.fullmatch(r".*/vitdet_vit-([0-9a-f]{8})\.pth", final)
    assert m, final
    assert hashlib.sha256(Path(final).read_bytes()).hexdigest()[:8] == m.group(1)
    assert not (tmp_path / "vitdet_vit.pth").exists()
    published = safe_torch_load(final)
    assert set(published) == {"meta", "state_dict"}
    assert published["meta"]["epoch"] == 25
    for k, v in model.state_dict().items():
        assert torch.equal(published["state_dict"][k], v)
    assert src.stat().st_size > Path(final).stat().st_size  # the AdamW moments are gone
