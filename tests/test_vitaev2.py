"""ViTAEv2 backbone: parity with the official code (golden files), loading, checkpointing, freezing."""
import copy
import logging
from pathlib import Path

import pytest
import torch

from mmdet.engine.checkpoint import load_checkpoint, safe_torch_load
from mmdet.models.backbones.vitaev2 import ViTAEv2
from mmdet.models.layers.vitae_cells import stage_drop_path_rates
from mmdet.registry import BACKBONES

from backbone_golden import assert_outputs_close

GOLDEN = Path(__file__).resolve().parent / "data" / "golden" / "vitaev2"


def load_case(name):
    return torch.load(GOLDEN / name, weights_only=True)


@pytest.fixture(scope="module")
def eval_case():
    return load_case("eval.pt")


def build(case, **overrides):
    kwargs = dict(case["constructor_kwargs"], **overrides)
    model = ViTAEv2(**kwargs)
    model.load_state_dict(case["state_dict"], strict=True)
    return model


def test_registered_and_state_dict_layout(eval_case):
    assert BACKBONES.get("ViTAEv2") is ViTAEv2
    model = ViTAEv2(**eval_case["constructor_kwargs"])
    assert list(model.state_dict()) == list(eval_case["state_dict"])


def test_eval_parity_with_official(eval_case):
    model = build(eval_case).eval()
    with torch.no_grad():
        for x, refs in zip(eval_case["inputs"], eval_case["outputs"]):
            outs = model(x.float())
            assert all(o.is_contiguous() for o in outs)
            assert_outputs_close(outs, refs, eval_case["tolerance"])


def test_train_mode_gradients_match_official(eval_case):
    case = load_case("grad_train.pt")
    model = build(eval_case, **case["constructor_kwargs"]).train()
    x = case["input"].float().requires_grad_()
    outs = model(x)
    loss = sum(o.mean() for o in outs)
    loss.backward()
    tol = case["tolerance"]
    assert_outputs_close(outs, case["outputs"], tol["outputs"])
    torch.testing.assert_close(loss, torch.tensor(case["loss"]), **tol["outputs"])
    torch.testing.assert_close(x.grad, case["grad_input"], **tol["grad_input"])
    params = dict(model.named_parameters())
    for name, ref in case["grad_params"].items():
        torch.testing.assert_close(params[name].grad, ref, **tol["grad_params"], msg=name)
    buffers = dict(model.named_buffers())
    for name, ref in case["bn_running_stats_after_forward"].items():
        torch.testing.assert_close(buffers[name], ref, **tol["bn_running_stats"], msg=name)


def test_official_checkpoint_loads_through_engine(eval_case, caplog):
    case = load_case("loader.pt")
    model = build(eval_case, **case["constructor_kwargs"])
    with caplog.at_level(logging.INFO, logger="mmdet"):
        load_checkpoint(model, str(GOLDEN / case["checkpoint_file_for_loader"]), logger=logging.getLogger("mmdet"))
    log = caplog.text
    assert "loading from state_dict_ema" in log
    for key in case["unexpected_keys"]:  # head.* and the classification window index buffers
        assert key in log
    model.eval()
    with torch.no_grad():
        outs = model(eval_case["inputs"][1].float())
    assert_outputs_close(outs, case["outputs"][0], case["tolerance"])
    for key, (total, total_abs) in case["state_dict_after_load_fingerprint"].items():
        value = model.state_dict()[key].double()
        assert value.sum().item() == pytest.approx(total, rel=1e-6, abs=1e-6), key
        assert value.abs().sum().item() == pytest.approx(total_abs, rel=1e-6, abs=1e-6), key


def test_init_weights_pretrained_equals_loader(eval_case):
    case = load_case("loader.pt")
    model = build(eval_case, **case["constructor_kwargs"])
    model.init_weights(pretrained=str(GOLDEN / case["checkpoint_file_for_loader"]))
    model.eval()
    with torch.no_grad():
        outs = model(eval_case["inputs"][1].float())
    assert_outputs_close(outs, case["outputs"][0], case["tolerance"])
    with pytest.raises(TypeError, match="pretrained must be a checkpoint path"):
        model.init_weights(pretrained=123)


def test_checkpoint_nestings_and_module_prefix(eval_case, tmp_path):
    """``model`` / ``state_dict`` nesting with DDP ``module.`` prefix; load_ema=False reads ``state_dict``."""
    ckpt = safe_torch_load(str(GOLDEN / "ckpt_loader.pth"))
    ema = ckpt["state_dict_ema"]
    path = tmp_path / "model_nested.pth"
    torch.save({"model": {"module." + k: v for k, v in ema.items()}}, path)
    reference = build(eval_case)
    load_checkpoint(reference, str(GOLDEN / "ckpt_loader.pth"))
    model = build(eval_case)
    load_checkpoint(model, str(path))
    for key, value in reference.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key

    model = build(eval_case, load_ema=False)
    load_checkpoint(model, str(GOLDEN / "ckpt_loader.pth"))
    key = "layers.0.RC.PRM.convs.0.0.weight"
    assert torch.equal(model.state_dict()[key], ckpt["state_dict"][key])
    assert not torch.equal(ckpt["state_dict"][key], ema[key])


def test_use_checkpoint_same_outputs_grads_and_bn_stats(eval_case):
    case = load_case("grad_train.pt")
    x = case["input"].float()
    results = []
    for use_checkpoint in (False, True):
        model = build(eval_case, **dict(case["constructor_kwargs"], use_checkpoint=use_checkpoint)).train()
        xi = x.clone().requires_grad_()
        outs = model(xi)
        sum(o.mean() for o in outs).backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters()}
        results.append((outs, xi.grad, grads, {n: b.clone() for n, b in model.named_buffers()}))
    (o0, g0, p0, b0), (o1, g1, p1, b1) = results
    for a, b in zip(o0, o1):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(g0, g1, atol=1e-7, rtol=1e-5)
    for name in p0:
        torch.testing.assert_close(p0[name], p1[name], atol=1e-6, rtol=1e-5, msg=name)
    for name in b0:  # recomputation must not update BatchNorm statistics a second time
        torch.testing.assert_close(b0[name], b1[name], atol=0, rtol=0, msg=name)


def test_frozen_stages_stay_frozen(eval_case):
    model = build(eval_case, frozen_stages=2)
    model.train()
    for i, layer in enumerate(model.layers):
        frozen = i < 2
        assert all(p.requires_grad != frozen for p in layer.parameters())
        assert all(m.training != frozen for m in layer.modules())
    bn = model.layers[0].RC.PCM[1]
    before = bn.running_mean.clone()
    sum(o.mean() for o in model(torch.randn(1, 3, 64, 64))).backward()
    assert torch.equal(bn.running_mean, before)
    assert all(p.grad is None for p in model.layers[1].parameters())
    assert all(p.grad is not None for p in model.layers[2].parameters())
    with pytest.raises(ValueError, match=r"frozen_stages=5 must be in -1\.\.4"):
        ViTAEv2(**dict(eval_case["constructor_kwargs"], frozen_stages=5))


def test_out_indices_select_maps(eval_case):
    full = build(eval_case).eval()
    part = build(eval_case, out_indices=(1, 3)).eval()
    x = eval_case["inputs"][1].float()
    with torch.no_grad():
        all_maps, picked = full(x), part(x)
    assert len(picked) == 2
    assert torch.equal(picked[0], all_maps[1]) and torch.equal(picked[1], all_maps[3])
    with torch.no_grad():
        early = build(eval_case, out_indices=(0,)).eval()(x)
    assert len(early) == 1 and torch.equal(early[0], all_maps[0])
    with pytest.raises(ValueError, match="out_indices"):
        ViTAEv2(**dict(eval_case["constructor_kwargs"], out_indices=(4,)))


def test_bad_input_and_arguments_raise_clear_errors(eval_case):
    model = build(eval_case).eval()
    with pytest.raises(ValueError, match=r"input size 100x132 is not a multiple of 32.*Pad\(size_divisor=32\)"):
        model(torch.zeros(1, 3, 100, 132))
    with pytest.raises(ValueError, match="RC_tokens_type 'performer' is not supported"):
        ViTAEv2(**dict(eval_case["constructor_kwargs"], RC_tokens_type="performer"))


def test_drop_path_schedule_quirk():
    rates = stage_drop_path_rates(0.1, [2, 2, 8, 2])
    expected = [[0, .00769], [.01538, .02308], [.01538, .02308, .03077, .03846, .04615, .05385, .06154, .06923],
                [.06154, .06923]]
    for got, want in zip(rates, expected):
        assert got == pytest.approx(want, abs=1e-5)
    model = ViTAEv2(NC_depth=[2, 2, 8, 2], drop_path_rate=0.1, RC_tokens_type=["window"] * 2 + ["transformer"] * 2,
                    NC_tokens_type=["window"] * 2 + ["transformer"] * 2, embed_dims=[8, 8, 8, 8],
                    token_dims=[8, 16, 16, 32], NC_group=1, NC_heads=1)
    assert [c.drop_path.drop_prob for c in model.layers[3].NC] == pytest.approx([.06154, .06923], abs=1e-5)


def test_random_init_in_constructor():
    model = ViTAEv2(embed_dims=[8, 8, 8, 8], token_dims=[8, 16, 16, 32], NC_group=1, NC_heads=1,
                    NC_tokens_type="window")
    fc = model.layers[0].NC[0].mlp.fc1
    assert fc.bias.abs().max() == 0 and 0.01 < fc.weight.std() < 0.03
    assert model.layers[0].NC[0].norm1.eps == 1e-6 and model.layers[0].RC.attn.norm1.eps == 1e-5
    state = copy.deepcopy(model.state_dict())
    model.init_weights()  # pretrained=None keeps the constructor init
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
