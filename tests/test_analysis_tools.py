"""Smoke tests of the researcher tools on a tiny Mask R-CNN and data/fruits_nuts: get_flops, benchmark,
browse_dataset (run in-process through their ``main(argv)``)."""
import importlib.util
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
TINY_CONFIG = str(ROOT / "tests" / "data" / "configs_tools" / "tiny_mask_rcnn_fruits.py")
TOOLS = {"get_flops": ROOT / "tools" / "analysis_tools" / "get_flops.py",
         "benchmark": ROOT / "tools" / "analysis_tools" / "benchmark.py",
         "browse_dataset": ROOT / "tools" / "misc" / "browse_dataset.py"}


def _load_tool(name: str):
    """Import a tool script as module ``tool_<name>`` (registered in sys.modules, as dataclasses need)."""
    module_name = f"tool_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, TOOLS[name])
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


@pytest.fixture(scope="module")
def tiny_model():
    from mmdet.engine import Config
    from mmdet.models import build_detector
    torch.manual_seed(0)
    model = build_detector(Config.fromfile(TINY_CONFIG).model)
    model.init_weights()
    return model.eval()


@pytest.mark.parametrize("name,expected", [("get_flops", "--shape"), ("benchmark", "--fuse-conv-bn"),
                                           ("browse_dataset", "--skip-type")])
def test_help(name, expected, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _load_tool(name).parse_args(["--help"])
    assert exit_info.value.code == 0
    assert expected in capsys.readouterr().out


def test_get_flops_groups_sum_to_totals(capsys):
    report = _load_tool("get_flops").main([TINY_CONFIG, "--shape", "96", "128"])
    groups = report.groups
    assert list(groups)[:4] == ["backbone", "neck", "rpn_head", "roi_head"]
    for name in ("backbone", "neck", "rpn_head", "roi_head"):
        flops, params = groups[name]
        assert flops > 0 and params > 0, name
    assert sum(f for f, _ in groups.values()) == report.total_flops
    assert sum(p for _, p in groups.values()) == report.total_params
    out = capsys.readouterr().out
    assert "Input shape: (3, 96, 128)" in out and "roi_head" in out and "GMACs" in out


def test_get_flops_backbone_matches_direct_count(tiny_model):
    """The backbone row equals FlopCounterMode run on the backbone alone; params equal sum(p.numel())."""
    report = _load_tool("get_flops").compute_flops(tiny_model, (3, 64, 96))
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        tiny_model.backbone(torch.randn(1, 3, 64, 96))
    assert report.groups["backbone"][0] == counter.get_total_flops()
    assert report.total_params == sum(p.numel() for p in tiny_model.parameters())
    # a 3x3 conv 3->16 channels at stride 2 on 64x96 alone is 2 * 27 * 16 * 32 * 48 FLOPs; the backbone has more
    assert report.groups["backbone"][0] > 2 * 27 * 16 * 32 * 48


def test_benchmark_runs_three_iterations(tmp_path, tiny_model, capsys):
    from mmdet.engine.checkpoint import save_checkpoint
    checkpoint = tmp_path / "tiny.pth"
    save_checkpoint(tiny_model, str(checkpoint))
    benchmark = _load_tool("benchmark")
    fps = benchmark.main([TINY_CONFIG, str(checkpoint), "--max-iter", "3", "--num-warmup", "1",
                          "--log-interval", "1", "--fuse-conv-bn"])
    assert len(fps) == 1 and fps[0] > 0
    out = capsys.readouterr().out
    assert "Done image [2  / 3]" in out and "Overall fps:" in out and "(2 images timed)" in out
    with pytest.raises(SystemExit):
        benchmark.parse_args([TINY_CONFIG, str(checkpoint), "--max-iter", "5", "--num-warmup", "5"])
    assert "--max-iter (5) must exceed --num-warmup (5)" in capsys.readouterr().err


def test_browse_dataset_writes_denormalised_pngs(tmp_path):
    browse = _load_tool("browse_dataset")
    np.random.seed(0)
    raw = browse.main([TINY_CONFIG, "--output-dir", str(tmp_path / "raw"), "--not-show"])
    np.random.seed(0)                                                  # same flips, Normalize kept this time
    normalised = browse.main([TINY_CONFIG, "--output-dir", str(tmp_path / "norm"), "--not-show",
                              "--skip-type", "DefaultFormatBundle", "Collect"])
    assert len(raw) == 18 and sorted(p.name for p in (tmp_path / "raw").iterdir()) == sorted(
        Path(f).stem + ".png" for f in (ROOT / "data" / "fruits_nuts" / "images").iterdir())
    first_raw, first_norm = cv2.imread(raw[0]), cv2.imread(normalised[0])
    assert first_raw.shape == (256, 320, 3)                          # 800x600 resized to 320x240, padded to 32
    from mmdet.core.visualization import get_palette
    for rgb in get_palette(None, 3):                                 # 0.jpg has all 3 classes: their box colours
        assert (first_raw == rgb[::-1]).all(-1).sum() > 50
    # the de-normalised drawing equals the raw-pipeline drawing wherever the image is (rows below 240 are pad)
    diff = np.abs(first_raw[:240].astype(int) - first_norm[:240].astype(int))
    assert diff.max() <= 2
    assert (first_raw[:240] != 0).any() and (first_raw[240:] == 0).all()
    with pytest.raises(SystemExit):
        browse.parse_args([TINY_CONFIG])


def test_gpu_train_step_refuses_to_run_without_cuda(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    from benchmarks import gpu_train_step
    with pytest.raises(SystemExit) as exit_info:
        gpu_train_step.main([])
    assert str(exit_info.value.code) == f"error: {gpu_train_step.NO_CUDA_MESSAGE}"
    assert "needs a CUDA device" in gpu_train_step.NO_CUDA_MESSAGE
