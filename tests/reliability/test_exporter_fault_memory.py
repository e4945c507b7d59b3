"""A model with an exporter fault is not exported again at every match: where a fresh export
departs from the model is remembered on its cache entry, and a served graph departing exactly
there is as fresh as an export gets; one departing anywhere else too is still exported again."""

from __future__ import annotations

import logging

import numpy as np
import paddle
import torch

import padiff_ir
from tests.reliability.test_exporter_faults import seeded_pair

_AGAIN = "does not reproduce its model: exporting it again"


class TorchScale(torch.nn.Module):
    def forward(self, x):
        return x * 1.0


class PaddleScale(paddle.nn.Layer):
    factor = 1.0  # read by forward; changed on the class at run time

    def forward(self, x):
        return x * self.factor


class TorchLeaky(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(8, 8)
        self.act = torch.nn.LeakyReLU()
        self.scale = TorchScale()
        self.out = torch.nn.Linear(8, 4)

    def forward(self, x):
        return self.out(self.scale(self.act(self.fc(x))))


class PaddleLeaky(paddle.nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.fc = paddle.nn.Linear(8, 8)
        self.act = paddle.nn.LeakyReLU()  # paddle2onnx writes its alpha wrong
        self.scale = PaddleScale()
        self.out = paddle.nn.Linear(8, 4)

    def forward(self, x):
        return self.out(self.scale(self.act(self.fc(x))))


def _pair() -> tuple[TorchLeaky, PaddleLeaky, np.ndarray]:
    return seeded_pair(TorchLeaky, PaddleLeaky)


def _exported_again(caplog) -> bool:
    return any(_AGAIN in record.getMessage() for record in caplog.records)


def test_only_the_known_fault_departs_no_export_again(cache, caplog):
    model_a, model_b, x = _pair()
    first = padiff_ir.match(model_a, model_b, x)
    assert first and [f.module for f in first.exporter_faults] == ["act"]
    with caplog.at_level(logging.INFO, logger="padiff_ir"):
        again = padiff_ir.match(model_a, model_b, x)  # the kept pair
        other = padiff_ir.match(model_a, PaddleLeaky(), x)  # the cache entry, other weights
    assert not _exported_again(caplog)
    assert again and [f.module for f in again.exporter_faults] == ["act"]
    assert again.stale_exports == () and other.stale_exports == ()
    assert not other


def test_a_stale_change_elsewhere_is_still_exported_again(cache, caplog, monkeypatch):
    model_a, model_b, x = _pair()
    monkeypatch.setattr(PaddleScale, "factor", 2.0)
    first = padiff_ir.match(model_a, model_b, x)
    assert not first and [c.module_b for c in first.culprits] == ["scale"]
    monkeypatch.setattr(PaddleScale, "factor", 1.0)  # the fix, unseen by the fingerprint
    with caplog.at_level(logging.INFO, logger="padiff_ir"):
        fixed = padiff_ir.match(model_a, model_b, x)
    assert _exported_again(caplog)
    assert fixed, str(fixed)
    assert fixed.stale_exports == ("B",)
    assert [f.module for f in fixed.exporter_faults] == ["act"]


def test_a_layer_map_in_between_keeps_what_the_entry_knows(cache, caplog):
    """auto_layer_map's cheap check cannot localise, so it exports the faulty model again; the
    new entry keeps the known fault, and the next match does not export again."""
    model_a, model_b, x = _pair()
    assert padiff_ir.match(model_a, model_b, x)
    with caplog.at_level(logging.INFO, logger="padiff_ir.pairing"):
        layer_map = padiff_ir.auto_layer_map(model_a, PaddleLeaky(), x)  # the cache entry
    assert layer_map.pairs["act"] == "act"
    assert _exported_again(caplog)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="padiff_ir"):
        again = padiff_ir.match(model_a, PaddleLeaky(), x)
    assert not _exported_again(caplog)
    assert again.stale_exports == ()
