"""A cached export is verified, never trusted: changes the fingerprint cannot see (a function in
a closure, a partial's arguments, a class attribute changed at run time, a helper fixed in
another file) give a fresh export and the right verdict, and the result says the cache was
stale."""

from __future__ import annotations

import functools
import importlib
import json
import sys
import textwrap

import numpy as np
import paddle
import torch

import padiff_ir
from padiff_ir.compare.match_result import MatchResult


class TorchReference(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(6, 6)

    def forward(self, x):
        return torch.relu(self.fc(x))


def _reference() -> TorchReference:
    torch.manual_seed(0)
    return TorchReference()


def _inputs() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((3, 6)).astype(np.float32)


def _same_weights(model: torch.nn.Module, reference: torch.nn.Module) -> torch.nn.Module:
    model.load_state_dict(reference.state_dict())
    return model


def net_class(activation):
    """A class made by a factory: its forward's closure holds ``activation``."""

    class ClosureNet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(6, 6)

        def forward(self, x):
            return activation(self.fc(x))

    return ClosureNet


class PartialNet(torch.nn.Module):
    def __init__(self, slope: float) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(6, 6)
        self.act = functools.partial(torch.nn.functional.leaky_relu, negative_slope=slope)

    def forward(self, x):
        return self.act(self.fc(x))


class ScaledNet(torch.nn.Module):
    scale = 2.0  # read by forward; changed on the class at run time

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(6, 6)

    def forward(self, x):
        return torch.relu(self.fc(x)) * self.scale


class PaddleScaledNet(paddle.nn.Layer):
    scale = 2.0

    def __init__(self) -> None:
        super().__init__()
        self.fc = paddle.nn.Linear(6, 6)

    def forward(self, x):
        return paddle.nn.functional.relu(self.fc(x)) * self.scale


def _assert_stale_then_right(result: MatchResult) -> None:
    assert result, str(result)
    assert result.stale_exports == ("B",)
    assert any("cached export of model B was stale" in note for note in result.notes)
    assert "was stale" in str(result)
    again = MatchResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.stale_exports == ("B",)


def _buggy_then_fixed(buggy: torch.nn.Module, fixed: torch.nn.Module) -> MatchResult:
    reference = _reference()
    x = _inputs()
    first = padiff_ir.match(reference, _same_weights(buggy, reference), x)
    assert not first
    return padiff_ir.match(reference, _same_weights(fixed, reference), x)


def test_a_function_held_in_a_closure(cache):
    result = _buggy_then_fixed(net_class(torch.tanh)(), net_class(torch.relu)())
    _assert_stale_then_right(result)
    assert cache.misses >= 2  # the fixed model was exported again


def test_the_arguments_of_a_partial(cache):
    _assert_stale_then_right(_buggy_then_fixed(PartialNet(0.5), PartialNet(0.0)))


def test_a_class_attribute_changed_at_run_time_on_kept_models(cache, monkeypatch):
    reference, model = _reference(), ScaledNet()
    _same_weights(model, reference)
    x = _inputs()
    assert not padiff_ir.match(reference, model, x)
    monkeypatch.setattr(ScaledNet, "scale", 1.0)  # the same objects: the kept pair is stale
    _assert_stale_then_right(padiff_ir.match(reference, model, x))
    later = padiff_ir.match(reference, model, x)  # the fresh graph is the cached one now
    assert later and later.stale_exports == ()


def test_a_helper_fixed_in_another_file(cache, tmp_path, monkeypatch):
    helper = tmp_path / "stale_helper.py"
    helper.write_text("import torch\n\ndef activation(x):\n    return torch.tanh(x)\n")
    (tmp_path / "stale_model.py").write_text(
        textwrap.dedent(
            """
            import torch
            import stale_helper

            class HelperNet(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = torch.nn.Linear(6, 6)

                def forward(self, x):
                    return stale_helper.activation(self.fc(x))
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("stale_model")
    try:
        buggy = module.HelperNet()
        helper.write_text("import torch\n\ndef activation(x):\n    return torch.relu(x)\n")
        reference = _reference()
        x = _inputs()
        assert not padiff_ir.match(reference, _same_weights(buggy, reference), x)
        importlib.reload(sys.modules["stale_helper"])  # the user's fix
        fixed = _same_weights(module.HelperNet(), reference)
        _assert_stale_then_right(padiff_ir.match(reference, fixed, x))
    finally:
        sys.modules.pop("stale_model", None)
        sys.modules.pop("stale_helper", None)


def test_a_paddle_class_attribute(cache, monkeypatch):
    reference = _reference()
    paddle.seed(0)
    model = PaddleScaledNet()
    padiff_ir.assign_weight(model, reference)
    x = _inputs()
    assert not padiff_ir.match(reference, model, x)
    monkeypatch.setattr(PaddleScaledNet, "scale", 1.0)
    _assert_stale_then_right(padiff_ir.match(reference, model, x))


def test_a_comparison_verifies_its_graphs_at_each_check(cache, monkeypatch):
    reference, model = _reference(), ScaledNet()
    _same_weights(model, reference)
    x = _inputs()
    with padiff_ir.Comparison(reference, model, x) as comparison:
        assert not comparison.check(x)
        monkeypatch.setattr(ScaledNet, "scale", 1.0)
        _assert_stale_then_right(comparison.check(x))
        assert comparison.check(x).stale_exports == ()


def test_a_faithful_hit_is_not_exported_again(cache):
    reference, model = _reference(), ScaledNet()
    _same_weights(model, reference)
    padiff_ir.match(reference, model, _inputs())
    misses = cache.misses
    result = padiff_ir.match(reference, ScaledNet(), _inputs())  # another model, a hit
    assert not result and result.stale_exports == ()
    assert cache.misses == misses


def test_a_stale_disk_entry_is_replaced_for_later_processes(cache, tmp_path, monkeypatch):
    """The user fixes a helper in another file and runs their script again: the disk entry of
    the previous run is stale, found so, and replaced for the runs after."""
    from tests.conftest import run_python

    helper = tmp_path / "stale_disk_helper.py"
    (tmp_path / "stale_disk_model.py").write_text(
        textwrap.dedent(
            """
            import torch
            import stale_disk_helper

            class DiskNet(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc = torch.nn.Linear(6, 6)

                def forward(self, x):
                    return stale_disk_helper.activation(self.fc(x))
            """
        )
    )
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import numpy as np, torch
        import padiff_ir
        from stale_disk_model import DiskNet
        from tests.reliability.test_stale_cache import TorchReference
        torch.manual_seed(0)
        reference = TorchReference()
        model = DiskNet()
        model.load_state_dict(reference.state_dict())
        x = np.random.default_rng(0).standard_normal((3, 6)).astype(np.float32)
        result = padiff_ir.match(reference, model, x)
        print("VERDICT", bool(result), "STALE", list(result.stale_exports))
        """
    )
    monkeypatch.setenv("PADIFF_IR_CACHE_DIR", str(cache.directory))
    runs = []
    for activation in ("tanh", "relu", "relu"):
        helper.write_text(f"import torch\n\ndef activation(x):\n    return torch.{activation}(x)\n")
        done = run_python(script)
        assert "VERDICT" in done.stdout, done.stderr[-2000:]
        runs.append(done.stdout.split("VERDICT", 1)[1].strip())
    assert runs == ["False STALE []", "True STALE ['B']", "True STALE []"]


class SwitchedNet(torch.nn.Module):
    data_dependent = False  # read by forward; True: a branch on the data no exporter takes

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(6, 6)

    def forward(self, x):
        y = self.fc(x)
        if self.data_dependent:
            return y * 2 if y.sum() > 0 else y - 1
        return torch.relu(y)


def test_a_stale_graph_whose_fresh_export_fails_is_compared_natively(cache, monkeypatch):
    """The served graph is stale and the model as it is now cannot be exported: match answers
    module by module, natively, as for a first export failure (was: the ExportError)."""
    model_a, model_b = _reference(), SwitchedNet()
    _same_weights(model_b, model_a)
    x = _inputs()
    assert padiff_ir.match(model_a, model_b, x)
    monkeypatch.setattr(SwitchedNet, "data_dependent", True)
    result = padiff_ir.match(model_a, model_b, x)
    assert result.fallback.side == "B"
    assert result.fallback.reason.startswith("ExportError")
    assert not result and [c.module_b for c in result.culprits] == [""]
