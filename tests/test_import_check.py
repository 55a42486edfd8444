"""``import mmdet`` stops with one actionable line when torchvision's compiled ops cannot load."""
import subprocess
import sys
import textwrap

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def test_import_fails_with_fix_when_torchvision_ops_missing():
    # a torchvision whose C++ extension did not load registers no torchvision:: operators
    code = textwrap.dedent("""
        import sys, types
        sys.modules["torchvision"] = types.ModuleType("torchvision")
        try:
            import mmdet
        except ImportError as e:
            print("ERR:" + str(e))
    """)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("ERR:")]
    assert len(line) == 1, r.stdout + r.stderr
    msg = line[0]
    assert "torchvision's compiled ops (nms, roi_align)" in msg
    assert "pip install --force-reinstall torch torchvision" in msg
    assert "\n" not in msg


def test_import_succeeds_with_working_torchvision():
    r = subprocess.run([sys.executable, "-c", "import mmdet, mmdet.models, mmdet.apis; print(mmdet.__version__)"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
