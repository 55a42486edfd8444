"""analyze_logs.py reads seed-format logs and ours, plots PNG curves and computes train time."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "analysis_tools" / "analyze_logs.py"
SEED_LOG = ROOT / "tests" / "data" / "logs" / "seed_format_mask_rcnn.out"

sys.path.insert(0, str(TOOL.parent))
import analyze_logs  # noqa: E402


def _our_log(tmp_path):
    """A log in our format: metadata header first, then train/val records."""
    path = tmp_path / "20260101_000000.log.json"
    lines = [dict(env_info="x", config="model = dict()", seed=0, exp_name="a.py"),
             dict(mode="train", epoch=1, iter=1, lr=0.01, memory=0, data_time=0.1, loss=2.0, time=1.0),
             dict(mode="train", epoch=1, iter=2, lr=0.01, memory=0, data_time=0.1, loss=1.5, time=0.5),
             dict(mode="val", epoch=1, iter=2, lr=0.01, bbox_mAP=0.1),
             dict(mode="train", epoch=2, iter=1, lr=0.01, memory=0, data_time=0.1, loss=1.0, time=0.7),
             dict(mode="train", epoch=2, iter=2, lr=0.01, memory=0, data_time=0.1, loss=0.5, time=0.3),
             dict(mode="val", epoch=2, iter=2, lr=0.01, bbox_mAP=0.3)]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


def test_seed_log_curves_use_global_iterations_and_epochs():
    records = analyze_logs.load_json_log(SEED_LOG)
    xs, ys, axis = analyze_logs.curve(records, "loss")
    assert axis == "iter"
    assert xs[:3] == [50, 500, 7300] and xs[-1] == 11 * 7300 + 7300
    assert ys[0] == pytest.approx(4.07046)
    xs, ys, axis = analyze_logs.curve(records, "bbox_mAP")
    assert axis == "epoch" and xs == list(range(1, 13)) and ys[-1] == pytest.approx(0.463)


def test_our_log_header_skipped_and_train_time(tmp_path):
    records = analyze_logs.load_json_log(_our_log(tmp_path))
    assert len(records) == 6
    stats = analyze_logs.train_time_stats(records)          # first record of each epoch left out
    assert stats["epoch_means"] == {1: 0.5, 2: 0.3} and stats["slowest_epoch"] == 1
    stats = analyze_logs.train_time_stats(records, include_outliers=True)
    assert stats["epoch_means"][1] == pytest.approx(0.75)


def test_unknown_key_and_empty_log_errors(tmp_path):
    with pytest.raises(KeyError, match="key 'loss_foo' not found in the log; available: .*loss_cls"):
        analyze_logs.curve(analyze_logs.load_json_log(SEED_LOG), "loss_foo")
    empty = tmp_path / "empty.log.json"
    empty.write_text('{"env_info": "only a header"}\n')
    with pytest.raises(ValueError, match="no train/val records found"):
        analyze_logs.load_json_log(empty)


def test_cli_plot_curve_writes_png_comparing_two_logs(tmp_path):
    out = tmp_path / "curves.png"
    r = subprocess.run([sys.executable, str(TOOL), "plot_curve", str(SEED_LOG), str(_our_log(tmp_path)),
                        "--keys", "loss", "bbox_mAP", "--legend", "seed", "ours", "--out", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    r = subprocess.run([sys.executable, str(TOOL), "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "plot_curve" in r.stdout and "cal_train_time" in r.stdout
