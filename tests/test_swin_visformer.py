"""SwinVisformer backbone: parity with the official code (tests/data/golden/swin_visformer), loading, options."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from backbone_golden import (assert_checkpointing_is_exact, assert_eval_parity, assert_load_matches_official,
                             assert_outputs_close, assert_registered_with_official_keys, captured_messages,
                             load_with_report, model_from_case)
from mmdet.models.backbones.swin_visformer import SwinVisformer, convert_swin_visformer_checkpoint

GOLDEN = Path(__file__).resolve().parent / "data" / "golden" / "swin_visformer"


@pytest.fixture(scope="module")
def eval_case():
    return torch.load(GOLDEN / "eval.pt", weights_only=True)


@pytest.fixture(scope="module")
def loader_case():
    return torch.load(GOLDEN / "loader.pt", weights_only=True)


def _small_kwargs(eval_case, **overrides) -> dict:
    kwargs = dict(eval_case["constructor_kwargs"])
    kwargs.update(overrides)
    return kwargs


def _model_from(eval_case) -> SwinVisformer:
    return model_from_case(SwinVisformer, eval_case)


def test_registered_and_keys_match_official(eval_case):
    assert_registered_with_official_keys(SwinVisformer, eval_case)


def test_eval_parity_with_official(eval_case):
    assert_eval_parity(_model_from(eval_case), eval_case)


@pytest.mark.parametrize("file_name,route", [("ckpt_loader_converted.pth", "load_checkpoint"),
                                             ("ckpt_loader_cls_format.pth", "load_checkpoint"),
                                             ("ckpt_loader_cls_format.pth", "init_weights")])
def test_official_checkpoints_load(eval_case, loader_case, file_name, route):
    model = _model_from(eval_case)
    report = load_with_report(model, str(GOLDEN / file_name), route, "test_swin_visformer.loader")
    assert_load_matches_official(model, report, loader_case)      # classification-only keys: ignored, reported
    with torch.no_grad():
        assert_outputs_close(model(eval_case["inputs"][1].float()), loader_case["outputs"][0],
                             loader_case["tolerance"])


def test_converter_resizes_tables_and_warns_on_original_visformer(eval_case):
    model = SwinVisformer(**eval_case["constructor_kwargs"])
    logger = logging.getLogger("test_swin_visformer.convert")
    table = torch.randn(13 * 13, 2)                        # window 7 table for a window-14 stage
    with captured_messages(logger) as messages:
        sd = convert_swin_visformer_checkpoint(
            {"model": {"module.stage2.0.attn.relative_position_bias_table": table,
                       "patch_embed1.proj.weight": torch.randn(16, 8, 2, 2)}}, model, logger)
    assert sd["stage2.0.attn.relative_position_bias_table"].shape == (27 * 27, 2)
    assert any("resized 1 relative_position_bias_table" in m for m in messages)
    assert any("looks like the original Visformer" in m for m in messages)


def test_shift_rule_is_global_block_index(eval_case):
    model = SwinVisformer(**eval_case["constructor_kwargs"])      # depth [1, 2, 2, 3]: stage 2 = blocks 3, 4
    assert [b.shift_size for b in model.stage2] == [7, 0]
    assert [b.shift_size for b in model.stage3] == [3, 0, 3]
    assert model.stage0[0].attn is None and model.stage1[1].attn is None
    assert model.stage2.needs_mask and not model.stage0.needs_mask


def test_v1_parameter_count():
    with torch.device("meta"):
        v1 = SwinVisformer(init_channels=32, embed_dim=384, depth=[0, 7, 4, 4], num_heads=6, attn_stage="0011",
                           spatial_conv="1100", conv_init=True, num_classes=80)
    assert sum(p.numel() for p in v1.parameters()) == 39_198_064
    assert [b.shift_size for b in v1.stage2] == [7, 0, 7, 0]      # global indices 7..10 (7 is odd -> shifted)


def test_use_checkpoint_gives_equal_outputs_and_grads(eval_case):
    assert_checkpointing_is_exact(
        lambda use_checkpoint: SwinVisformer(**_small_kwargs(eval_case, drop_path_rate=0.0,
                                                             use_checkpoint=use_checkpoint)),
        (2, 3, 100, 120), out_tol=(1e-5, 1e-5), input_grad_tol=(1e-6, 1e-5), param_grad_tol=(1e-5, 1e-4))


def test_frozen_stages_and_out_indices(eval_case):
    model = SwinVisformer(**_small_kwargs(eval_case, frozen_stages=1, out_indices=(2, 3)))
    model.train()
    assert not model.stem.training and not model.stage0.training and not model.patch_embed0.training
    assert model.stage1.training and model.patch_embed1.training
    assert all(not p.requires_grad for m in (model.stem, model.patch_embed0, model.stage0) for p in m.parameters())
    assert all(p.requires_grad for p in model.stage1.parameters())
    assert not hasattr(model, "norm0") and hasattr(model, "norm2")
    with torch.no_grad():
        outs = model.eval()(torch.randn(1, 3, 128, 96))
    assert [tuple(o.shape) for o in outs] == [(1, 32, 8, 6), (1, 64, 4, 3)]


def test_shift_mask_cached_per_input_size(eval_case):
    model = _model_from(eval_case)
    x = eval_case["inputs"][1].float()
    with torch.no_grad():
        model(x)
        mask = next(iter(model.stage2.shift_masks._masks.values()))
        model(x)
    assert len(model.stage2.shift_masks._masks) == 1
    assert next(iter(model.stage2.shift_masks._masks.values())) is mask


def test_bad_arguments_give_clear_errors(eval_case):
    with pytest.raises(ValueError, match=r"attn_stage must be 4 characters '0'/'1' \(one per stage\), got '011'"):
        SwinVisformer(**_small_kwargs(eval_case, attn_stage="011"))
    with pytest.raises(ValueError, match=r"depth must list 4 stage depths, got \[1, 2\]"):
        SwinVisformer(depth=[1, 2])
    with pytest.raises(TypeError, match="pretrained must be a checkpoint path"):
        SwinVisformer(**eval_case["constructor_kwargs"]).init_weights(pretrained=dict(path="x"))
