"""ActivationStore: RAM budget, spilling, summaries and cleanup of its temporary directory."""

from __future__ import annotations

import gc
import math
import os

import numpy as np
import pytest

from padiff_ir.runtime import ActivationStore, TensorSummary
from padiff_ir.runtime.store import summarize


def _arrays(count: int = 5, size: int = 100) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {f"t{i}": rng.standard_normal(size).astype(np.float32) for i in range(count)}


def test_keeps_arrays_in_memory_within_budget() -> None:
    arrays = _arrays()
    with ActivationStore() as store:
        store.update(arrays)
        assert store.nbytes_in_memory == sum(a.nbytes for a in arrays.values())
        assert store.nbytes_on_disk == 0
        assert store.directory is None
        assert list(store) == list(arrays) == list(store.keys())
        assert len(store) == 5
        assert "t0" in store and "nope" not in store
        assert store.get("nope") is None
        for name, array in arrays.items():
            np.testing.assert_array_equal(store[name], array)
            assert not store.is_on_disk(name)


def test_spills_past_budget_and_reads_back_identical_arrays() -> None:
    arrays = _arrays(size=1000)  # 4000 bytes each
    with ActivationStore(memory_budget=10_000) as store:
        store.update(arrays)
        assert store.nbytes_in_memory == 8000  # the first two fit
        assert store.nbytes_on_disk == 12000
        assert [store.is_on_disk(n) for n in arrays] == [False, False, True, True, True]
        assert sorted(os.listdir(store.directory)) == ["000000.npy", "000001.npy", "000002.npy"]
        for name, array in arrays.items():
            value = store[name]
            np.testing.assert_array_equal(value, array)
            assert not value.flags.writeable
        spilled = store["t4"]
        assert isinstance(spilled, np.memmap)


def test_shape_dtype_and_summary_without_loading() -> None:
    values = np.array([[1.0, np.nan, 3.0], [np.inf, -np.inf, 5.0]], dtype=np.float32)
    with ActivationStore(memory_budget=0) as store:
        store.put("x", values)
        assert store.is_on_disk("x")
        assert store.shape("x") == (2, 3)
        assert store.dtype("x") == np.float32
        summary = store.summary("x")
    finite = np.array([1.0, 3.0, 5.0])
    assert summary.nan_count == 1 and summary.inf_count == 2 and not summary.finite
    assert summary.minimum == 1.0 and summary.maximum == 5.0
    assert math.isclose(summary.mean, finite.mean())
    assert math.isclose(summary.std, finite.std())
    assert summary.size == 6 and summary.nbytes == 24
    assert TensorSummary.from_dict(summary.to_dict()) == summary


def test_blockwise_summary_matches_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("padiff_ir.runtime.store._SUMMARY_BLOCK", 7)
    values = np.random.default_rng(1).standard_normal((13, 5)) * 3 + 2
    summary = summarize(values)
    assert math.isclose(summary.mean, values.mean(), rel_tol=1e-12)
    assert math.isclose(summary.std, values.std(), rel_tol=1e-12)
    assert summary.minimum == values.min() and summary.maximum == values.max()
    assert summarize(np.arange(4, dtype=np.int64)).maximum == 3.0
    assert summarize(np.array([True, False, True])).mean == pytest.approx(2 / 3)

    holes = values.copy()
    holes[3, 1], holes[9, 4], holes[10, 0] = np.nan, np.inf, -np.inf  # in different blocks
    finite = holes[np.isfinite(holes)]
    summary = summarize(holes)
    assert (summary.nan_count, summary.inf_count) == (1, 2)
    assert math.isclose(summary.mean, finite.mean(), rel_tol=1e-12)
    assert math.isclose(summary.std, finite.std(), rel_tol=1e-12)
    assert summary.minimum == finite.min() and summary.maximum == finite.max()
    empty = summarize(np.zeros((0, 3), np.float32))
    assert math.isnan(empty.mean) and empty.shape == (0, 3)


def test_replacing_and_discarding_update_the_accounting() -> None:
    with ActivationStore(memory_budget=100) as store:
        store.put("a", np.zeros(10, np.float32))  # 40 bytes, RAM
        store.put("b", np.zeros(100, np.float32))  # 400 bytes, disk
        path = os.path.join(store.directory, "000000.npy")
        assert os.path.exists(path)
        store.put("b", np.ones(5, np.float32))  # now fits in RAM
        assert not os.path.exists(path)
        assert (store.nbytes_in_memory, store.nbytes_on_disk) == (60, 0)
        np.testing.assert_array_equal(store["b"], np.ones(5, np.float32))
        store.discard("a")
        store.discard("missing")
        assert list(store) == ["b"] and store.nbytes_in_memory == 20


def test_strings_stay_in_memory() -> None:
    with ActivationStore(memory_budget=0) as store:
        store.put("s", np.array(["a", "bc"], dtype=object))
        assert not store.is_on_disk("s")
        assert store["s"].tolist() == ["a", "bc"]
        assert math.isnan(store.summary("s").mean)


def test_close_removes_directory_and_rejects_use() -> None:
    store = ActivationStore(memory_budget=0)
    store.put("x", np.arange(10.0))
    directory = store.directory
    assert directory is not None and os.path.isdir(directory)
    kept = store["x"]
    store.close()
    assert not os.path.exists(directory)
    np.testing.assert_array_equal(kept, np.arange(10.0))  # the mapping outlives the file
    assert store.closed and len(store) == 0
    store.close()
    with pytest.raises(ValueError, match="closed"):
        store["x"]
    with pytest.raises(ValueError, match="closed"):
        store.put("y", np.zeros(1))


def test_garbage_collection_removes_directory() -> None:
    store = ActivationStore(memory_budget=0)
    store.put("x", np.arange(10.0))
    directory = store.directory
    assert os.path.isdir(directory)
    del store
    gc.collect()
    assert not os.path.exists(directory)


def test_directory_is_private_and_under_the_given_parent(tmp_path) -> None:
    with ActivationStore(memory_budget=0, directory=str(tmp_path)) as store:
        store.put("x", np.zeros(3))
        assert os.path.dirname(store.directory) == str(tmp_path)
    assert os.listdir(tmp_path) == []


def test_negative_budget_is_rejected() -> None:
    with pytest.raises(ValueError, match="memory_budget"):
        ActivationStore(memory_budget=-1)
