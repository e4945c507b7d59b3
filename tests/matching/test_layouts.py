"""Parameter layouts of fused projections: the permutations are the layouts they name."""

from __future__ import annotations

import numpy as np
import pytest

from padiff_ir.matching.layouts import (
    describe_layout,
    fused_candidates,
    head_dims,
    permutation,
    rope_candidates,
)
from padiff_ir.matching.transforms import apply_inverse, apply_transform, invert_transform

RNG = np.random.default_rng(0)


def _rows(name: str, count: int) -> list[str]:
    return [f"{name}{i}" for i in range(count)]


def test_grouped_qkv_is_the_tensor_parallel_layout():
    heads, kv_heads, d = 4, 2, 2
    q = np.array(_rows("q", heads * d))
    k = np.array(_rows("k", kv_heads * d))
    v = np.array(_rows("v", kv_heads * d))
    layout = {"name": "fused_qkv_grouped", "heads": heads, "kv_heads": kv_heads, "head_dim": d}
    fused = np.concatenate([q, k, v])[permutation(layout, [8, 4, 4])]
    # group 0: q heads 0 and 1, k head 0, v head 0; then group 1
    expected = [*q[0:4], *k[0:2], *v[0:2], *q[4:8], *k[2:4], *v[2:4]]
    assert fused.tolist() == expected


def test_per_head_interleaving_is_grouping_with_one_query_head_per_group():
    layout = {"name": "fused_qkv_grouped", "heads": 2, "kv_heads": 2, "head_dim": 1}
    fused = np.array(["q0", "q1", "k0", "k1", "v0", "v1"])[permutation(layout, [2, 2, 2])]
    assert fused.tolist() == ["q0", "k0", "v0", "q1", "k1", "v1"]


def test_rope_pairs_neighbours_instead_of_halves():
    """Rotate-half pairs row i with i + d/2; interleaved pairs 2i with 2i + 1."""
    layout = {"name": "rope", "head_dim": 4, "rope": "half->interleaved"}
    rows = np.array(["h0a", "h0b", "h0c", "h0d", "h1a", "h1b", "h1c", "h1d"])
    assert rows[permutation(layout, [8])].tolist() == [
        "h0a", "h0c", "h0b", "h0d", "h1a", "h1c", "h1b", "h1d",
    ]  # fmt: skip
    back = {**layout, "rope": "interleaved->half"}
    assert (permutation(back, [8])[permutation(layout, [8])] == np.arange(8)).all()


def test_gate_up_orders_and_interleaving():
    pieces = np.array(["g0", "g1", "u0", "u1"])
    found = {
        describe_layout(c): pieces[permutation(c, [2, 2])].tolist()
        for c in fused_candidates([2, 2], 1)
    }
    assert found == {
        "fused_order(order=[0, 1])": ["g0", "g1", "u0", "u1"],
        "fused_order(order=[1, 0])": ["u0", "u1", "g0", "g1"],
        "fused_interleaved(order=[0, 1])": ["g0", "u0", "g1", "u1"],
        "fused_interleaved(order=[1, 0])": ["u0", "g0", "u1", "g1"],
    }


def test_candidates_are_distinct_and_start_with_the_plain_concatenation():
    candidates = fused_candidates([64, 32, 32], axis=1)
    assert candidates[0].to_dict() == {"name": "fused_qkv", "axis": 1}
    keys = [permutation(c, [64, 32, 32]).tobytes() for c in candidates]
    assert len(set(keys)) == len(keys)
    names = {describe_layout(c) for c in candidates}
    assert "fused_qkv_grouped(heads=4, kv_heads=2, head_dim=16)" in names
    assert "fused_qkv_grouped(heads=4, kv_heads=2, head_dim=16, rope=half->interleaved)" in names
    assert fused_candidates([3, 5], axis=0) == []  # nothing to choose: the plain concatenation


def test_head_dims_are_even_common_divisors():
    assert head_dims(64, 32) == [32, 16, 8, 4]
    assert head_dims(6) == [6]


@pytest.mark.parametrize("torch_to_paddle", [True, False])
def test_every_candidate_round_trips_through_transform_and_inverse(torch_to_paddle):
    q, k, v = (RNG.standard_normal((n, 6)) for n in (16, 8, 8))  # torch [out, in]
    for layout in fused_candidates([16, 8, 8], axis=1):
        transform = {"transpose": [1, 0], "concat": 1, "sections": [16, 8, 8], "layout": layout}
        if torch_to_paddle:
            (fused,) = apply_transform(transform, [q, k, v])
            assert fused.shape == (6, 32)
            back = apply_inverse(transform, [fused])
        else:  # the fused side is A: the inverse transform splits it
            split = invert_transform(transform)
            (fused,) = apply_transform(transform, [q, k, v])
            back = apply_transform(split, [fused])
        assert all(np.array_equal(x, y) for x, y in zip(back, (q, k, v)))


def test_one_to_one_permutation_and_offset_invert():
    weight = RNG.standard_normal((8, 3))
    (layout,) = [c for c in rope_candidates(8, axis=0) if c.head_dim == 8][:1]
    transform = {"layout": layout, "offset": -1.0}
    (moved,) = apply_transform(transform, [weight])
    assert not np.allclose(moved, weight)
    (back,) = apply_transform(invert_transform(transform), [moved])
    np.testing.assert_allclose(back, weight)
