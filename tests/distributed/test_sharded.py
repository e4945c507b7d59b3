"""Sharded runs on gloo (world 2 and 4) compared with the one-process original and the paddle
port; injected parallel bugs, forward and backward-only, named at their layer, kind and ranks;
Ray gives what local processes give."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from padiff_ir.distributed import (
    Run,
    ShardedResult,
    Window,
    capture_ranks,
    compare_runs,
    logical_pairs,
)
from padiff_ir.errors import FileFormatError, OptionError, ReportError
from tests.distributed.launch import launch
from tests.distributed.models import BACKWARD_BUGS, BUGS, Config, batch, master_weights

CFG = Config()
SCENARIOS = ("correct", *BUGS, "scale_grad")


def _torch_reference(out: Path, steps: int = 2) -> Path:
    import torch

    from tests.distributed import torch_models

    model = torch_models.unsharded(CFG, master_weights(CFG))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with capture_ranks(model, out, window=Window(("",), (0,))) as cap:
        for step in range(steps):
            loss = model(torch.from_numpy(batch(CFG, step))).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            cap.next_step()
    return out


def _paddle_port(out: Path):
    import paddle

    from tests.distributed import paddle_models

    model = paddle_models.unsharded(CFG, master_weights(CFG))
    with capture_ranks(model, out, window=Window(("",), (0,))) as cap:
        model(paddle.to_tensor(batch(CFG, 0))).pow(2).mean().backward()
        cap.next_step()
    model.clear_gradients()
    return model


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("sharded")
    launch(
        "torch",
        2,
        [
            str(root / "tp2"),
            *("--scenarios", ",".join(SCENARIOS), "--window", "layers.0,head", "--dtensor"),
        ],
    )
    scenarios = "correct,no_allreduce,no_grad_allreduce"
    launch("torch", 4, [str(root / "tp2dp2"), "--scenarios", scenarios, "--tp", "2"])
    _torch_reference(root / "reference")
    return root


def test_correct_sharded_runs_align_with_the_original(runs):
    for name in ("tp2/correct", "tp2dp2/correct"):
        result = compare_runs(runs / "reference", runs / name)
        assert result.ok, str(result)
        assert result.culprits == () and result.failing == 0
        assert result.world_b == int(name.startswith("tp2dp2")) * 2 + 2
        assert result.compared > 100 and result.steps == 2


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_each_parallel_bug_is_named_at_its_layer_and_ranks(runs, bug):
    result = compare_runs(runs / "reference", runs / "tp2" / bug)
    assert not result.ok
    assert [c.module_a for c in result.culprits] == [BUGS[bug]], str(result)
    culprit = result.culprits[0]
    assert culprit.step == 0 and culprit.ranks == (0, 1) and culprit.kind == "output"
    assert culprit.style == ("row" if bug == "no_allreduce" else "column")
    assert BUGS[bug] in culprit.describe()
    if bug == "gather_dim":
        assert culprit.reason.startswith("shape [4, 8, 16] vs [4, 16, 8]")
    if bug == "no_allreduce":  # outside the window: the digests decide, the replicas split
        assert culprit.by == "digest"
        assert any(s.module == BUGS[bug] and s.ranks == (1,) for s in result.split_replicas)
    else:
        assert culprit.by == "tensor"


def test_gradients_are_captured_placed_and_joined_like_forward_tensors(runs):
    ref, sharded = Run(runs / "reference"), Run(runs / "tp2" / "correct")
    a, b = ref.step(0), sharded.step(0)
    kinds = {k[3] for k in b if k[1] == "layers.0.mlp.up"}
    assert kinds == {"in", "out", "output_grad", "input_grad", "param_grad"}
    weight = (0, "layers.0.mlp.up", 0, "param_grad", 0)  # column-parallel: sharded like it
    assert str(b[weight].placement) == "shard(0)" and b[weight].ranks == (0, 1)
    assert b[weight].digest.shape == (CFG.ffn, CFG.hidden)
    np.testing.assert_allclose(sharded.tensor(b[weight]), ref.tensor(a[weight]), atol=1e-6)
    down_in = (0, "layers.0.mlp.down", 0, "input_grad", 0)  # row-parallel input: its shard
    assert str(b[down_in].placement) == "shard(-1)"
    np.testing.assert_allclose(sharded.tensor(b[down_in]), ref.tensor(a[down_in]), atol=1e-6)
    # q, k and v read one tensor: each input gradient is that module's own share
    q_in, k_in = (ref.tensor(a[(0, f"layers.0.attn.{m}", 0, "input_grad", 0)]) for m in "qk")
    assert not np.allclose(q_in, k_in)
    result = compare_runs(runs / "reference", runs / "tp2" / "correct")
    assert result.ok and result.culprits == ()
    assert result.compared == len(ref.step(0)) + len(ref.step(1))


def test_backward_only_bugs_are_named_at_their_layer_kind_and_ranks(runs):
    scaled = compare_runs(runs / "reference", runs / "tp2" / "scale_grad")
    assert not scaled.ok and scaled.departing_steps[0] == 0
    found = [(c.step, c.module_a, c.kind, c.ranks) for c in scaled.culprits]
    assert found == [(0, BACKWARD_BUGS["scale_grad"], "input_grad", (0, 1))], str(scaled)
    culprit = scaled.culprits[0]
    assert culprit.by == "tensor" and culprit.style == "row"
    assert culprit.placement == "shard(-1)" and "input_grad" in culprit.describe()
    skipped = compare_runs(runs / "reference", runs / "tp2dp2" / "no_grad_allreduce")
    found = [(c.module_a, c.kind, c.ranks) for c in skipped.culprits]
    assert found == [(BACKWARD_BUGS["no_grad_allreduce"], "param_grad", (0, 1, 2, 3))]
    split = {(s.module, s.io, s.ranks) for s in skipped.split_replicas}
    assert (BACKWARD_BUGS["no_grad_allreduce"], "param_grad", (2, 3)) in split, str(skipped)
    assert "param_grad" in str(skipped)


def test_placements_of_a_torch_tensor_parallel_plan(runs):
    found = json.loads((runs / "tp2" / "dtensor_rank0.json").read_text())
    assert found["0"]["style"] == "column" and found["0"]["output"] == "shard(-1)"
    assert found["0"]["parameters"] == {"weight": "shard(0)/DTensor", "bias": "shard(0)/DTensor"}
    assert found["2"]["style"] == "row" and found["2"]["output"] == "replicated"
    assert found["2"]["parameters"]["weight"] == "shard(1)/DTensor"


def test_pipeline_stages_join_by_their_global_layer_paths(runs, tmp_path, monkeypatch):
    """Two stages of the original (``layers.0`` | ``layers.1``, norm, head) on ranks 0 and 1,
    as torchrun's environment names them; stage 1's weights off by a bug in its head."""
    import torch
    from torch import nn

    from tests.distributed import torch_models

    model = torch_models.unsharded(CFG, master_weights(CFG))
    stage0, stage1 = nn.Module(), nn.Module()
    stage0.layers = nn.ModuleList([model.layers[0]])
    stage1.layers, stage1.norm, stage1.head = (
        nn.ModuleList([model.layers[1]]),
        model.norm,
        model.head,
    )
    stage0.forward = lambda x: stage0.layers[0](x)
    stage1.forward = lambda x: stage1.head(stage1.norm(stage1.layers[0](x)))
    x = torch.from_numpy(batch(CFG, 0))
    for run, scale in (("pp2", 1.0), ("pp2_bug", 1.5)):
        with torch.no_grad():
            hidden = x
            for rank, (stage, offset) in enumerate(((stage0, 0), (stage1, 1))):
                monkeypatch.setenv("RANK", str(rank))
                monkeypatch.setenv("WORLD_SIZE", "2")
                if scale != 1.0 and rank == 1:
                    stage.head.weight.mul_(scale)
                with capture_ranks(stage, tmp_path / run, layer_offset=("layers", offset)) as cap:
                    hidden = stage(hidden)
                    cap.next_step()
    good = compare_runs(runs / "reference", tmp_path / "pp2")
    assert good.ok and good.world_b == 2 and good.steps == 1, str(good)
    assert {k[1] for k in Run(tmp_path / "pp2").step(0)} >= {"layers.0.mlp.up", "layers.1.mlp.up"}
    bad = compare_runs(runs / "reference", tmp_path / "pp2_bug")
    assert [(c.module_a, c.ranks) for c in bad.culprits] == [("head", (1,))]


def test_world_four_tensor_and_data_parallel(runs):
    run = Run(runs / "tp2dp2" / "correct")
    assert run.world == 4 and sorted(run.metas) == [0, 1, 2, 3]
    assert {(m.tp_rank, m.dp_rank) for m in run.metas.values()} == {(0, 0), (1, 0), (0, 1), (1, 1)}
    assert run.metas[0].parameters["layers.0.mlp.down"]["weight"].axis == 1
    logical = run.step(0, {"head"})[(0, "head", 0, "out", 0)]
    assert logical.digest.shape == (CFG.batch, CFG.seq, CFG.vocab)  # batch slices joined
    result = compare_runs(runs / "reference", runs / "tp2dp2" / "no_allreduce")
    assert [c.module_a for c in result.culprits] == [BUGS["no_allreduce"]]
    assert set(result.culprits[0].ranks) == {0, 1, 2, 3}


def test_the_window_keeps_full_tensors_that_join_into_the_logical_tensor(runs):
    ref, sharded = Run(runs / "reference"), Run(runs / "tp2" / "correct")
    key = (0, "layers.0.mlp.up", 0, "out", 0)
    a, b = ref.step(0)[key], sharded.step(0)[key]
    assert str(b.placement) == "shard(-1)" and b.ranks == (0, 1)
    np.testing.assert_allclose(sharded.tensor(b), ref.tensor(a), atol=1e-5)
    assert sharded.step(0)[(0, "layers.1.mlp.up", 0, "out", 0)].complete is False


def test_torch_sharded_run_against_the_paddle_port(runs, tmp_path):
    from tests.distributed import torch_models

    port = _paddle_port(tmp_path / "paddle")
    pairs = logical_pairs(torch_models.unsharded(CFG, master_weights(CFG)), port)
    assert pairs["layers.1.mlp.down"] == "layers.1.mlp.down" and pairs["head"] == "head"
    result = compare_runs(tmp_path / "paddle", runs / "tp2" / "correct", atol=1e-4, rtol=1e-4)
    assert result.ok and result.framework_a == "paddle" and result.steps == 1, str(result)
    kinds = {k[3] for k in Run(tmp_path / "paddle").step(0)}
    assert kinds == {"in", "out", "output_grad", "input_grad", "param_grad"}
    # activation gradients compared across frameworks; parameter gradients (layouts differ) not
    same = compare_runs(runs / "reference", runs / "tp2" / "correct")
    assert result.compared == same.compared // 2 - sum(
        k[3] == "param_grad" for k in Run(runs / "reference").step(0)
    )
    bad = compare_runs(tmp_path / "paddle", runs / "tp2" / "gather_dim", atol=1e-4, rtol=1e-4)
    assert [c.module_a for c in bad.culprits] == ["head"]


@pytest.mark.skipif(sys.platform != "linux", reason="paddle's gloo needs linux")
def test_paddle_sharded_run_with_its_own_collectives(runs, tmp_path):
    launch("paddle", 2, [str(tmp_path / "paddle_tp2")])
    fleet = json.loads((tmp_path / "paddle_tp2" / "fleet_rank1.json").read_text())
    assert fleet["0"]["style"] == "vocab" and fleet["1"]["style"] == "column"
    assert fleet["1"]["parameters"] == {"weight": "shard(1)", "bias": "shard(0)"}
    assert fleet["2"]["style"] == "row" and fleet["2"]["input"] == "shard(-1)"
    result = compare_runs(runs / "reference", tmp_path / "paddle_tp2" / "correct", atol=1e-4)
    assert result.ok and result.framework_b == "paddle" and result.world_b == 2, str(result)


def test_ray_gives_what_local_processes_give(runs):
    ray = pytest.importorskip("ray", reason="Ray is absent: pip install 'padiff-ir[distributed]'")
    del ray
    kwargs = {"window": 6}
    local = compare_runs(runs / "reference", runs / "tp2" / "wrong_axis", workers=2, **kwargs)
    here = compare_runs(runs / "reference", runs / "tp2" / "wrong_axis", **kwargs)
    remote = compare_runs(
        runs / "reference", runs / "tp2" / "wrong_axis", engine="ray", workers=2, **kwargs
    )
    strip = {"engine": None, "workers": None, "seconds": None}
    assert {**remote.to_dict(), **strip} == {**local.to_dict(), **strip}
    assert {**here.to_dict(), **strip} == {**local.to_dict(), **strip}
    assert remote.culprits[0].module_a == BUGS["wrong_axis"]


def test_results_round_trip_and_bad_input_is_named(runs, tmp_path):
    result = compare_runs(runs / "reference", runs / "tp2" / "no_allreduce")
    path = tmp_path / "r.json"
    result.to_json(path)
    assert ShardedResult.load(path) == result
    assert "layers.1.mlp.down" in str(result) and "DIVERGED" in str(result)
    with pytest.raises(ReportError, match="to_json"):
        result.to_html(tmp_path / "r.html")
    with pytest.raises(FileFormatError, match="no rank directory"):
        compare_runs(tmp_path, runs / "reference")
    with pytest.raises(OptionError, match="engine"):
        compare_runs(runs / "reference", runs / "reference", engine="spark")
    with pytest.raises(OptionError, match="data_parallel"):
        capture_ranks(__import__("torch").nn.Linear(2, 2), tmp_path, data_parallel=3)
    assert os.listdir(tmp_path) == ["r.json"]


def test_capture_leaves_the_model_as_it_was_even_when_the_step_fails(tmp_path):
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(RuntimeError, match="shape"), capture_ranks(model, tmp_path / "run") as cap:
        model(torch.ones(2, 4))
        cap.next_step()
        model(torch.ones(2, 3))  # the user's step fails
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    run = Run(tmp_path / "run")  # what was recorded before the failure is kept
    assert run.steps() == [0] and run.framework == "torch" and run.world == 1
    assert {k[1] for k in run.step(0)} == {"", "0", "1"}
