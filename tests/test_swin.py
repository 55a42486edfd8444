"""SwinTransformer backbone: parity with the official code (tests/data/golden/swin), loading, options."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from backbone_golden import (assert_checkpointing_is_exact, assert_eval_parity, assert_load_matches_official,
                             assert_outputs_close, assert_registered_with_official_keys, captured_messages,
                             load_with_report, model_from_case)
from mmdet.models.backbones.swin_transformer import SwinTransformer, convert_swin_checkpoint
from mmdet.models.layers.transformer import ShiftMaskCache, shift_window_mask

GOLDEN = Path(__file__).resolve().parent / "data" / "golden" / "swin"
SMALL = dict(embed_dim=12, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8], window_size=7, drop_path_rate=0.0)


def _case(name: str) -> dict:
    return torch.load(GOLDEN / name, weights_only=True)


@pytest.fixture(scope="module")
def eval_case():
    return _case("eval.pt")


def _model_from(eval_case) -> SwinTransformer:
    return model_from_case(SwinTransformer, eval_case)


def test_registered_and_keys_match_official(eval_case):
    assert_registered_with_official_keys(SwinTransformer, eval_case)


def test_eval_parity_with_official(eval_case):
    assert_eval_parity(_model_from(eval_case), eval_case)


@pytest.mark.parametrize("case_name", ["loader.pt", "loader_relpos_resize_ws5.pt"])
@pytest.mark.parametrize("route", ["load_checkpoint", "init_weights"])
def test_official_classification_checkpoint_loads(eval_case, case_name, route):
    case = _case(case_name)
    model = _model_from(eval_case)
    report = load_with_report(model, str(GOLDEN / case["checkpoint_file_for_loader"]), route, "test_swin.loader")
    assert_load_matches_official(model, report, case)
    sd = model.state_dict()
    for key, ref in case["converted_entries"].items():
        torch.testing.assert_close(sd[key], ref, atol=case["tolerance"]["atol"], rtol=case["tolerance"]["rtol"])
    with torch.no_grad():
        assert_outputs_close(model(eval_case["inputs"][1].float()), case["outputs"][0], case["tolerance"])


def test_converter_reshapes_absolute_pos_embed_and_reports_bad_one():
    model = SwinTransformer(**SMALL, ape=True, pretrain_img_size=56)        # grid 14 x 14
    tokens = torch.randn(1, 14 * 14, 12)
    logger = logging.getLogger("test_swin.ape")
    sd = convert_swin_checkpoint({"model": {"absolute_pos_embed": tokens}}, model, logger)
    torch.testing.assert_close(sd["absolute_pos_embed"], tokens.view(1, 14, 14, 12).permute(0, 3, 1, 2))
    with captured_messages(logger) as messages:
        sd = convert_swin_checkpoint({"absolute_pos_embed": torch.randn(1, 100, 12)}, model, logger)
    assert "absolute_pos_embed" not in sd
    assert any("absolute_pos_embed: checkpoint shape [1, 100, 12]" in m for m in messages)


def test_converter_strips_module_prefix_and_takes_moby_encoder():
    model = SwinTransformer(**SMALL)
    weight = torch.randn(12, 3, 4, 4)
    logger = logging.getLogger("test_swin.prefix")
    sd = convert_swin_checkpoint({"state_dict": {"module.patch_embed.proj.weight": weight}}, model, logger)
    assert list(sd) == ["patch_embed.proj.weight"] and sd["patch_embed.proj.weight"] is weight
    moby = {"encoder.patch_embed.proj.weight": weight, "encoder_k.patch_embed.proj.weight": weight * 0}
    sd = convert_swin_checkpoint({"model": moby}, model, logger)
    assert list(sd) == ["patch_embed.proj.weight"] and torch.equal(sd["patch_embed.proj.weight"], weight)


def test_ape_forward_resizes_to_any_input():
    model = SwinTransformer(**SMALL, ape=True, pretrain_img_size=64).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 90, 70))
    assert [tuple(o.shape) for o in outs] == [(1, 12, 23, 18), (1, 24, 12, 9), (1, 48, 6, 5), (1, 96, 3, 3)]


def test_shift_rule_is_local_block_index():
    model = SwinTransformer(embed_dim=12, depths=[3, 3], num_heads=[1, 2], window_size=7, out_indices=(0, 1))
    shifts = [[blk.shift_size for blk in layer.blocks] for layer in model.layers]
    assert shifts == [[0, 3, 0], [0, 3, 0]]


def _naive_shift_mask(hp: int, wp: int, window: int, shift: int) -> torch.Tensor:
    """Region labelling with the official slices, one region at a time."""
    img = torch.zeros(hp, wp)
    slices = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    label = 0
    for hs in slices:
        for ws in slices:
            img[hs, ws] = label
            label += 1
    win = img.view(hp // window, window, wp // window, window).permute(0, 2, 1, 3).reshape(-1, window * window)
    diff = win[:, None, :] - win[:, :, None]
    return diff.masked_fill(diff != 0, -100.0)


@pytest.mark.parametrize("hp,wp,window,shift", [(14, 21, 7, 3), (7, 7, 7, 3), (28, 14, 14, 7), (21, 35, 7, 3)])
def test_shift_mask_matches_official_labelling(hp, wp, window, shift):
    torch.testing.assert_close(shift_window_mask(hp, wp, window, shift), _naive_shift_mask(hp, wp, window, shift))


def test_shift_mask_built_once_per_size():
    cache = ShiftMaskCache(7, 3, max_entries=2)
    first = cache.get(14, 21, "cpu")
    assert cache.get(14, 21, "cpu") is first
    cache.get(21, 21, "cpu")
    cache.get(28, 21, "cpu")                     # evicts the least recently used (14, 21)
    assert cache.get(14, 21, "cpu") is not first
    model = SwinTransformer(**SMALL).eval()
    with torch.no_grad():
        model(torch.randn(1, 3, 64, 64))
        masks = dict(model.layers[0].shift_masks._masks)
        model(torch.randn(2, 3, 64, 64))
    assert all(model.layers[0].shift_masks._masks[k] is v for k, v in masks.items())


def test_use_checkpoint_gives_equal_outputs_and_grads():
    assert_checkpointing_is_exact(lambda use_checkpoint: SwinTransformer(**SMALL, use_checkpoint=use_checkpoint),
                                  (2, 3, 60, 76), out_tol=(1e-6, 1e-5), input_grad_tol=(1e-7, 1e-5),
                                  param_grad_tol=(1e-6, 1e-5))


def test_frozen_stages_and_out_indices():
    model = SwinTransformer(**SMALL, frozen_stages=2, out_indices=(1, 3))
    model.train()
    assert not model.patch_embed.training and not model.layers[0].training and model.layers[1].training
    assert all(not p.requires_grad for p in model.patch_embed.parameters())
    assert all(not p.requires_grad for p in model.layers[0].parameters())
    assert all(p.requires_grad for p in model.layers[1].parameters())
    assert not hasattr(model, "norm0") and hasattr(model, "norm1") and hasattr(model, "norm3")
    with torch.no_grad():
        outs = model.eval()(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 24, 8, 8), (1, 96, 2, 2)]


def test_bfloat16_autocast_runs_close_to_float32(eval_case):
    model = _model_from(eval_case)
    x = eval_case["inputs"][1].float()
    with torch.no_grad():
        ref = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x)
    for a, b in zip(low, ref):
        assert a.dtype in (torch.bfloat16, torch.float32)
        assert (a.float() - b).abs().mean().item() < 0.1


def test_bad_arguments_give_clear_errors():
    with pytest.raises(TypeError, match="pretrained must be a checkpoint path"):
        SwinTransformer(**SMALL).init_weights(pretrained=123)
    with pytest.raises(ValueError, match=r"depths \[2, 2\] and num_heads \[1\] must have the same length"):
        SwinTransformer(depths=[2, 2], num_heads=[1])
    with pytest.raises(ValueError, match=r"out_indices \[4\] must lie in \[0, 4\)"):
        SwinTransformer(**SMALL, out_indices=(4,))
    with pytest.raises(FileNotFoundError, match="checkpoint file not found: /nonexistent.pth"):
        SwinTransformer(**SMALL).init_weights(pretrained="/nonexistent.pth")
