"""One rank of a sharded run (started by tests.distributed.launch, or by torchrun/paddle's
launcher): ``worker.py torch OUT --scenarios correct,wrong_axis --tp 2 --steps 2`` captures
each scenario's training steps into ``OUT/<scenario>``."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from padiff_ir.distributed import Window, capture_ranks
from tests.distributed.models import BACKWARD_BUGS, Config, batch, config_from, master_weights


def _timed(model, opt, cfg: Config, x, dp_sync, steps: int, cap=None) -> list[list[float]]:
    """``[wall seconds, this thread's CPU seconds]`` of each of ``steps`` training steps
    (captured when ``cap`` is given): the CPU time of the thread that runs the step and the
    capture is what other processes on a shared machine do not inflate."""
    times = []
    for _ in range(steps):
        start, cpu = time.perf_counter(), time.thread_time()
        loss = model(x).pow(2).mean() / dp_sync.replicas
        opt.zero_grad()
        loss.backward()
        dp_sync()
        opt.step()
        if cap is not None:
            cap.next_step()
        times.append([time.perf_counter() - start, time.thread_time() - cpu])
    return times


def _overhead(args, cfg, model, opt, x, dp_sync, rank) -> None:
    """Plain and captured (digests only: forward and backward, and forward only) training
    steps, alternating rounds; rank 0 writes ``OUT/overhead.json``."""
    _timed(model, opt, cfg, x, dp_sync, 2)
    plain, captured, forward = [], [], []
    for round_ in range(args.rounds):
        plain += _timed(model, opt, cfg, x, dp_sync, args.steps)
        for backward, into in ((True, captured), (False, forward)):
            out = Path(args.out) / f"overhead{round_}{backward}"
            with capture_ranks(model, out, backward=backward) as cap:
                into += _timed(model, opt, cfg, x, dp_sync, args.steps, cap)
    if rank == 0:
        out = {"plain": plain, "captured": captured, "forward": forward}
        (Path(args.out) / "overhead.json").write_text(json.dumps(out))


def _dtensor_placements(out: Path, rank: int, world: int) -> None:
    """A torch tensor-parallel plan (``parallelize_module``: DTensor parameters) read by
    ``module_placements``; written to ``OUT/dtensor_rank{rank}.json``."""
    from torch import nn
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor.parallel import (
        ColwiseParallel,
        RowwiseParallel,
        parallelize_module,
    )

    from padiff_ir.frameworks import get_framework
    from padiff_ir.frameworks.placement import module_placements

    mesh = init_device_mesh("cpu", (world,))
    mlp = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 8))
    parallelize_module(mlp, mesh, {"0": ColwiseParallel(), "2": RowwiseParallel()})
    found = module_placements(get_framework("torch"), mlp)
    summary = {
        path: {
            "style": m.style,
            "output": str(m.output),
            "parameters": {n: f"{pl}/{pl.source}" for n, pl in m.parameters},
        }
        for path, m in found.items()
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / f"dtensor_rank{rank}.json").write_text(json.dumps(summary))


def _torch(args: argparse.Namespace, cfg: Config) -> None:
    import torch
    import torch.distributed as dist

    from tests.distributed import torch_models

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    tp = args.tp
    dp = world // tp
    tp_groups = [dist.new_group(list(range(i * tp, (i + 1) * tp))) for i in range(dp)]
    dp_groups = [dist.new_group(list(range(j, world, tp))) for j in range(tp)]
    tp_group, dp_group = tp_groups[rank // tp], dp_groups[rank % tp]
    dp_rank = rank // tp
    weights = master_weights(cfg)

    def dp_sync() -> None:
        """Sum the replicas' gradients (each backpropagated its batch mean / dp)."""
        if dp > 1:
            for name, p in model.named_parameters():
                if not (bug == "no_grad_allreduce" and name.startswith(BACKWARD_BUGS[bug])):
                    dist.all_reduce(p.grad, group=dp_group)

    dp_sync.replicas = dp
    bug = ""

    if args.dtensor:
        _dtensor_placements(Path(args.out), rank, world)
    if args.rounds:
        model = torch_models.sharded(cfg, weights, tp_group)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)
        x = torch.from_numpy(batch(cfg, 0)).chunk(dp)[dp_rank]
        _overhead(args, cfg, model, opt, x, dp_sync, rank)
        dist.destroy_process_group()
        return
    for scenario in args.scenarios.split(","):
        bug = "" if scenario == "correct" else scenario
        model_bug = "" if bug == "no_grad_allreduce" else bug
        model = torch_models.sharded(cfg, weights, tp_group, model_bug)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        steps = tuple(range(args.steps)) if args.all_steps else (0,)
        window = Window(tuple(args.window.split(",")) if args.window else (), steps)
        with capture_ranks(
            model, Path(args.out) / scenario, window=window, tensor_parallel=tp, data_parallel=dp
        ) as cap:
            for step in range(args.steps):
                x = torch.from_numpy(batch(cfg, step)).chunk(dp)[dp_rank]
                loss = model(x).pow(2).mean() / dp
                opt.zero_grad()
                loss.backward()
                dp_sync()
                opt.step()
                cap.next_step()
    dist.destroy_process_group()


def _paddle(args: argparse.Namespace, cfg: Config) -> None:
    import paddle
    import paddle.distributed as dist
    from paddle.distributed import fleet

    from padiff_ir.frameworks import get_framework
    from padiff_ir.frameworks.placement import module_placements
    from tests.distributed import paddle_models

    strategy = fleet.DistributedStrategy()
    world = int(__import__("os").environ["PADDLE_TRAINERS_NUM"])
    strategy.hybrid_configs = {"dp_degree": 1, "mp_degree": world, "pp_degree": 1}
    fleet.init(is_collective=True, strategy=strategy)
    from paddle.distributed.fleet.meta_parallel import (
        ColumnParallelLinear,
        RowParallelLinear,
        VocabParallelEmbedding,
    )

    fleet_model = paddle.nn.LayerList(
        [
            VocabParallelEmbedding(cfg.vocab, cfg.hidden),
            ColumnParallelLinear(cfg.hidden, cfg.ffn, has_bias=True, gather_output=False),
            RowParallelLinear(cfg.ffn, cfg.hidden, has_bias=True, input_is_parallel=True),
        ]
    )
    found = module_placements(get_framework("paddle"), fleet_model)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {
        p: {
            "style": m.style,
            "input": str(m.input),
            "output": str(m.output),
            "parameters": {n: str(pl) for n, pl in m.parameters},
        }
        for p, m in found.items()
    }
    (out / f"fleet_rank{dist.get_rank()}.json").write_text(json.dumps(summary))
    model = paddle_models.sharded(cfg, master_weights(cfg))
    with paddle.no_grad(), capture_ranks(model, out / "correct") as cap:
        model(paddle.to_tensor(batch(cfg, 0)))
        cap.next_step()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("framework", choices=("torch", "paddle"))
    parser.add_argument("out")
    parser.add_argument("--scenarios", default="correct")
    parser.add_argument("--tp", type=int, default=2)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--window", default="")
    parser.add_argument("--all-steps", action="store_true", help="full tensors at every step")
    parser.add_argument("--rounds", type=int, default=0, help="time plain vs captured steps")
    parser.add_argument("--config", default="", help="Config overrides: hidden=256,ffn=1024")
    parser.add_argument("--dtensor", action="store_true", help="read a DTensor plan's placements")
    args = parser.parse_args()
    cfg = config_from(args.config)
    if args.framework == "torch":
        _torch(args, cfg)
    else:
        _paddle(args, cfg)


if __name__ == "__main__":
    main()
