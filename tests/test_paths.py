"""Dotted module paths (padiff_ir._paths)."""

from __future__ import annotations

import doctest

import pytest

from padiff_ir import _paths
from padiff_ir._paths import (
    ancestors,
    common_ancestor,
    depth,
    join,
    leaf,
    parent,
    strictly_within,
    within,
    within_any,
)


def test_doctests():
    failures, tried = doctest.testmod(_paths)
    assert tried > 10 and failures == 0


@pytest.mark.parametrize(
    "path,ancestor,inside,strictly",
    [
        ("a.b", "a", True, True),
        ("a", "a", True, False),
        ("a", "", True, True),
        ("", "", True, False),
        ("a.b.c", "a.b", True, True),
        ("ab", "a", False, False),  # a shared prefix is not containment
        ("a.bc", "a.b", False, False),
        ("a", "a.b", False, False),  # a module is not within its submodule
        ("", "a", False, False),  # the root lies within nothing but itself
    ],
)
def test_within(path, ancestor, inside, strictly):
    assert within(path, ancestor) is inside
    assert strictly_within(path, ancestor) is strictly


def test_within_any():
    assert within_any("a.b", ("x", "a"))
    assert not within_any("a.b", ("x", "ab"))
    assert not within_any("a.b", ())
    assert within_any("anything", ("",))
    assert within_any("a", iter(["a"]))


def test_parent_and_ancestors():
    assert parent("a.b.c") == "a.b"
    assert parent("a") == ""
    assert parent("") is None
    assert list(ancestors("a.b.c")) == ["a.b", "a", ""]
    assert list(ancestors("a")) == [""]
    assert list(ancestors("")) == []


def test_common_ancestor():
    assert common_ancestor(["a.b.c", "a.b.d"]) == "a.b"
    assert common_ancestor(["a.b", "a.b.c"]) == "a.b"
    assert common_ancestor(["a", "b"]) == ""
    assert common_ancestor(["a.b", ""]) == ""
    assert common_ancestor(["ab.c", "a.c"]) == ""
    assert common_ancestor([]) == ""


def test_depth_join_leaf():
    assert [depth(p) for p in ("", "a", "a.b")] == [0, 1, 2]
    assert join("a.b", "c") == "a.b.c"
    assert join("", "c") == "c"
    assert leaf("a.b.weight") == "weight"
    assert leaf("weight") == "weight"
    assert parent(join("a", "b")) == "a"
