"""tools/train.py and tools/test.py: arguments, one-line errors, a full toy train + test run through the CLI."""
from __future__ import annotations

import importlib.util
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent

TOY_CONFIG = """
custom_imports = dict(imports={imports!r}, allow_failed_imports=False)
model = dict(type='ToyDetector', num_classes={num_classes})
data = dict(samples_per_gpu=2, workers_per_gpu=0,
            train=dict(type='ToyDataset', num_samples=8),
            val=dict(type='ToyDataset', num_samples=4),
            test=dict(type='ToyDataset', num_samples=4))
optimizer = dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-4)
optimizer_config = dict(grad_clip=None)
lr_config = dict(policy='step', warmup='linear', warmup_iters=3, warmup_ratio=0.1, step=[2])
runner = dict(type='EpochBasedRunner', max_epochs={max_epochs})
checkpoint_config = dict(interval=1)
log_config = dict(interval=2, hooks=[dict(type='TextLoggerHook')])
evaluation = dict(interval=1, metric='bbox')
custom_hooks = [dict(type='NumClassCheckHook')] + {extra_hooks!r}
workflow = [('train', 1)]
dist_params = dict(backend='nccl')
log_level = 'INFO'
load_from = None
resume_from = None
"""


def write_config(path: Path, num_classes=2, max_epochs=3, extra_hooks=(), imports=("test_runner",)) -> Path:
    path.write_text(TOY_CONFIG.format(num_classes=num_classes, max_epochs=max_epochs, extra_hooks=list(extra_hooks),
                                      imports=list(imports)))
    return path


def tool_env(**extra) -> dict:
    env = dict(os.environ, PYTHONPATH=f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", **extra)
    env.pop("MMDET_ALLOW_UNSAFE_CHECKPOINTS", None)
    return env


def tool_cmd(tool: str, *args) -> list[str]:
    return [sys.executable, str(REPO / "tools" / tool), *map(str, args)]


def run_tool(tool: str, *args, check=True, timeout=240) -> subprocess.CompletedProcess:
    proc = subprocess.run(tool_cmd(tool, *args), cwd=REPO, env=tool_env(), capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{tool} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(f"tool_{name}", REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def train_tool():
    return load_tool("train")


@pytest.fixture(scope="module")
def test_tool():
    return load_tool("test")


def test_help_lists_mmdet_arguments(train_tool, test_tool, capsys):
    for tool, flags in ((train_tool, ["--work-dir", "--resume-from", "--auto-resume", "--no-validate", "--gpus",
                                      "--gpu-ids", "--gpu-id", "--seed", "--deterministic", "--cfg-options",
                                      "--options", "--launcher", "--local_rank", "--amp"]),
                        (test_tool, ["--out", "--format-only", "--eval", "--show", "--show-dir", "--show-score-thr",
                                     "--gpu-collect", "--tmpdir", "--eval-options", "--fuse-conv-bn", "--work-dir",
                                     "--cfg-options", "--launcher"])):
        with pytest.raises(SystemExit) as exc:
            tool.parse_args(["--help"])
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert all(flag in out for flag in flags), [f for f in flags if f not in out]
    args = train_tool.parse_args(["c.py", "--local-rank", "3", "--cfg-options", "a.b=1", "c=[1,2]", "--amp"])
    assert args.local_rank == 3 and args.cfg_options == {"a.b": 1, "c": [1, 2]} and args.amp == "fp16"


def test_one_line_errors(train_tool, test_tool, tmp_path, capsys):
    cases = [
        (train_tool, [str(tmp_path / "nope.py")], 1, f"error: config file not found: {tmp_path / 'nope.py'}"),
        (train_tool, ["c.py", "--cfg-options", "optimizer.lr"], 2,
         "argument --cfg-options: expected KEY=VALUE, got 'optimizer.lr'"),
        (train_tool, ["c.py", "--cfg-options", "a=[1,2"], 2, "bad --cfg-options value"),
        (train_tool, ["c.py", "--options", "a=1", "--cfg-options", "b=2"], 2, "cannot be both specified"),
        (test_tool, ["c.py", "x.pth"], 2, "specify at least one operation"),
        (test_tool, ["c.py", "x.pth", "--out", "r.json"], 2, "--out must be a .pkl or .pickle file"),
    ]
    config = write_config(tmp_path / "toy.py")
    cases += [
        (train_tool, [str(config), "--resume-from", str(tmp_path / "gone.pth")], 1,
         f"error: checkpoint to resume from not found: {tmp_path / 'gone.pth'}"),
        (test_tool, [str(config), str(tmp_path / "gone.pth"), "--eval", "bbox"], 1,
         f"error: checkpoint file not found: {tmp_path / 'gone.pth'}"),
        (train_tool, [str(config), "--cfg-options", "log_config.hooks.5.type=X"], 1, "error: bad --cfg-options"),
    ]
    for tool, argv, code, message in cases:
        with pytest.raises(SystemExit) as exc:
            tool.main(argv)
        err = capsys.readouterr().err
        assert exc.value.code == code, (argv, err)
        assert message in err, (argv, err)


def test_wrong_num_classes_is_reported_before_training(train_tool, tmp_path, capsys):
    import test_runner  # noqa: F401 - registers the toy types in this process
    config = write_config(tmp_path / "toy3.py", num_classes=3)
    with pytest.raises(SystemExit) as exc:
        train_tool.main([str(config), "--work-dir", str(tmp_path / "w")])
    err = capsys.readouterr().err
    assert exc.value.code == 1
    assert "error: num_classes=3 in bbox_head (ToyBBoxHead) does not match the 2 CLASSES of ToyDataset" in err
    assert not list((tmp_path / "w").glob("*.pth"))


def test_train_then_test_through_the_cli(tmp_path):
    config = write_config(tmp_path / "toy_cfg.py", max_epochs=2)
    work = tmp_path / "work"
    run_tool("train.py", config, "--work-dir", work, "--seed", "0", "--deterministic",
             "--cfg-options", "optimizer.lr=0.02")
    assert (work / "toy_cfg.py").is_file() and "lr=0.02" in (work / "toy_cfg.py").read_text()
    logs = list(work.glob("*.log.json"))
    assert len(logs) == 1 and (work / logs[0].name[:-5]).is_file()  # <ts>.log next to <ts>.log.json
    records = [json.loads(line) for line in logs[0].read_text().splitlines()]
    assert set(records[0]) == {"env_info", "config", "seed", "exp_name"} and records[0]["exp_name"] == "toy_cfg.py"
    assert [r["mode"] for r in records[1:]] == ["train", "train", "val", "train", "train", "val"]
    ckpt = torch.load(work / "latest.pth", weights_only=True)
    assert ckpt["meta"]["epoch"] == 2 and ckpt["meta"]["CLASSES"] == ("dark", "bright")
    assert ckpt["meta"]["seed"] == 0 and "seed = 0" in ckpt["meta"]["config"]

    out = tmp_path / "results.pkl"
    proc = run_tool("test.py", config, work / "latest.pth", "--out", out, "--eval", "bbox", "--work-dir", tmp_path / "ev")
    with open(out, "rb") as f:
        results = pickle.load(f)
    assert len(results) == 4 and len(results[0]) == 2
    assert "bbox_mAP" in proc.stdout and "test: 100%" in proc.stderr  # progress bar
    evals = list((tmp_path / "ev").glob("eval_*.json"))
    assert len(evals) == 1 and json.loads(evals[0].read_text())["metric"]["bbox_mAP"] == records[-1]["bbox_mAP"]
