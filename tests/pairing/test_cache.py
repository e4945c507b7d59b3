"""The one cache: every pair of models has one entry, and ``padiff_ir.clear`` empties it all."""

from __future__ import annotations

import gc

import padiff_ir
from padiff_ir.pairing.cache import PairCache, pair_cache
from padiff_ir.zoo import get_pair


def test_every_entry_point_shares_the_pair_entry_and_clear_forgets_it(cache):
    pair = get_pair("mlp")
    a, b = pair.torch_model, pair.paddle_model
    padiff_ir.clear()  # what earlier tests left
    assert padiff_ir.match(a, b, pair.inputs)
    entry = pair_cache.entry(a, b)
    assert entry is not None and entry.matching is not None and entry.kept is not None
    remembered = entry.matching
    padiff_ir.auto_layer_map(a, b, pair.inputs)  # takes the matching match left: no new one
    assert pair_cache.entry(a, b) is entry and entry.matching is remembered
    assert len(pair_cache.graphs) == 2 and len(cache) == 2
    kept_runner = entry.kept.pair.runner_a
    padiff_ir.clear()
    assert pair_cache.entry(a, b) is None and pair_cache.kept() is None
    assert len(pair_cache) == 0 and len(pair_cache.graphs) == 0 and len(pair_cache.traces) == 0
    assert len(cache) == 0 and cache.hits == 0
    assert kept_runner._session is None, "the kept sessions are released"
    assert padiff_ir.match(a, b, pair.inputs)  # prepared afresh, the graphs from the disk
    assert (cache.hits, cache.misses) == (2, 0)


def test_an_entry_goes_with_its_models():
    pairs = PairCache(exports=None)

    class Model:
        pass

    a, b = Model(), Model()
    entry = pairs.entry(a, b, create=True)
    assert entry is not None and pairs.entry(a, b) is entry
    assert pairs.entry(b, a) is None, "a pair is ordered: A, then B"
    del a
    gc.collect()
    assert len(pairs) == 0


def test_the_table_keeps_the_newest_pairs():
    pairs = PairCache(exports=None)
    a, b = ("a",), ("b",)  # tuples take no weak reference: nothing is kept
    assert pairs.entry(a, b, create=True) is None and len(pairs) == 0

    class Model:
        pass

    held = [(Model(), Model()) for _ in range(10)]
    for a, b in held:
        pairs.entry(a, b, create=True)
    assert len(pairs) == 8
    assert pairs.entry(*held[0]) is None and pairs.entry(*held[-1]) is not None


def test_the_cache_is_the_only_state_of_the_pair_paths():
    """The seven process-wide caches that were (export cache aside, now the one cache's
    export part) are gone: what they held lives in ``pair_cache``."""
    import importlib

    from padiff_ir.exporters import export_cache

    gone = {
        "padiff_ir.compare.prepared": ("_GRAPHS", "_TRACES"),
        "padiff_ir.pairing.kept": ("_last",),
        "padiff_ir.pairing.memo": ("_MEMO",),
        "padiff_ir.native._memo": ("_ENTRIES",),
        "padiff_ir.runtime.calls": ("_SUBGRAPH_RUNNERS",),
    }
    for name, attributes in gone.items():
        module = importlib.import_module(name)
        assert not [a for a in attributes if hasattr(module, a)], name
    assert pair_cache.exports is export_cache


def test_compare_and_native_do_not_import_each_other_privately():
    """What both need lives in ``pairing/`` or below: ``native`` imports nothing of
    ``compare``, and ``compare`` only ``native``'s public face."""
    from tests.test_architecture import _files, _imports

    native = {m for path in _files("native") for m in _imports(path)}
    assert not [m for m in native if m.startswith("padiff_ir.compare")]
    compare = {m for path in _files("compare") for m in _imports(path)}
    private = [m for m in compare if m.startswith("padiff_ir.native._")]
    assert not private, private
