"""Python config files in the mmdetection 2.x schema (the semantics of mmcv 1.x ``Config``).

A config file is Python (``.py``; ``.json`` and, with PyYAML, ``.yaml`` also load).
Every module-level name becomes a key, except names starting with ``__``,
modules and functions. Inheritance rules:

* ``_base_ = 'a.py'`` or ``['a.py', 'b.py']``: paths relative to the declaring
  file, loaded recursively in list order. Two bases of one file defining the same
  top-level key -> ``KeyError`` naming the key and both files.
* the child dict is merged into the merged bases: a dict over a dict merges
  recursively; anything else **replaces** (lists and tuples are never merged
  element-wise). ``_delete_=True`` inside a child dict discards the base value
  (it is popped only when the key exists in the base, exactly as mmcv does).
* ``{{_base_.a.b}}`` is replaced by the value of ``a.b`` in the merged bases;
  ``{{ fileDirname }}``, ``{{ fileBasename }}``, ``{{ fileBasenameNoExtension }}``
  and ``{{ fileExtname }}`` are replaced textually before the file is executed.
* ``custom_imports=dict(imports=[...], allow_failed_imports=False)`` is imported
  after loading; ``filename``, ``text`` and ``pretty_text`` are reserved keys.

``--cfg-options`` on the command line is parsed by :class:`DictAction` and applied
with :meth:`Config.merge_from_dict` (dotted keys, numeric segments index lists).
"""
from __future__ import annotations

import argparse
import copy
import difflib
import importlib
import json
import keyword
import logging
import math
import os
import os.path as osp
import re
import tempfile
import uuid
import warnings
from pathlib import Path
from types import FunctionType, ModuleType
from typing import Any, Iterator

BASE_KEY = "_base_"
DELETE_KEY = "_delete_"
DEPRECATION_KEY = "_deprecation_"
RESERVED_KEYS = ("filename", "text", "pretty_text")
SUPPORTED_EXTENSIONS = (".py", ".json", ".yaml", ".yml")
PRETTY_TEXT_WIDTH = 79

_BASE_VAR_PATTERN = re.compile(r"\{\{\s*" + BASE_KEY + r"\.([\w\.]+)\s*\}\}")
_logger = logging.getLogger("mmdet")


# --------------------------------------------------------------------------------------------
# ConfigDict
# --------------------------------------------------------------------------------------------
def _wrap(value: Any) -> Any:
    """Turn plain dicts (also inside lists/tuples) into :class:`ConfigDict`; other values pass through."""
    if isinstance(value, ConfigDict):
        return value
    if isinstance(value, dict):
        return ConfigDict(value)
    if type(value) in (list, tuple):
        items = [_wrap(v) for v in value]
        if all(a is b for a, b in zip(items, value)):
            return value
        return type(value)(items)
    return value


def _unwrap(value: Any) -> Any:
    """Plain-Python copy of ``value``: ConfigDicts become dicts, recursively (lists/tuples keep their type)."""
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    if type(value) in (list, tuple):
        return type(value)(_unwrap(v) for v in value)
    return value


class ConfigDict(dict):
    """A dict with attribute access (``cfg.model.backbone.type``); nested dicts become ConfigDicts.

    A missing attribute raises ``AttributeError`` naming the key (and the closest
    existing keys); ``get(key, default)`` is the safe lookup. ``update`` merges
    nested dicts recursively, as mmcv's (addict-based) ConfigDict does.
    """

    def __init__(self, *args, **kwargs):
        super().__init__()
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __setitem__(self, key, value):
        super().__setitem__(key, _wrap(value))

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            hint = ""
            if not name.startswith("_"):
                close = difflib.get_close_matches(name, [str(k) for k in self.keys()], n=3, cutoff=0.6)
                hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise AttributeError(f"'ConfigDict' object has no attribute '{name}' "
                                 f"(the config has no key '{name}' here{hint})") from None

    def __setattr__(self, name: str, value):
        self[name] = value

    def __delattr__(self, name: str):
        try:
            del self[name]
        except KeyError:
            raise AttributeError(f"'ConfigDict' object has no attribute '{name}'") from None

    def setdefault(self, key, default=None):
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args, **kwargs):
        """Recursive update: a dict value over an existing dict value is merged into it."""
        for key, value in dict(*args, **kwargs).items():
            if key in self and isinstance(self[key], dict) and isinstance(value, dict):
                self[key].update(value)
            else:
                self[key] = value

    def copy(self) -> "ConfigDict":
        return ConfigDict(dict.copy(self))

    __copy__ = copy

    def __deepcopy__(self, memo) -> "ConfigDict":
        other = ConfigDict()
        memo[id(self)] = other
        for key, value in self.items():
            dict.__setitem__(other, copy.deepcopy(key, memo), copy.deepcopy(value, memo))
        return other

    def to_dict(self) -> dict:
        """Plain nested dicts (lists and tuples kept)."""
        return _unwrap(self)


# --------------------------------------------------------------------------------------------
# pretty_text: the config rendered as re-loadable Python source
# --------------------------------------------------------------------------------------------
def _is_kwarg_name(key: Any) -> bool:
    return isinstance(key, str) and key.isidentifier() and not keyword.iskeyword(key)


def _inline(value: Any) -> str:
    """``value`` as one line of Python source."""
    if isinstance(value, dict):
        if all(_is_kwarg_name(k) for k in value):
            return "dict(" + ", ".join(f"{k}={_inline(v)}" for k, v in value.items()) + ")"
        return "{" + ", ".join(f"{_inline(k)}: {_inline(v)}" for k, v in value.items()) + "}"
    if type(value) is list:
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    if type(value) is tuple:
        body = ", ".join(_inline(v) for v in value)
        return "(" + body + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, float) and not math.isfinite(value):
        return f"float('{value}')"
    return repr(value)


def _render(value: Any, indent: int, column: int) -> str:
    """``value`` as Python source that starts at ``column`` on a line indented by ``indent``.

    One line when it fits in :data:`PRETTY_TEXT_WIDTH`; otherwise one item per line,
    indented by 4 more spaces.
    """
    one_line = _inline(value)
    is_container = isinstance(value, dict) or type(value) in (list, tuple)
    if not is_container or len(value) == 0 or column + len(one_line) + 1 <= PRETTY_TEXT_WIDTH:
        return one_line
    inner = indent + 4
    pad = " " * inner
    if isinstance(value, dict):
        if all(_is_kwarg_name(k) for k in value):
            items = [f"{pad}{k}={_render(v, inner, inner + len(k) + 1)}" for k, v in value.items()]
            return "dict(\n" + ",\n".join(items) + ")"
        items = []
        for k, v in value.items():
            key_text = _inline(k)
            items.append(f"{pad}{key_text}: {_render(v, inner, inner + len(key_text) + 2)}")
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    items = [pad + _render(v, inner, inner) for v in value]
    if type(value) is list:
        return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"
    return "(\n" + ",\n".join(items) + ("," if len(value) == 1 else "") + "\n" + " " * indent + ")"


def format_config_text(cfg_dict: dict) -> str:
    """Render a config dict as Python source, one ``key = value`` statement per top-level key."""
    lines = []
    for key, value in cfg_dict.items():
        if not _is_kwarg_name(key):
            raise ValueError(f"top-level config key {key!r} is not a Python identifier, so the config cannot be "
                             f"written as Python; rename it (e.g. fix the --cfg-options key)")
        lines.append(f"{key} = {_render(value, 0, len(key) + 3)}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------
def import_modules_from_strings(imports: str | list[str] | None, allow_failed_imports: bool = False):
    """Import modules named in ``custom_imports``; returns the module or the list of modules."""
    if not imports:
        return None
    single = isinstance(imports, str)
    names = [imports] if single else imports
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise TypeError(f"custom_imports.imports must be a str or a list of str, got {imports!r}")
    modules = []
    for name in names:
        try:
            modules.append(importlib.import_module(name))
        except ImportError as e:
            if not allow_failed_imports:
                raise ImportError(f"Failed to import {name} (listed in custom_imports): {e}") from e
            warnings.warn(f"{name} failed to import and is ignored (custom_imports.allow_failed_imports=True)")
            modules.append(None)
    return modules[0] if single else modules


def _substitute_predefined_vars(text: str, filename: str) -> str:
    dirname = osp.dirname(filename)
    basename = osp.basename(filename)
    values = {
        "fileDirname": dirname,
        "fileBasename": basename,
        "fileBasenameNoExtension": osp.splitext(basename)[0],
        "fileExtname": osp.splitext(filename)[1],
    }
    for name, value in values.items():
        text = re.sub(r"\{\{\s*" + name + r"\s*\}\}", value.replace("\\", "/"), text)
    return text


def _mark_base_vars(text: str) -> tuple[str, dict[str, str]]:
    """Replace every ``{{_base_.a.b}}`` by a unique quoted placeholder; return the text and placeholder -> 'a.b'."""
    placeholders: dict[str, str] = {}

    def replace(match: re.Match) -> str:
        token = f"_mmdet_base_var_{uuid.uuid4().hex}_"
        placeholders[token] = match.group(1)
        return f'"{token}"'

    return _BASE_VAR_PATTERN.sub(replace, text), placeholders


def _lookup_base_var(base_cfg: dict, path: str, filename: str) -> Any:
    value: Any = base_cfg
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif type(value) in (list, tuple) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise KeyError(f"{{{{_base_.{path}}}}} in {filename}: the merged bases have no '{part}' on that path")
    return copy.deepcopy(value)


def _substitute_base_vars(value: Any, placeholders: dict[str, str], base_cfg: dict, filename: str) -> Any:
    if isinstance(value, dict):
        return {k: _substitute_base_vars(v, placeholders, base_cfg, filename) for k, v in value.items()}
    if type(value) in (list, tuple):
        return type(value)(_substitute_base_vars(v, placeholders, base_cfg, filename) for v in value)
    if isinstance(value, str) and value in placeholders:
        return _lookup_base_var(base_cfg, placeholders[value], filename)
    return value


def _exec_python_config(text: str, filename: str) -> dict:
    """Execute config source; keep module-level names except dunders, modules and functions."""
    try:
        code = compile(text, filename, "exec")
    except SyntaxError as e:
        raise SyntaxError(f"There are syntax errors in config file {filename}: {e.msg} (line {e.lineno})") from None
    namespace: dict[str, Any] = {"__file__": filename, "__name__": "_mmdet_config_"}
    try:
        exec(code, namespace)
    except Exception as e:
        e.add_note(f"(raised while executing config file {filename})")
        raise
    return {name: value for name, value in namespace.items()
            if not name.startswith("__") and not isinstance(value, (ModuleType, FunctionType))}


def _parse_config_text(text: str, filename: str, ext: str) -> dict:
    if ext == ".py":
        return _exec_python_config(text, filename)
    if ext == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"config file {filename} is not valid JSON: {e}") from None
    try:
        import yaml
    except ImportError:
        raise ImportError(f"reading {filename} needs PyYAML: pip install pyyaml") from None
    return yaml.safe_load(text) or {}


def _file2dict(filename: str, use_predefined_variables: bool = True,
               chain: tuple[str, ...] = ()) -> tuple[dict, str]:
    """Load ``filename`` and its ``_base_`` chain; return (merged dict, text of all files, bases first)."""
    filename = osp.abspath(osp.expanduser(str(filename)))
    if not osp.isfile(filename):
        referrer = f" (a _base_ of {chain[-1]})" if chain else ""
        raise FileNotFoundError(f'config file "{filename}" does not exist{referrer}')
    if filename in chain:
        raise RecursionError(f"circular _base_ chain: {' -> '.join(chain + (filename,))}")
    ext = osp.splitext(filename)[1]
    if ext not in SUPPORTED_EXTENSIONS:
        raise OSError(f"config file {filename}: only {'/'.join(SUPPORTED_EXTENSIONS)} files are supported")
    with open(filename, encoding="utf-8") as f:
        raw_text = f.read()
    text = _substitute_predefined_vars(raw_text, filename) if use_predefined_variables else raw_text
    text, placeholders = _mark_base_vars(text)
    cfg_dict = _parse_config_text(text, filename, ext)
    if not isinstance(cfg_dict, dict):
        raise TypeError(f"config file {filename} must define a mapping, got {type(cfg_dict).__name__}")
    cfg_text = filename + "\n" + raw_text

    if DEPRECATION_KEY in cfg_dict:
        info = cfg_dict.pop(DEPRECATION_KEY)
        expected = info.get("expected", "another config") if isinstance(info, dict) else "another config"
        warnings.warn(f"the config file {filename} is deprecated; use {expected} instead")

    if BASE_KEY not in cfg_dict:
        if placeholders:
            raise KeyError(f"{filename} uses {{{{_base_.{next(iter(placeholders.values()))}}}}} but has no _base_")
        return cfg_dict, cfg_text

    base_files = cfg_dict.pop(BASE_KEY)
    if isinstance(base_files, str):
        base_files = [base_files]
    if not isinstance(base_files, (list, tuple)) or not all(isinstance(b, str) for b in base_files):
        raise TypeError(f"_base_ in {filename} must be a str or a list of str, got {base_files!r}")
    cfg_dir = osp.dirname(filename)
    base_cfg: dict = {}
    key_origin: dict[str, str] = {}
    texts = []
    for base in base_files:
        base_path = osp.abspath(osp.join(cfg_dir, base))
        sub_dict, sub_text = _file2dict(base_path, use_predefined_variables, chain + (filename,))
        texts.append(sub_text)
        for key in sub_dict:
            if key in key_origin:
                raise KeyError(f"Duplicate key is not allowed among bases: '{key}' is defined in both "
                               f"{key_origin[key]} and {base_path} (bases of {filename})")
            key_origin[key] = base_path
        base_cfg.update(sub_dict)

    cfg_dict = _substitute_base_vars(cfg_dict, placeholders, base_cfg, filename)
    merged = merge_a_into_b(cfg_dict, base_cfg)
    texts.append(cfg_text)
    return merged, "\n".join(texts)


def merge_a_into_b(a: dict, b: dict | list, allow_list_keys: bool = False):
    """Merge child ``a`` into base ``b`` (returns a new object; ``b`` is not modified).

    Dict over dict merges recursively; everything else replaces. ``_delete_=True`` in
    a child dict discards the base value. With ``allow_list_keys``, purely numeric
    keys index into a base list (``{'2': {...}}`` merges into element 2).
    """
    b = b.copy()
    for key, value in a.items():
        if isinstance(b, list):
            if not (allow_list_keys and isinstance(key, str) and key.isdigit()):
                raise TypeError(f"cannot set key '{key}' inside a list: use a list index "
                                f"(e.g. pipeline.2.flip_ratio=0.0) or replace the whole list")
            index = int(key)
            if index >= len(b):
                raise KeyError(f"Index {index} exceeds the length of list {b} (length {len(b)})")
            b[index] = merge_a_into_b(value, b[index], allow_list_keys) if isinstance(value, dict) else value
        elif isinstance(value, dict):
            if key in b and not value.pop(DELETE_KEY, False):
                allowed = (dict, list) if allow_list_keys else dict
                if not isinstance(b[key], allowed):
                    raise TypeError(
                        f"{key}={value} in child config cannot inherit from base because {key} is a dict in the "
                        f"child config but is of type {type(b[key])} in base config. You may set "
                        f"`{DELETE_KEY}=True` to ignore the base config.")
                b[key] = merge_a_into_b(value, b[key], allow_list_keys)
            else:
                b[key] = ConfigDict(value)
        else:
            b[key] = value
    return b


def _missing_prefix(cfg: Any, full_key: str) -> str | None:
    """The first prefix of dotted ``full_key`` that does not exist in ``cfg`` (None if the full key exists)."""
    node = cfg
    parts = full_key.split(".")
    for depth, part in enumerate(parts):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return ".".join(parts[:depth + 1])
    return None


# --------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------
class Config:
    """A loaded config: attribute and item access to a :class:`ConfigDict`, plus its source.

    Example::

        cfg = Config.fromfile('configs/vitaev2/mask_rcnn_vitaev2_s_mstrain_480-800_adamw_1x_coco.py')
        cfg.merge_from_dict({'optimizer.lr': 2e-4})
        cfg.model.backbone.type, cfg.get('fp16'), cfg['lr_config']['step']
        cfg.dump('work_dir/config.py')   # re-loads to the same dict
    """

    def __init__(self, cfg_dict: dict | None = None, cfg_text: str | None = None, filename: str | None = None):
        if cfg_dict is None:
            cfg_dict = {}
        elif not isinstance(cfg_dict, dict):
            raise TypeError(f"cfg_dict must be a dict, but got {type(cfg_dict)}")
        for key in cfg_dict:
            if key in RESERVED_KEYS:
                where = f" in {filename}" if filename else ""
                raise KeyError(f"'{key}' is reserved for config file ({', '.join(RESERVED_KEYS)} are attributes "
                               f"of Config); rename the variable '{key}'{where}")
        if isinstance(filename, Path):
            filename = str(filename)
        object.__setattr__(self, "_cfg_dict", ConfigDict(cfg_dict))
        object.__setattr__(self, "_filename", filename)
        if cfg_text is None:
            cfg_text = ""
            if filename is not None and osp.isfile(filename):
                with open(filename, encoding="utf-8") as f:
                    cfg_text = f.read()
        object.__setattr__(self, "_text", cfg_text)

    # ---- construction -------------------------------------------------------------------
    @staticmethod
    def fromfile(filename: str | Path, use_predefined_variables: bool = True,
                 import_custom_modules: bool = True) -> "Config":
        """Load a config file with its ``_base_`` chain (see the module docstring for the rules)."""
        filename = str(filename)
        cfg_dict, cfg_text = _file2dict(filename, use_predefined_variables)
        if import_custom_modules and cfg_dict.get("custom_imports", None):
            custom = cfg_dict["custom_imports"]
            if not isinstance(custom, dict):
                raise TypeError(f"custom_imports in {filename} must be dict(imports=[...]), got {custom!r}")
            import_modules_from_strings(**custom)
        return Config(cfg_dict, cfg_text=cfg_text, filename=filename)

    @staticmethod
    def fromstring(cfg_str: str, file_format: str) -> "Config":
        """Load a config from source text; ``file_format`` is '.py', '.json', '.yaml' or '.yml'."""
        if file_format not in SUPPORTED_EXTENSIONS:
            raise OSError(f"file_format must be one of {SUPPORTED_EXTENSIONS}, got {file_format!r}")
        if file_format == ".py" and "dict(" not in cfg_str:
            warnings.warn('Please check "file_format", the file format may be .py')
        with tempfile.TemporaryDirectory() as tmp_dir:
            path = osp.join(tmp_dir, "config" + file_format)
            with open(path, "w", encoding="utf-8") as f:
                f.write(cfg_str)
            cfg_dict, _ = _file2dict(path)
        return Config(cfg_dict, cfg_text=cfg_str, filename=None)

    # ---- properties ---------------------------------------------------------------------
    @property
    def filename(self) -> str | None:
        return self._filename

    @property
    def text(self) -> str:
        """Each file's absolute path and content, bases first (depth-first)."""
        return self._text

    @property
    def pretty_text(self) -> str:
        """The merged config as Python source; ``Config.fromstring(pretty_text, '.py')`` gives the same dict."""
        return format_config_text(self._cfg_dict)

    # ---- dict-like access ---------------------------------------------------------------
    def __getattr__(self, name: str):
        cfg_dict = self.__dict__.get("_cfg_dict")
        if cfg_dict is None:
            raise AttributeError(name)
        return getattr(cfg_dict, name)

    def __setattr__(self, name: str, value):
        self._cfg_dict[name] = value

    def __delattr__(self, name: str):
        delattr(self._cfg_dict, name)

    def __getitem__(self, key):
        return self._cfg_dict[key]

    def __setitem__(self, key, value):
        self._cfg_dict[key] = value

    def __delitem__(self, key):
        del self._cfg_dict[key]

    def __contains__(self, key) -> bool:
        return key in self._cfg_dict

    def __len__(self) -> int:
        return len(self._cfg_dict)

    def __iter__(self) -> Iterator:
        return iter(self._cfg_dict)

    def __repr__(self) -> str:
        return f"Config (path: {self.filename}): {self._cfg_dict.__repr__()}"

    def __copy__(self) -> "Config":
        return Config(self._cfg_dict.copy(), cfg_text=self._text, filename=self._filename)

    def __deepcopy__(self, memo) -> "Config":
        return Config(copy.deepcopy(self._cfg_dict, memo), cfg_text=self._text, filename=self._filename)

    def copy(self) -> "Config":
        """Shallow copy: a new top-level dict (adding/removing top-level keys does not affect ``self``)."""
        return self.__copy__()

    def __getstate__(self):
        return {"_cfg_dict": self._cfg_dict, "_filename": self._filename, "_text": self._text}

    def __setstate__(self, state):
        for name, value in state.items():
            object.__setattr__(self, name, value)

    # ---- output -------------------------------------------------------------------------
    def dump(self, file: str | Path | None = None) -> str | None:
        """Write the merged config to ``file`` (.py as :attr:`pretty_text`, .json, .yaml); without a file return it."""
        if file is None:
            if self.filename is None or self.filename.endswith(".py"):
                return self.pretty_text
            return json.dumps(self._cfg_dict.to_dict(), indent=4)
        file = str(file)
        ext = osp.splitext(file)[1]
        if ext == ".py":
            content = self.pretty_text
        elif ext == ".json":
            content = json.dumps(self._cfg_dict.to_dict(), indent=4)
        elif ext in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise ImportError(f"writing {file} needs PyYAML: pip install pyyaml") from None
            content = yaml.safe_dump(self._cfg_dict.to_dict())
        else:
            raise OSError(f"cannot dump a config to {file}: use a .py, .json or .yaml file name")
        os.makedirs(osp.dirname(osp.abspath(file)), exist_ok=True)
        with open(file, "w", encoding="utf-8") as f:
            f.write(content)
        return None

    # ---- command-line overrides ---------------------------------------------------------
    def merge_from_dict(self, options: dict, allow_list_keys: bool = True, strict: bool = False) -> list[str]:
        """Merge ``{'a.b.c': value}`` overrides (``--cfg-options``) into the config.

        Dotted keys become nested dicts; with ``allow_list_keys`` a numeric segment
        indexes an existing list (``data.train.pipeline.2.flip_ratio``; index >= len
        -> KeyError). A key that does not exist is created, as mmcv does, and a
        warning line ``key X does not exist in the config; created`` is logged so that
        a typo is visible; with ``strict=True`` it is a KeyError instead.

        Returns:
            the option keys that did not exist before the merge.
        """
        created = []
        for full_key in options:
            missing = _missing_prefix(self._cfg_dict, full_key)
            if missing is None:
                continue
            if strict:
                raise KeyError(f"key {full_key} does not exist in the config ('{missing}' is missing); "
                               f"check the spelling or merge with strict=False to create it")
            created.append(full_key)
        option_cfg: dict = {}
        for full_key, value in options.items():
            node = option_cfg
            parts = full_key.split(".")
            for part in parts[:-1]:
                node = node.setdefault(part, ConfigDict())
            node[parts[-1]] = value
        merged = merge_a_into_b(option_cfg, self._cfg_dict, allow_list_keys=allow_list_keys)
        object.__setattr__(self, "_cfg_dict", ConfigDict(merged))
        for full_key in created:
            _logger.warning(f"key {full_key} does not exist in the config; created")
        return created


# --------------------------------------------------------------------------------------------
# DictAction (--cfg-options KEY=VALUE ...)
# --------------------------------------------------------------------------------------------
class DictAction(argparse.Action):
    """argparse action for ``KEY=VALUE`` pairs, with mmcv's value parsing.

    Values: int (tried first), float, bool (any case), ``None`` (exact spelling), str;
    ``a,b`` / ``[a,b]`` -> list, ``(a,b)`` -> tuple, nesting allowed, ``1,`` -> ``[1]``.
    Outer quotes are stripped and all spaces removed. Use with ``nargs='+'``; a second
    occurrence of the flag replaces the first one's dict.
    """

    @staticmethod
    def _parse_int_float_bool(val: str):
        try:
            return int(val)
        except ValueError:
            pass
        try:
            return float(val)
        except ValueError:
            pass
        if val.lower() in ("true", "false"):
            return val.lower() == "true"
        if val == "None":
            return None
        return val

    @staticmethod
    def _find_next_comma(text: str) -> int:
        """Index of the first comma outside brackets (len(text) when there is none)."""
        if text.count("(") != text.count(")") or text.count("[") != text.count("]"):
            raise AssertionError(f"Imbalanced brackets exist in {text}")
        parens = brackets = 0
        for idx, char in enumerate(text):
            if char == "," and parens == 0 and brackets == 0:
                return idx
            parens += (char == "(") - (char == ")")
            brackets += (char == "[") - (char == "]")
        return len(text)

    @staticmethod
    def _parse_iterable(val: str):
        """Parse a value string into int/float/bool/None/str or (nested) lists and tuples."""
        val = val.strip("'\"").replace(" ", "")
        is_tuple = False
        if val.startswith("(") and val.endswith(")"):
            is_tuple = True
            val = val[1:-1]
        elif val.startswith("[") and val.endswith("]"):
            val = val[1:-1]
        elif "," not in val:
            return DictAction._parse_int_float_bool(val)
        values = []
        while len(val) > 0:
            comma = DictAction._find_next_comma(val)
            values.append(DictAction._parse_iterable(val[:comma]))
            val = val[comma + 1:]
        return tuple(values) if is_tuple else values

    def __call__(self, parser, namespace, values, option_string=None):
        options = {}
        for kv in values:
            if "=" not in kv:
                raise argparse.ArgumentError(self, f"expected KEY=VALUE, got '{kv}' (e.g. optimizer.lr=0.01)")
            key, val = kv.split("=", maxsplit=1)
            try:
                options[key] = self._parse_iterable(val)
            except AssertionError as e:
                raise AssertionError(f"{option_string or self.dest} {key}: {e}") from None
        setattr(namespace, self.dest, options)
