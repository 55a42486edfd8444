"""--cfg-options parsing: mmcv DictAction semantics (spec mmdet2_core.md §1.5)."""
from __future__ import annotations

import argparse
import math

import pytest

from mmdet.engine.config import DictAction


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(exit_on_error=False)
    parser.add_argument("--cfg-options", nargs="+", action=DictAction)
    return parser


def _parse(*tokens: str) -> dict:
    return _parser().parse_args(["--cfg-options", *tokens]).cfg_options


@pytest.mark.parametrize("text, expected", [
    ("1", 1), ("-3", -3), ("007", 7), ("1_000", 1000),
    ("1.0", 1.0), ("1e-4", 1e-4), ("-2.5", -2.5), ("inf", math.inf),
    ("true", True), ("True", True), ("TRUE", True), ("false", False), ("FaLsE", False),
    ("None", None), ("none", "none"), ("null", "null"),
    ("abc", "abc"), ("0x10", "0x10"), ("", ""),
    ("a,b", ["a", "b"]), ("[a,b]", ["a", "b"]), ("1,", [1]), ("[1]", [1]), ("1,2.5,x,None", [1, 2.5, "x", None]),
    ("(1,2)", (1, 2)), ("(a)", ("a",)), ("(1,)", (1,)),
    ("[(1,2),(3,4)]", [(1, 2), (3, 4)]), ("[1,[2,3]]", [1, [2, 3]]), ("[[1,2],(3,[4,5])]", [[1, 2], (3, [4, 5])]),
    ("[]", []), ("()", ()), ("[[]]", [[]]),
    ("'[1, 2]'", [1, 2]), ('"(a, b)"', ("a", "b")), ("a b", "ab"), ("' x '", "x"),
    ("[(480,1333),(512,1333)]", [(480, 1333), (512, 1333)]),
])
def test_value_parsing(text, expected):
    value = _parse(f"key={text}")["key"]
    assert value == expected
    assert type(value) is type(expected)
    if isinstance(expected, (list, tuple)):
        assert [type(v) for v in value] == [type(v) for v in expected]


def test_nan_is_a_float():
    value = _parse("x=nan")["x"]
    assert isinstance(value, float) and math.isnan(value)


def test_split_on_first_equal_sign_and_several_options():
    assert _parse("a.b=1", "url=http://x/?q=1", "data.train.pipeline.2.flip_ratio=0.0") == {
        "a.b": 1, "url": "http://x/?q=1", "data.train.pipeline.2.flip_ratio": 0.0}


def test_second_flag_replaces_the_first():
    args = _parser().parse_args(["--cfg-options", "a=1", "b=2", "--cfg-options", "c=3"])
    assert args.cfg_options == {"c": 3}


def test_missing_flag_gives_none():
    assert _parser().parse_args([]).cfg_options is None


def test_imbalanced_brackets_are_an_assertion_naming_the_key():
    with pytest.raises(AssertionError, match=r"--cfg-options model.x: Imbalanced brackets exist in \[1,2"):
        _parse("model.x=[1,2")
    with pytest.raises(AssertionError, match="Imbalanced brackets"):
        _parse("y=(1,[2),3")


def test_token_without_equal_sign_is_rejected():
    with pytest.raises(argparse.ArgumentError, match="expected KEY=VALUE, got 'optimizer.lr'"):
        _parse("optimizer.lr")
