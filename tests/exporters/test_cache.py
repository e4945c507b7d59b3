"""The export cache: one export per model structure; a changed model never gets a stale graph."""

from __future__ import annotations

import importlib.util
import sys
import textwrap

import numpy as np
import paddle
import pytest
import torch
from onnx import numpy_helper

import padiff_ir
from padiff_ir.exporters import export
from padiff_ir.exporters._cache import ExportCache, export_cache
from padiff_ir.runtime import Runner
from tests.exporters.models import PaddleNet, TorchNet


def _values(exported) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in exported.model.graph.initializer}


def _run(exported, *arrays) -> list[np.ndarray]:
    with Runner(exported) as runner:
        feeds = dict(zip(exported.input_names, arrays))
        return list(runner.infer(feeds).values())


def _torch_inputs():
    rng = np.random.default_rng(0)
    return (
        rng.standard_normal((2, 8)).astype(np.float32),
        rng.standard_normal((1, 3, 6, 6)).astype(np.float32),
    )


def test_second_export_is_a_hit_with_the_same_graph(cache):
    torch.manual_seed(0)
    model = TorchNet()
    inputs = _torch_inputs()
    first = export(model, inputs)
    second = export(model, inputs)
    assert (cache.hits, cache.misses) == (1, 1)
    assert second.model is not first.model  # a copy: changing one leaves the cache intact
    assert second.node_modules == first.node_modules
    assert second.parameters == first.parameters
    for got, want in zip(_run(second, *inputs), _run(first, *inputs)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("framework", ["torch", "paddle"])
def test_weight_change_gives_the_new_values(cache, framework):
    inputs = _torch_inputs()
    torch.manual_seed(0)
    paddle.seed(0)
    model = TorchNet() if framework == "torch" else PaddleNet()
    before = export(model, inputs)
    weight = model.blocks[0].fc.weight
    if framework == "torch":
        with torch.no_grad():
            weight.mul_(2.0)
        expected = weight.detach().numpy().copy()
    else:
        weight.set_value(weight.numpy() * 2.0)
        expected = weight.numpy().copy()
    after = export(model, inputs)
    assert (cache.hits, cache.misses) == (1, 1)
    np.testing.assert_array_equal(_values(after)["blocks.0.fc.weight"], expected)
    assert not np.allclose(_run(before, *inputs)[0], _run(after, *inputs)[0])
    export_cache.enabled = False  # what an export without the cache gives
    try:
        uncached = export(model, inputs)
    finally:
        export_cache.enabled = True
    for got, want in zip(_run(after, *inputs), _run(uncached, *inputs)):
        np.testing.assert_array_equal(got, want)


def test_attribute_change_is_a_fresh_export(cache):
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3), torch.nn.MaxPool2d(2), torch.nn.Dropout(0.1)
    )
    x = np.random.default_rng(0).standard_normal((1, 1, 7, 7)).astype(np.float32)
    floor = export(model, x)
    model[1].ceil_mode = True
    ceil = export(model, x)
    assert (cache.hits, cache.misses) == (0, 2)
    assert _run(floor, x)[0].shape == (1, 2, 2, 2)
    assert _run(ceil, x)[0].shape == (1, 2, 3, 3)  # the new attribute is in the graph
    model[2].p = 0.3
    export(model, x)
    assert cache.misses == 3


def test_shape_changes_are_fresh_exports(cache):
    model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    export(model, np.zeros((2, 4), np.float32))
    export(model, np.zeros((5, 4), np.float32))  # input shape
    model[0] = torch.nn.Linear(4, 6)  # parameter shapes
    exported = export(model, np.zeros((2, 4), np.float32))
    assert (cache.hits, cache.misses) == (0, 3)
    assert _values(exported)["0.weight"].shape == (6, 4)


class _Scale(torch.nn.Module):
    def forward(self, x):
        return x * 2.0


def test_forward_code_change_is_a_fresh_export(cache, monkeypatch):
    model = _Scale()
    x = np.ones((2,), np.float32)
    assert _run(export(model, x), x)[0].tolist() == [2.0, 2.0]
    monkeypatch.setattr(_Scale, "forward", lambda self, x: x * 3.0)
    assert _run(export(model, x), x)[0].tolist() == [3.0, 3.0]
    assert cache.misses == 2


def _import_file(path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_edited_source_file_is_a_fresh_export(cache, tmp_path, monkeypatch):
    """A helper function edited in the model's file counts, though forward is unchanged."""
    source = textwrap.dedent(
        """
        import torch

        def helper(x):
            return x + {}

        class Model(torch.nn.Module):
            def forward(self, x):
                return helper(x)
        """
    )
    path = tmp_path / "edited_model.py"
    x = np.zeros((2,), np.float32)
    results = []
    for value in (1.0, 5.0):
        path.write_text(source.format(value))
        module = _import_file(path, "edited_model")
        results.append(_run(export(module.Model(), x), x)[0].tolist())
    monkeypatch.delitem(sys.modules, "edited_model")
    assert results == [[1.0, 1.0], [5.0, 5.0]]
    assert cache.misses == 2


def test_disk_entries_serve_another_cache_and_clear_removes_them(cache, tmp_path):
    torch.manual_seed(0)
    model = TorchNet()
    inputs = _torch_inputs()
    fresh = export(model, inputs)
    files = list(cache.directory.glob("*.onnx"))
    assert len(files) == 1
    # the file holds the graph without the weights (they come from the model on a hit)
    assert files[0].stat().st_size < fresh.model.ByteSize()
    other = ExportCache(cache.directory)
    from padiff_ir.exporters._fingerprint import model_fingerprint
    from padiff_ir.frameworks import normalize_inputs

    key = model_fingerprint(model, "torch", normalize_inputs(inputs), None)
    served = other.lookup(key, model, "torch")
    assert other.hits == 1 and served is not None
    for got, want in zip(_run(served, *inputs), _run(fresh, *inputs)):
        np.testing.assert_array_equal(got, want)
    cache.clear()
    assert not list(cache.directory.glob("*.onnx")) and len(cache) == 0


def test_disabled_cache_exports_every_time(cache, monkeypatch):
    monkeypatch.setattr(cache, "enabled", False)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    export(model, np.zeros((2, 4), np.float32))
    export(model, np.zeros((2, 4), np.float32))
    assert (cache.hits, cache.misses, len(cache)) == (0, 0, 0)


def test_match_after_a_hit_sees_a_changed_weight(cache):
    from padiff_ir.zoo import get_pair

    pair = get_pair("mlp")
    assert padiff_ir.match(pair.torch_model, pair.paddle_model, pair.inputs)
    weight = pair.paddle_model.fc2.weight
    weight.set_value(weight.numpy() + 0.5)
    result = padiff_ir.match(pair.torch_model, pair.paddle_model, pair.inputs)
    assert cache.hits == 2  # neither model exported again
    assert not result
    assert [c.module_a for c in result.culprits] == ["fc2"]


# -- damaged disk entries: dropped and exported again, never loaded -----------------------------


class _Relu(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(6, 6)

    def forward(self, x):
        return torch.relu(self.fc(x))


class _ReluToo(_Relu):
    """Another class (another cache key), the same computation."""


class _Tanh(_Relu):
    def forward(self, x):
        return torch.tanh(self.fc(x))


def _key(model, x) -> str:
    from padiff_ir.exporters._fingerprint import model_fingerprint
    from padiff_ir.frameworks import normalize_inputs

    return model_fingerprint(model, "torch", normalize_inputs(x), None)


def _payload_start(key: str, data: bytes) -> int:
    """Where the serialized skeleton starts in a disk entry (0 before entries had a header)."""
    try:
        from padiff_ir.exporters._cache import entry_payload
    except ImportError:
        return 0
    return len(data) - len(entry_payload(key, data))


def _end_of_graph(data: bytes, start: int) -> int:
    """Where the skeleton's graph field ends: what follows (opsets, the parameter map) is
    lost when the file is cut there, and what is left still parses."""
    import onnx

    model = onnx.load_from_string(data[start:])
    for name in ("opset_import", "metadata_props", "functions", "training_info"):
        model.ClearField(name)
    assert data[start : start + model.ByteSize()] == model.SerializeToString()
    return start + model.ByteSize()


def _damage(how: str, path, key: str, cache, x) -> None:
    data = path.read_bytes()
    if how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(data[: _end_of_graph(data, _payload_start(key, data))])
    elif how == "flipped":  # one bit of an op type: Relu becomes Selu, still a valid model
        assert b'"\x04Relu' in data
        path.write_bytes(data.replace(b'"\x04Relu', b'"\x04Selu'))
    elif how == "foreign-onnx":  # a valid ONNX model of another computation under this key
        path.write_bytes(export(_Tanh(), x).model.SerializeToString())
    else:  # "other-entry": a valid entry of another model (another key) under this key
        tanh = _Tanh()
        export(tanh, x)
        path.write_bytes((cache.directory / f"{_key(tanh, x)}.onnx").read_bytes())


@pytest.mark.parametrize("how", ["empty", "truncated", "flipped", "foreign-onnx", "other-entry"])
def test_a_damaged_disk_entry_is_dropped_and_exported_again(cache, caplog, how):
    from padiff_ir.pairing import kept

    torch.manual_seed(0)
    model_a = _Relu()
    model_b = _ReluToo()
    model_b.load_state_dict(model_a.state_dict())
    x = np.random.default_rng(0).standard_normal((3, 6)).astype(np.float32)
    assert padiff_ir.match(model_a, model_b, x)
    path = cache.directory / f"{_key(model_a, x)}.onnx"
    _damage(how, path, _key(model_a, x), cache, x)
    cache.clear(disk=False)  # as a new process finds it: memory empty, the file on disk
    kept.forget()
    misses = cache.misses
    result = padiff_ir.match(model_a, model_b, x)
    assert result, str(result)
    assert cache.misses == misses + 1  # A's damaged entry: exported again; B's: a hit
    assert any("dropped the damaged entry" in r.getMessage() for r in caplog.records)
    from padiff_ir.exporters._cache import entry_payload

    entry_payload(_key(model_a, x), path.read_bytes())  # rewritten whole
    assert not list(cache.directory.glob("*.tmp"))


def test_a_truncated_entry_is_exported_again_in_a_fresh_process(cache, monkeypatch):
    from tests.conftest import run_python

    script = textwrap.dedent(
        """
        import logging, sys
        import numpy as np, torch
        import padiff_ir
        from tests.exporters.models import TorchNet
        logging.basicConfig(level=logging.WARNING)
        torch.manual_seed(0)
        a = TorchNet()
        torch.manual_seed(0)
        b = TorchNet()
        rng = np.random.default_rng(0)
        x = (rng.standard_normal((2, 8)).astype(np.float32),
             rng.standard_normal((1, 3, 6, 6)).astype(np.float32))
        print("VERDICT", bool(padiff_ir.match(a, b, x)))
        """
    )
    monkeypatch.setenv("PADIFF_IR_CACHE_DIR", str(cache.directory))
    first = run_python(script)
    assert "VERDICT True" in first.stdout, first.stderr[-2000:]
    (path,) = cache.directory.glob("*.onnx")
    data = path.read_bytes()  # cut short after the graph: it parses, the parameter map is lost
    path.write_bytes(data[: _end_of_graph(data, _payload_start(path.stem, data))])
    second = run_python(script)
    assert "VERDICT True" in second.stdout, second.stderr[-2000:]
    assert "dropped the damaged entry" in second.stderr
    third = run_python(script)  # the entry was rewritten: no warning
    assert "VERDICT True" in third.stdout and "damaged" not in third.stderr


def test_an_entry_names_why_it_cannot_be_trusted():
    import struct

    from padiff_ir.exporters._cache import SCHEMA, DamagedEntry, entry_bytes, entry_payload

    data = entry_bytes("k1", b"payload")
    assert entry_payload("k1", data) == b"payload"
    newer = data[:8] + struct.pack("<I", SCHEMA + 1) + data[12:]
    cases = {
        b"": "shorter than the entry header",
        b"\x08\x01" + data: "not an entry",
        newer: f"schema {SCHEMA + 1}",
        data[:-2]: "5 bytes of payload, the header says 7",
        data[:-1] + b"X": "checksum mismatch",
    }
    for damaged, reason in cases.items():
        with pytest.raises(DamagedEntry, match=reason):
            entry_payload("k1", damaged)
    with pytest.raises(DamagedEntry, match="another key"):
        entry_payload("k2", data)


def test_an_entry_remembers_where_its_fresh_export_departs(cache):
    """Kept with the entry, on disk too; a new export of the key starts with none."""
    torch.manual_seed(0)
    model = TorchNet()
    inputs = _torch_inputs()
    key = export(model, inputs).fingerprint
    assert key and cache.known_faults(key) == frozenset()
    cache.note_faults(key, ["act", "fc"])
    assert cache.known_faults(key) == {"act", "fc"}
    assert ExportCache(cache.directory).known_faults(key) == {"act", "fc"}  # a later process
    assert export(model, inputs).cached  # the entry still serves
    cache.note_faults(key, [])
    assert ExportCache(cache.directory).known_faults(key) == frozenset()
    cache.drop(key)
    assert cache.known_faults(key) == frozenset()
