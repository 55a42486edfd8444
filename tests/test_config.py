"""Config loading/merging (mmcv 1.x semantics), ConfigDict, dump round trips, registry build errors."""
from __future__ import annotations

import copy
import importlib.util
import json
import pickle
from pathlib import Path

import pytest

from mmdet.engine.config import Config, ConfigDict
from mmdet.engine.registry import Registry, build_from_cfg

TEST_DATA = Path(__file__).resolve().parent / "data"
CFG_DIR = TEST_DATA / "configs"
GOLDEN_DETECTOR_CFG = TEST_DATA / "golden" / "detectors" / "mask_rcnn_r50_fpn_config.json"
PRINT_CONFIG = Path(__file__).resolve().parents[1] / "tools" / "misc" / "print_config.py"


def _reload(cfg: Config) -> Config:
    return Config.fromstring(cfg.pretty_text, ".py")


# ---------------------------------------------------------------------------------------------
# inheritance and merge rules
# ---------------------------------------------------------------------------------------------
def test_child_merges_dicts_and_replaces_lists():
    cfg = Config.fromfile(CFG_DIR / "child.py")
    backbone = cfg.model.backbone
    # dict over dict: merged key by key
    assert backbone == dict(type="ResNet", depth=101, out_indices=(0, 1, 2, 3), frozen_stages=1,
                            norm_cfg=dict(type="BN", requires_grad=True))
    # lists replaced wholesale, not merged element-wise
    assert cfg.model.neck.in_channels == [64, 128, 256, 512]
    assert cfg.model.neck.num_outs == 5
    # a list over a dict replaces it too
    assert [h.type for h in cfg.model.roi_head.bbox_head] == ["ConvFCBBoxHead"] * 3
    assert cfg.model.roi_head.type == "StandardRoIHead"
    # _delete_: nothing of the SGD base survives, and the marker is gone
    assert cfg.optimizer == dict(type="AdamW", lr=0.0001, betas=(0.9, 0.999), weight_decay=0.05,
                                 paramwise_cfg=dict(custom_keys={"norm": dict(decay_mult=0.0)}))
    assert cfg.lr_config == dict(policy="step", warmup="linear", warmup_iters=500, warmup_ratio=0.001,
                                 step=[27, 33])
    assert cfg.runner == dict(type="EpochBasedRunner", max_epochs=36)
    # helper variable re-bound in the child: data.train.pipeline keeps the base's list
    assert cfg.train_pipeline == [dict(type="LoadImageFromFile")]
    assert len(cfg.data.train.pipeline) == 5
    assert cfg.data.train.pipeline[4] == dict(type="Normalize", mean=[123.675, 116.28, 103.53],
                                              std=[58.395, 57.12, 57.375], to_rgb=True)
    assert cfg.data.train.ann_file == "data/coco/annotations/instances_train2017.json"
    # modules, functions and dunder names are not keys
    for absent in ("osp", "helper", "__private", "_base_"):
        assert absent not in cfg
    assert cfg.find_unused_parameters is True
    assert cfg.filename == str(CFG_DIR / "child.py")


def test_text_lists_every_file_bases_first():
    cfg = Config.fromfile(CFG_DIR / "child.py")
    order = ["model.py", "schedule.py", "runtime.py", "data.py", "child.py"]
    positions = [cfg.text.index(str(CFG_DIR / ("base" if n != "child.py" else "") / n)) for n in order]
    assert positions == sorted(positions)
    assert "train_pipeline = [dict(type='LoadImageFromFile')]" in cfg.text


def test_recursive_bases_through_relative_paths_and_delete_on_nested_key():
    cfg = Config.fromfile(CFG_DIR / "nested" / "deeper" / "grandchild.py")
    assert cfg.model.backbone == dict(type="SwinTransformer", embed_dims=96)
    assert cfg.model.neck.in_channels == [64, 128, 256, 512]  # from the child, two levels up
    assert cfg.runner == dict(type="EpochBasedRunnerAmp", max_epochs=36)
    assert cfg.lr_config.step == [27, 33]
    assert cfg.text.count("\n") > 40 and str(CFG_DIR / "base" / "model.py") in cfg.text


def test_delete_is_kept_when_the_base_lacks_the_key():
    """mmcv pops ``_delete_`` only when the key exists in the base; reproduce that."""
    cfg = Config.fromfile(CFG_DIR / "delete_without_base.py")
    assert cfg.optimizer == dict(_delete_=True, type="SGD", lr=0.01)


def test_base_variable_substitution_keeps_python_types():
    cfg = Config.fromfile(CFG_DIR / "base_vars.py")
    assert cfg.base_lr == 0.02 and isinstance(cfg.base_lr, float)
    assert cfg.steps == [8, 11]
    assert cfg.scheduler_copy.cfg == dict(policy="step", warmup="linear", warmup_iters=500, warmup_ratio=0.001,
                                          step=[8, 11])
    assert cfg.scheduler_copy.first_step == 8
    # the substituted dict is a copy: changing it leaves the base value alone
    cfg.scheduler_copy.cfg.step.append(99)
    assert cfg.lr_config.step == [8, 11]


def test_predefined_variables():
    path = CFG_DIR / "predefined_vars.py"
    cfg = Config.fromfile(path)
    assert cfg.dir_name == str(CFG_DIR).replace("\\", "/")
    assert (cfg.base_name, cfg.stem, cfg.ext) == ("predefined_vars.py", "predefined_vars", ".py")
    assert cfg.work_dir == "./work_dirs/predefined_vars"
    raw = Config.fromfile(path, use_predefined_variables=False)
    assert raw.stem == "{{fileBasenameNoExtension}}"


def test_json_config_with_python_base():
    cfg = Config.fromfile(CFG_DIR / "child.json")
    assert cfg.optimizer == dict(type="SGD", lr=0.01, momentum=0.9, weight_decay=0.0001)
    assert cfg.runner.max_epochs == 24 and cfg.json_only == [1, 2, 3]
    assert json.loads(cfg.dump())["runner"] == dict(type="EpochBasedRunner", max_epochs=24)


def test_custom_imports(tmp_path):
    ok = tmp_path / "ok.py"
    ok.write_text("custom_imports = dict(imports=['json', 'mmdet.engine.optimizer'], allow_failed_imports=False)\n")
    assert Config.fromfile(ok).custom_imports.imports == ["json", "mmdet.engine.optimizer"]
    bad = tmp_path / "bad.py"
    bad.write_text("custom_imports = dict(imports=['mmdet_no_such_module'])\n")
    with pytest.raises(ImportError, match="Failed to import mmdet_no_such_module"):
        Config.fromfile(bad)
    assert "custom_imports" in Config.fromfile(bad, import_custom_modules=False)
    tolerant = tmp_path / "tolerant.py"
    tolerant.write_text("custom_imports = dict(imports=['mmdet_no_such_module'], allow_failed_imports=True)\n")
    with pytest.warns(UserWarning, match="mmdet_no_such_module failed to import"):
        Config.fromfile(tolerant)


# ---------------------------------------------------------------------------------------------
# errors: one line naming the key / file
# ---------------------------------------------------------------------------------------------
def test_duplicate_keys_among_bases_name_key_and_files():
    with pytest.raises(KeyError) as info:
        Config.fromfile(CFG_DIR / "errors" / "duplicate_bases.py")
    msg = str(info.value)
    assert "Duplicate key is not allowed among bases" in msg and "'optimizer'" in msg
    assert str(CFG_DIR / "errors" / "dup_a.py") in msg and str(CFG_DIR / "errors" / "dup_b.py") in msg
    assert "a_only" not in msg


def test_reserved_key_rejected():
    with pytest.raises(KeyError, match="'filename' is reserved for config file") as info:
        Config.fromfile(CFG_DIR / "errors" / "reserved_key.py")
    assert "reserved_key.py" in str(info.value)
    for key in ("text", "pretty_text"):
        with pytest.raises(KeyError, match=f"'{key}' is reserved"):
            Config({key: 1})


def test_syntax_error_names_the_file():
    path = CFG_DIR / "errors" / "syntax_error.py"
    with pytest.raises(SyntaxError, match="There are syntax errors in config file") as info:
        Config.fromfile(path)
    assert str(path) in str(info.value)


def test_runtime_error_in_config_names_the_file():
    path = CFG_DIR / "errors" / "runtime_error.py"
    with pytest.raises(NameError) as info:
        Config.fromfile(path)
    assert any(str(path) in note for note in info.value.__notes__)
    assert info.traceback[-1].path == path  # the traceback points into the config file itself


def test_missing_base_names_missing_file_and_referrer():
    with pytest.raises(FileNotFoundError) as info:
        Config.fromfile(CFG_DIR / "errors" / "missing_base.py")
    msg = str(info.value)
    assert str(CFG_DIR / "base" / "no_such_file.py") in msg and "missing_base.py" in msg
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Config.fromfile(CFG_DIR / "no_such_config.py")


def test_circular_bases_and_unsupported_extension(tmp_path):
    with pytest.raises(RecursionError, match="circular _base_ chain"):
        Config.fromfile(CFG_DIR / "errors" / "cycle_a.py")
    txt = tmp_path / "cfg.txt"
    txt.write_text("a = 1\n")
    with pytest.raises(OSError, match="only .py/.json/.yaml/.yml"):
        Config.fromfile(txt)


def test_dict_over_non_dict_base_value_needs_delete():
    with pytest.raises(TypeError, match="log_level is a dict in the child config but is of type <class 'str'> in "
                                        "base config. You may set `_delete_=True`"):
        Config.fromfile(CFG_DIR / "errors" / "dict_over_value.py")


def test_base_variable_without_bases():
    with pytest.raises(KeyError, match=r"uses \{\{_base_.optimizer.lr\}\} but has no _base_"):
        Config.fromfile(CFG_DIR / "errors" / "base_var_without_base.py")


# ---------------------------------------------------------------------------------------------
# dump / pretty_text
# ---------------------------------------------------------------------------------------------
def test_dump_reloads_to_the_same_dict(tmp_path):
    cfg = Config.fromfile(CFG_DIR / "nested" / "deeper" / "grandchild.py")
    cfg.merge_from_dict({"model.backbone.depths": (2, 2, 6, 2), "extra": {"class": 1, "a-b": [(1,)], 3: None},
                         "limits": [float("inf"), -float("inf"), 1e-4, 1.0]})
    assert _reload(cfg).to_dict() == cfg.to_dict()
    out = tmp_path / "dumped" / "config.py"
    assert cfg.dump(out) is None
    reloaded = Config.fromfile(out)
    assert reloaded.to_dict() == cfg.to_dict()
    assert reloaded.model.backbone.depths == (2, 2, 6, 2)  # tuples stay tuples
    assert cfg.dump() == cfg.pretty_text
    assert all(len(line) <= 100 for line in cfg.pretty_text.splitlines())
    json_out = tmp_path / "config.json"
    cfg.dump(json_out)
    assert json.loads(json_out.read_text())["runner"] == dict(type="EpochBasedRunnerAmp", max_epochs=36)


def test_pretty_text_reads_like_mmcv_output():
    golden = json.loads(GOLDEN_DETECTOR_CFG.read_text())
    mmcv_text = golden["model_pretty_text"]
    # mmcv's own pretty_text (a real mmdet 2.28 dump) parses to the stored dict ...
    ours = Config.fromstring(mmcv_text, ".py")
    assert json.loads(json.dumps(ours.model.to_dict())) == golden["model"]
    # ... and our rendering of it is the same text, line for line, in the first 30 lines
    assert ours.pretty_text.splitlines()[:30] == mmcv_text.splitlines()[:30]


def test_fromstring_and_non_python_top_level_key():
    cfg = Config.fromstring("a = dict(b=1)\n", ".py")
    assert cfg.a.b == 1 and cfg.filename is None and cfg.text == "a = dict(b=1)\n"
    with pytest.raises(ValueError, match="not a Python identifier"):
        Config({"a-b": 1}).pretty_text
    with pytest.raises(OSError, match="file_format must be one of"):
        Config.fromstring("a = 1", ".txt")


# ---------------------------------------------------------------------------------------------
# access, copies
# ---------------------------------------------------------------------------------------------
def test_attribute_item_access_and_missing_key_error():
    cfg = Config.fromfile(CFG_DIR / "child.py")
    assert cfg.model.backbone.depth == cfg["model"]["backbone"]["depth"] == 101
    assert cfg.get("fp16") is None and cfg.get("runner").max_epochs == 36
    with pytest.raises(AttributeError, match="no attribute 'backbon'.*did you mean 'backbone'"):
        cfg.model.backbon
    with pytest.raises(AttributeError, match="'fp16'"):
        cfg.fp16
    with pytest.raises(KeyError):
        cfg["fp16"]
    cfg.fp16 = dict(loss_scale=512.0)
    assert isinstance(cfg.fp16, ConfigDict) and cfg.fp16.loss_scale == 512.0
    cfg.model.neck = {"type": "FPN", "norm_cfg": {"type": "LN"}}
    assert cfg.model.neck.norm_cfg.type == "LN"
    cfg.data.train.pipeline.append({"type": "Pad"})
    assert "model" in cfg and "nope" not in cfg
    assert list(cfg)[:3] == list(cfg.keys())[:3] and len(cfg) == len(cfg.to_dict())
    del cfg.fp16
    assert "fp16" not in cfg


def test_config_dict_conversion_and_update():
    d = ConfigDict(a=dict(b=[dict(c=1), (dict(d=2),)]), e=1)
    assert isinstance(d.a.b[0], ConfigDict) and isinstance(d.a.b[1][0], ConfigDict)
    assert d.a.b[1][0].d == 2
    d.update(a=dict(x=3))  # recursive, as mmcv's addict-based ConfigDict
    assert d.a.x == 3 and d.a.b[0].c == 1
    plain = d.to_dict()
    assert type(plain["a"]) is dict and type(plain["a"]["b"][0]) is dict and plain["a"]["b"][1][0] == {"d": 2}
    d.setdefault("f", {"g": 1})
    assert d.f.g == 1


def test_copies_and_pickle():
    cfg = Config.fromfile(CFG_DIR / "child.py")
    deep = copy.deepcopy(cfg)
    deep.model.backbone.depth = 18
    assert cfg.model.backbone.depth == 101 and isinstance(deep, Config) and deep.filename == cfg.filename
    shallow = cfg.copy()
    shallow.new_key = 1
    assert "new_key" not in cfg and shallow.model is cfg.model
    restored = pickle.loads(pickle.dumps(cfg))
    assert restored.to_dict() == cfg.to_dict() and restored.text == cfg.text
    assert isinstance(restored.model, ConfigDict)


# ---------------------------------------------------------------------------------------------
# merge_from_dict (--cfg-options)
# ---------------------------------------------------------------------------------------------
def test_merge_from_dict_dotted_keys_and_list_indices(mmdet_warnings):
    cfg = Config.fromfile(CFG_DIR / "child.py")
    created = cfg.merge_from_dict({"optimizer.lr": 0.0002, "data.train.pipeline.3.flip_ratio": 0.0,
                                   "model.backbone.norm_cfg": None, "lr_config.step": [5, 7]})
    assert created == [] and mmdet_warnings == []
    assert cfg.optimizer.lr == 0.0002 and cfg.optimizer.weight_decay == 0.05
    assert cfg.data.train.pipeline[3] == dict(type="RandomFlip", flip_ratio=0.0)
    assert cfg.data.train.pipeline[0] == dict(type="LoadImageFromFile")
    assert cfg.model.backbone.norm_cfg is None  # a non-dict value replaces a dict
    assert cfg.lr_config.step == [5, 7]
    with pytest.raises(KeyError, match="Index 5 exceeds the length of list"):
        cfg.merge_from_dict({"data.train.pipeline.5.flip_ratio": 0.0})
    with pytest.raises(TypeError, match="cannot set key 'type' inside a list"):
        cfg.merge_from_dict({"data.train.pipeline.type": "X"})
    no_list_keys = Config.fromfile(CFG_DIR / "child.py")
    with pytest.raises(TypeError, match="pipeline is a dict in the child config but is of type <class 'list'>"):
        no_list_keys.merge_from_dict({"data.train.pipeline.3.flip_ratio": 0.0}, allow_list_keys=False)


def test_merge_from_dict_creates_missing_keys_with_a_warning(mmdet_warnings):
    cfg = Config.fromfile(CFG_DIR / "child.py")
    created = cfg.merge_from_dict({"model.backbone.use_chekpoint": True, "fp16.loss_scale": 512.0})
    assert created == ["model.backbone.use_chekpoint", "fp16.loss_scale"]
    assert mmdet_warnings == ["key model.backbone.use_chekpoint does not exist in the config; created",
                              "key fp16.loss_scale does not exist in the config; created"]
    assert cfg.model.backbone.use_chekpoint is True and cfg.fp16 == dict(loss_scale=512.0)
    strict = Config.fromfile(CFG_DIR / "child.py")
    with pytest.raises(KeyError, match="key model.backbone.use_chekpoint does not exist in the config "
                                       r"\('model.backbone.use_chekpoint' is missing\)"):
        strict.merge_from_dict({"model.backbone.use_chekpoint": True}, strict=True)
    assert "use_chekpoint" not in strict.model.backbone
    strict.merge_from_dict({"model.backbone.depth": 50}, strict=True)
    assert strict.model.backbone.depth == 50


def test_print_config_tool(capsys, mmdet_warnings):
    spec = importlib.util.spec_from_file_location("print_config", PRINT_CONFIG)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    main = tool.main
    main([str(CFG_DIR / "child.py"), "--cfg-options", "optimizer.lr=2e-4", "model.backbone.use_chekpoint=True",
          "runner.max_epochs=3"])
    out = capsys.readouterr().out
    assert out.startswith("Config:\n")
    reloaded = Config.fromstring(out[len("Config:\n"):], ".py")
    assert reloaded.optimizer.lr == 2e-4 and reloaded.runner.max_epochs == 3
    assert reloaded.model.backbone.use_chekpoint is True
    assert mmdet_warnings == ["key model.backbone.use_chekpoint does not exist in the config; created"]
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert "--cfg-options" in capsys.readouterr().out
    with pytest.raises(ValueError, match="--options and --cfg-options cannot be both specified"):
        main([str(CFG_DIR / "child.py"), "--options", "a=1", "--cfg-options", "b=2"])


# ---------------------------------------------------------------------------------------------
# registry build errors
# ---------------------------------------------------------------------------------------------
WIDGETS = Registry("widget")


@WIDGETS.register_module()
class RoundWidget:
    def __init__(self, radius, color="red"):
        self.radius = radius
        self.color = color


@WIDGETS.register_module()
class SquareWidget:
    def __init__(self, side):
        self.side = side


def test_registry_unknown_type_names_type_registry_and_closest():
    with pytest.raises(KeyError) as info:
        build_from_cfg(dict(type="RoundWidgt", radius=1), WIDGETS)
    msg = str(info.value)
    assert "'RoundWidgt' is not registered in the widget registry" in msg and "did you mean 'RoundWidget'" in msg


def test_registry_missing_argument_names_the_class():
    with pytest.raises(TypeError, match=r"RoundWidget \(from the widget registry\) could not be built: .*radius"):
        build_from_cfg(dict(type="RoundWidget", color="blue"), WIDGETS)
    with pytest.raises(TypeError, match="SquareWidget .*unexpected keyword argument 'radius'"):
        build_from_cfg(dict(type="SquareWidget", side=1, radius=2), WIDGETS)
    with pytest.raises(KeyError, match="has no 'type' key"):
        build_from_cfg(dict(radius=1), WIDGETS)
    widget = build_from_cfg(ConfigDict(type="RoundWidget", radius=2), WIDGETS, default_args=dict(color="blue"))
    assert (widget.radius, widget.color) == (2, "blue")
