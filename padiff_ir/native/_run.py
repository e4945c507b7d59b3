"""One :func:`~padiff_ir.native.auto_diff` call: arguments resolved, layers paired, steps run.

:meth:`TrainingRun.prepare` checks and orders the arguments (losses and optimizers put in model
order), pairs the layers and parameters (the pair's remembered matching, else
:func:`~padiff_ir.pairing.graphs.pair_models`), copies A's weights into B when asked and lists
the settings that differ; :meth:`TrainingRun.execute` runs the steps (inputs, forward with the
layer hooks of :mod:`padiff_ir.native._hooks`, losses, backward, parameter gradients, optimizer
step, weights) and returns the :class:`~padiff_ir.native.diff_result.DiffResult`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from padiff_ir._interrupts import reraise_interruption
from padiff_ir.frameworks import (
    Framework,
    flatten_tensors,
    get_framework,
    skipped_values,
    split_inputs,
    unwrap_model,
)
from padiff_ir.frameworks.rounding import input_rounding
from padiff_ir.hints import Inputs, Model, Optimizer, Outputs, Tensor
from padiff_ir.matching.types import Matching, ParamPair
from padiff_ir.metrics import Tolerance, compare_arrays
from padiff_ir.native._arguments import (
    AutoDiffError,
    LossFunction,
    OptimizerStep,
    check_one_argument,
    model_framework,
    order_pair,
)
from padiff_ir.native._config import config_differences, optimizer_differences, random_layers
from padiff_ir.native._data import FedInputs, compare_inputs, feed, run_model
from padiff_ir.native._hooks import Recorder, recording
from padiff_ir.native._locate import culprits, first_difference
from padiff_ir.native._memo import memo_for
from padiff_ir.native._param_checks import ParamComparer, getter
from padiff_ir.native._replay import StepRecord
from padiff_ir.native._selection import Selector, selection
from padiff_ir.native._slots import LayerSlot, PassOptions, Pending
from padiff_ir.native._workers import Workers
from padiff_ir.native.diff_result import DiffResult, ParamDiff, StepResult
from padiff_ir.pairing.assign import assign_weight
from padiff_ir.pairing.cache import NativeMemo
from padiff_ir.pairing.environment import environment
from padiff_ir.pairing.layer_map import LayerMap, named_modules

__all__ = ["DIFF_PHASES", "TrainingRun"]

logger = logging.getLogger(__name__)

DIFF_PHASES = ("forward", "backward", "both")


class TrainingRun:
    """One auto_diff call: resolved arguments, matching, and the step loop."""

    # set by :meth:`prepare`
    workers: int | None
    model_a: Model
    model_b: Model
    fw_a: str
    fw_b: str
    ops_a: Framework
    ops_b: Framework
    tolerance: Tolerance
    auto_init: bool
    disable_random: bool
    inputs_a: Inputs
    inputs_b: Inputs
    loss_a: LossFunction | None
    loss_b: LossFunction | None
    optimizer_a: OptimizerStep | None
    optimizer_b: OptimizerStep | None
    memo: NativeMemo
    matching: Matching
    modules_a: dict[str, Any]
    modules_b: dict[str, Any]
    slots: list[LayerSlot]
    param_pairs: list[ParamPair]

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.timings: dict[str, float] = {}
        #: keep A's compared values step by step in :attr:`records` (see ``_replay``)
        self.keep_a = False
        self.records: list[StepRecord] = []
        #: A's steps as another call ran them: A is not run, each step replays its record
        self.replayed: list[StepRecord | None] | None = None

    # -- preparation ---------------------------------------------------------------------------
    @classmethod
    def prepare(
        cls,
        model_a: Model,
        model_b: Model,
        inputs: Inputs,
        *,
        auto_init: bool,
        layer_map: LayerMap | None,
        tolerance: Tolerance,
        single_step: bool,
        diff_phase: str,
        loss_fn: Sequence[Callable[[Outputs], Tensor]] | None,
        optimizer: Optimizer,
        steps: int,
        blacklist: Iterable[Selector],
        whitelist: Iterable[Selector],
        matching: Matching | None,
        disable_random_layers: bool,
        workers: int | None,
    ) -> TrainingRun:
        run = cls()
        run.workers = workers
        run.model_a, run.model_b = unwrap_model(model_a), unwrap_model(model_b)
        if run.model_a is run.model_b:
            raise AutoDiffError("model_a and model_b are the same object; pass two models")
        run.fw_a, run.fw_b = model_framework(run.model_a, "A"), model_framework(run.model_b, "B")
        run.ops_a, run.ops_b = get_framework(run.fw_a), get_framework(run.fw_b)
        run.tolerance = tolerance
        run.auto_init = bool(auto_init)
        run.disable_random = bool(disable_random_layers)
        run._options(single_step, diff_phase, steps, optimizer)
        run.inputs_a, run.inputs_b = split_inputs(inputs, run.fw_a, run.fw_b)
        run.loss_a = run.loss_b = None
        if loss_fn is not None:
            run._losses(loss_fn)
        run.optimizer_a = run.optimizer_b = None
        if optimizer is not None and run.use_optimizer:
            first, second, note = order_pair(optimizer, run.fw_a, run.fw_b, "optimizer")
            run.notes += [note] if note else []
            run.optimizer_a = OptimizerStep(first, run.ops_a)
            run.optimizer_b = OptimizerStep(second, run.ops_b)
        start = time.perf_counter()
        run.memo = memo_for(run.model_a, run.model_b, inputs, layer_map, matching)
        run.matching = run.memo.matching
        run.timings["match"] = time.perf_counter() - start
        run.modules_a = dict(named_modules(run.model_a))
        run.modules_b = dict(named_modules(run.model_b))
        select = selection(list(blacklist), list(whitelist), run.modules_a, run.modules_b)
        pairs = [
            p
            for p in run.matching.module_pairs
            if p.a in run.modules_a and p.b in run.modules_b and select(p.a, p.b)
        ]
        run.slots = [
            LayerSlot(
                i,
                p,
                run.modules_a[p.a],
                run.modules_b[p.b],
                run.ops_a.base_layer(run.modules_a[p.a]),
                run.ops_b.base_layer(run.modules_b[p.b]),
            )
            for i, p in enumerate(pairs)
        ]
        run.param_pairs = [p for p in run.matching.param_pairs if select(p.module_a, p.module_b)]
        return run

    def _options(
        self, single_step: bool, diff_phase: str, steps: int, optimizer: Optimizer
    ) -> None:
        if diff_phase not in DIFF_PHASES:
            raise AutoDiffError(f"diff_phase must be one of {DIFF_PHASES}, got {diff_phase!r}")
        if not isinstance(steps, int) or steps < 1:
            raise AutoDiffError(f"steps must be a positive integer, got {steps!r}")
        self.single_step = bool(single_step)
        self.use_optimizer = optimizer is not None
        if self.single_step:
            if steps > 1:
                self.notes.append(
                    "single_step: one step is run (B is fed A's values, so more "
                    "steps would repeat it)"
                )
                steps = 1
            if optimizer is not None:
                self.notes.append(
                    "single_step: the optimizer is not used (B's gradients are "
                    "computed from A's, an update would not be B's own)"
                )
                self.use_optimizer = False
        elif diff_phase == "backward":
            self.notes.append("diff_phase='backward' needs single_step=True; 'both' is used")
            diff_phase = "both"
        if diff_phase == "forward" and optimizer is not None:
            self.notes.append("diff_phase='forward': no backward pass, the optimizer is not used")
            self.use_optimizer = False
        if steps > 1 and not self.use_optimizer:
            self.notes.append(
                f"steps={steps} without an optimizer step would repeat step 0; one step is run"
            )
            steps = 1
        self.diff_phase = diff_phase
        self.backward = diff_phase in ("backward", "both")
        self.steps = steps

    def _losses(self, loss_fn: Sequence[Callable[[Outputs], Tensor]]) -> None:
        first, second, note = order_pair(loss_fn, self.fw_a, self.fw_b, "loss_fn")
        swapped = bool(note)
        self.notes += [note] if note else []
        for position, fn in enumerate(loss_fn):
            check_one_argument(fn, f"loss_fn[{position}]")
        position_a, position_b = (1, 0) if swapped else (0, 1)
        self.loss_a = LossFunction(first, position_a, "A", self.fw_a, swapped)
        self.loss_b = LossFunction(second, position_b, "B", self.fw_b, swapped)

    # -- the call ------------------------------------------------------------------------------
    def execute(self) -> DiffResult:
        configs = config_differences(
            [s.pair for s in self.slots], self.modules_a, self.modules_b, self.fw_a, self.fw_b
        )
        flags = [(m, m.training) for m in self.ops_a.modules(self.model_a)]
        flags += [(m, m.training) for m in self.ops_b.modules(self.model_b)]
        params_a = self.ops_a.named_parameters(self.model_a)
        params_b = self.ops_b.named_parameters(self.model_b)
        had_grads = any(self.ops_a.grad(p) is not None for p in params_a.values()) or any(
            self.ops_b.grad(p) is not None for p in params_b.values()
        )
        randoms = self._random_layers()
        steps: list[StepResult] = []
        verified = self.memo.weights_verified
        self.memo.weights_verified = False  # until this call ends with equal weights
        workers = Workers(self.tolerance, self.workers)
        try:
            verified = self._start_weights(verified)
            configs += self._optimizer_differences()
            if had_grads and self.backward:
                self.notes.append(
                    "the models held gradients before the call; they were "
                    "cleared before the first backward pass"
                )
            self._run_steps(steps, workers, params_a, params_b)
            self.memo.weights_verified = _weights_equal_after(steps, verified)
        finally:
            workers.close()
            self.timings["compare"] = workers.seconds
            for module, flag in flags:
                module.training = flag
            if not had_grads:
                self.ops_a.clear_grads(list(params_a.values()))
                self.ops_b.clear_grads(list(params_b.values()))
        return self._result(steps, configs, randoms, params_a, params_b)

    def _start_weights(self, verified: bool) -> bool:
        """Copy A's weights into B when asked; whether step 0 may skip comparing them."""
        if self.auto_init:
            start = time.perf_counter()
            assign_weight(self.model_b, self.model_a, matching=self.matching)
            self.timings["init"] = time.perf_counter() - start
            verified = True
        elif verified:
            self.notes.append(
                "the weights were compared equal at the end of the previous "
                "call on these models; not compared again before step 0"
            )
        self._check_weights = not verified
        return verified

    def _optimizer_differences(self) -> list[str]:
        """The settings in which the two optimizers differ (none without both instances)."""
        if (
            self.optimizer_a is None
            or self.optimizer_b is None
            or self.optimizer_a.instance is None
            or self.optimizer_b.instance is None
        ):
            return []
        return optimizer_differences(
            self.ops_a.optimizer_config(self.optimizer_a.instance),
            self.ops_b.optimizer_config(self.optimizer_b.instance),
            self.fw_a,
            self.fw_b,
        )

    def _run_steps(
        self,
        steps: list[StepResult],
        workers: Workers,
        params_a: dict[str, Tensor],
        params_b: dict[str, Tensor],
    ) -> None:
        """Feed the inputs and run the steps, appending each one's result to ``steps``."""
        grad_inputs = self.backward and not params_a and not params_b
        rounding = input_rounding(self.ops_a, self.model_a, self.ops_b, self.model_b)
        fed_a = feed(
            self.inputs_a, self.ops_a, self.model_a, grad_inputs=grad_inputs, rounding=rounding
        )
        fed_b = feed(
            self.inputs_b, self.ops_b, self.model_b, grad_inputs=grad_inputs, rounding=rounding
        )
        input_diffs = compare_inputs(fed_a, fed_b, self.tolerance)
        self._times: dict[str, tuple[float, float]] = {}
        comparer = ParamComparer(
            self.param_pairs, self.ops_a, self.ops_b, workers, self._param_order
        )
        for index in range(self.steps):
            step = StepResult(
                index, "single_step" if self.single_step else "normal", inputs=list(input_diffs)
            )
            steps.append(step)
            if not all(d.ok for d in input_diffs):
                self.notes.append("the inputs differ: the models were not run")
                break
            self._step(step, fed_a, fed_b, comparer, params_a, params_b)

    def _result(
        self,
        steps: list[StepResult],
        configs: list[str],
        randoms: list[str],
        params_a: dict[str, Tensor],
        params_b: dict[str, Tensor],
    ) -> DiffResult:
        """The call's result: the first difference and its culprits over ``steps``."""
        first = first_difference(steps, single_step=self.single_step, config_differences=configs)
        found = culprits(steps, first, single_step=self.single_step, config_differences=configs)
        for config in configs:
            logger.warning("config difference: %s", config)
        return DiffResult(
            ok=first is None,
            tolerance=self.tolerance,
            options={
                "single_step": self.single_step,
                "diff_phase": self.diff_phase,
                "steps": self.steps,
                "auto_init": self.auto_init,
                "loss_fn": self.loss_a is not None,
                "optimizer": self.use_optimizer,
                "disable_random_layers": self.disable_random,
            },
            model_a=self._describe(self.model_a, self.fw_a, params_a),
            model_b=self._describe(self.model_b, self.fw_b, params_b),
            layer_map=[s.pair for s in self.slots],
            unmatched=list(self.matching.unmatched),
            steps=steps,
            first_difference=first,
            culprits=found,
            config_differences=configs,
            random_layers=randoms,
            notes=self.notes,
            environment=environment(),
            timings=self.timings,
        )

    def _random_layers(self) -> list[str]:
        found = random_layers(self.model_a, self.fw_a, "A") + random_layers(
            self.model_b, self.fw_b, "B"
        )
        texts = []
        for _path, module, text in found:
            if self.disable_random and module.training:
                module.training = False  # restored with every flag after the call
                text += " -> eval mode for the comparison"
            texts.append(text)
        if found and self.disable_random and any(m.training is False for _, m, _ in found):
            logger.warning(
                "auto_diff: %d random layer(s) switched to eval mode for the comparison: %s",
                len(found),
                "; ".join(texts),
            )
        return texts

    def _describe(self, model: Model, framework: str, params: dict[str, Tensor]) -> dict[str, Any]:
        ops = self.ops_a if framework == self.fw_a else self.ops_b
        return {
            "framework": framework,
            "class": type(model).__name__,
            "parameters": int(sum(ops.numel(p) for p in params.values())),
        }

    # -- timeline ------------------------------------------------------------------------------
    def _param_order(self, module_a: str, kind: str) -> float:
        times = self._times.get(module_a)
        if times is None:
            return 1e12
        pre, post = times
        if kind == "buffer":
            return post + 0.5
        if kind == "grad":
            return -pre - 0.25
        return 0.0

    # -- one step ------------------------------------------------------------------------------
    def _step(
        self,
        step: StepResult,
        fed_a: FedInputs,
        fed_b: FedInputs,
        comparer: ParamComparer,
        params_a: dict[str, Tensor],
        params_b: dict[str, Tensor],
    ) -> None:
        replay = self.replayed[step.index] if self.replayed is not None else None
        comparer.kept = {} if self.keep_a else None
        state_a = self.ops_a.named_state(self.model_a)
        state_b = self.ops_b.named_state(self.model_b)
        buffers_a = {n: t for n, t in state_a.items() if n not in params_a}
        buffers_b = {n: t for n, t in state_b.items() if n not in params_b}
        if step.index == 0 and self._check_weights and replay is None:
            start = time.perf_counter()
            step.initial_weights = comparer.compare("weight", getter(state_a), getter(state_b))
            step.timings["initial_weights"] = time.perf_counter() - start
        if self.backward:
            if replay is None:  # a replayed A is not run: its gradients stay as they are
                self.ops_a.clear_grads(list(params_a.values()))
            self.ops_b.clear_grads(list(params_b.values()))
        options = PassOptions(
            compare_forward=not (self.single_step and self.diff_phase == "backward"),
            backward=self.backward,
            feed_forward=self.single_step,
            feed_backward=self.single_step and self.backward,
        )
        recorder = Recorder(self.slots, self.ops_a, self.ops_b, comparer.workers, options)
        if self.keep_a:
            recorder.kept = Pending()
        if replay is not None:
            recorder.replay(replay.a_side)
        buffers = replay.getter("buffer") if replay else getter(buffers_a)
        with recording(recorder):
            loss_a = self._pass(
                step,
                recorder,
                (fed_a, fed_b),
                lambda: comparer.compare("buffer", buffers, getter(buffers_b)),
                replay,
            )
        if self.backward:
            start = time.perf_counter()
            missing = " (unused by the loss, detached, or frozen)"
            step.grads = comparer.compare(
                "grad",
                replay.getter("grad") if replay else getter(params_a, self.ops_a.grad),
                getter(params_b, self.ops_b.grad),
                missing=missing,
            )
            step.timings["grads"] = time.perf_counter() - start
        if self.optimizer_a is not None and self.optimizer_b is not None and self.backward:
            self._optimize(step, comparer, params_a, params_b, replay)
        if self.keep_a:
            self.records.append(StepRecord(recorder.a_side(), comparer.kept or {}, loss_a))
        if self.replayed is not None:
            self.replayed[step.index] = None  # its arrays released once replayed
        for key, value in step.timings.items():
            self.timings[key] = self.timings.get(key, 0.0) + value

    def _pass(
        self,
        step: StepResult,
        recorder: Recorder,
        fed: tuple[FedInputs, FedInputs],
        compare_buffers: Callable[[], list[ParamDiff]],
        replay: StepRecord | None = None,
    ) -> np.ndarray | None:
        """Forward, buffers, loss and backward of both models under ``recorder`` (A's taken
        from ``replay`` where given); their outputs and losses are dropped when it returns,
        before the gradients are compared. Returns A's loss as an array (None without one)."""
        fed_a, fed_b = fed
        start = time.perf_counter()
        context_a = self.ops_a.no_grad() if not self.backward else contextlib.nullcontext()
        context_b = self.ops_b.no_grad() if not self.backward else contextlib.nullcontext()
        output_a = loss_a = None
        if replay is None:
            with context_a:
                output_a = run_model(fed_a, self.model_a, "A", self.fw_a)
                loss_a = self._loss(output_a, "A")
        with context_b:
            output_b = run_model(fed_b, self.model_b, "B", self.fw_b)
            loss_b = self._loss(output_b, "B")
        step.forward = recorder.finish_forward()
        if step.index == 0:
            if replay is None:
                self._note_skipped("A", output_a, self.ops_a)
            self._note_skipped("B", output_b, self.ops_b)
        self.notes += [n for n in recorder.extra_output_notes() if n not in self.notes]
        step.inputs_differ = recorder.inputs_differ()
        self._times = {}
        for slot in self.slots:
            pre, post = recorder.times.get((slot.index, 0), (None, None))
            if pre is not None and post is not None:
                self._times.setdefault(slot.pair.a, (pre, post))
        step.timings["forward"] = time.perf_counter() - start
        step.buffers = compare_buffers()
        array_a = replay.loss if replay else None
        if loss_a is not None:
            array_a = self.ops_a.to_numpy(loss_a).reshape(())
        if array_a is not None and loss_b is not None:
            step.loss_a, step.loss_b = float(array_a), self.ops_b.scalar(loss_b)
            step.loss = compare_arrays(
                array_a, self.ops_b.to_numpy(loss_b).reshape(()), self.tolerance
            )
        if self.backward:
            start = time.perf_counter()
            self._backward(loss_a, loss_b, replayed=replay is not None)
            step.backward = recorder.finish_backward()
            step.timings["backward"] = time.perf_counter() - start
        return array_a

    def _note_skipped(self, label: str, output: Outputs, ops: Framework) -> None:
        skipped = skipped_values(output, ops)
        if skipped:
            self.notes.append(
                f"model {label}'s output holds values that are not tensors, left out "
                f"of the comparison: {', '.join(skipped[:5])}"
            )

    def _optimize(
        self,
        step: StepResult,
        comparer: ParamComparer,
        params_a: dict[str, Tensor],
        params_b: dict[str, Tensor],
        replay: StepRecord | None = None,
    ) -> None:
        """Both optimizers' step (B's alone where A is replayed), then the weights and
        optimizer states compared."""
        assert self.optimizer_a is not None and self.optimizer_b is not None
        start = time.perf_counter()
        if replay is None:
            self.optimizer_a.step()
        self.optimizer_b.step()
        step.timings["optimizer"] = time.perf_counter() - start
        start = time.perf_counter()
        weights = replay.getter("weight") if replay else getter(params_a)
        step.weights = comparer.compare("weight", weights, getter(params_b))
        step.optimizer_state = self._optimizer_state(comparer, params_a, params_b, replay)
        step.timings["weights"] = time.perf_counter() - start

    def _loss(self, output: Outputs, side: str) -> Any:
        ops, model = (self.ops_a, self.model_a) if side == "A" else (self.ops_b, self.model_b)
        loss_fn = self.loss_a if side == "A" else self.loss_b
        if loss_fn is not None:
            return loss_fn(output, ops, type(model).__name__)
        return ops.mean_of(flatten_tensors(output, ops))  # PaDiff's default loss

    def _backward(self, loss_a: Tensor, loss_b: Tensor, replayed: bool = False) -> None:
        sides = [(loss_a, self.ops_a, "A")] if not replayed else []
        for loss, ops, side in [*sides, (loss_b, self.ops_b, "B")]:
            if loss is None or not ops.requires_grad(loss):
                self.notes.append(
                    f"model {side}'s loss does not require a gradient (no "
                    "trainable parameter or gradient-carrying input reaches it); "
                    "its backward pass was skipped"
                )
                continue
            try:
                ops.backward(loss)
            except Exception as err:
                reraise_interruption(err)
                model = self.model_a if side == "A" else self.model_b
                raise AutoDiffError(
                    f"the backward pass of model {side} ({ops.name} {type(model).__name__}) "
                    f"failed: {type(err).__name__}: {err}"
                ) from err

    def _optimizer_state(
        self,
        comparer: ParamComparer,
        params_a: dict[str, Tensor],
        params_b: dict[str, Tensor],
        replay: StepRecord | None = None,
    ) -> list[Any]:
        opt_a = self.optimizer_a.instance if self.optimizer_a else None
        opt_b = self.optimizer_b.instance if self.optimizer_b else None
        if opt_a is None or opt_b is None:
            return []
        state_a = self.ops_a.optimizer_state(opt_a, params_a) if replay is None else {}
        state_b = self.ops_b.optimizer_state(opt_b, params_b)
        names_a = {k for states in state_a.values() for k in states}
        names_a |= replay.state_kinds() if replay else set()
        names_b = {k for states in state_b.values() for k in states}
        results = []
        for name in sorted(names_a & names_b):

            def get_a(param: str, name: str = name) -> Any:
                return replay.arrays[(name, param)] if replay else state_a[param][name]

            def get_b(param: str, name: str = name) -> Any:
                return state_b[param][name]

            results += comparer.compare(name, get_a, get_b)
        return results


def _weights_equal_after(steps: list[StepResult], equal_before: bool) -> bool:
    """Whether the weights are known equal after ``steps`` (``equal_before``: at the start)."""
    equal = equal_before
    for step in steps:
        if step.initial_weights:
            equal = all(d.ok for d in step.initial_weights)
        if step.weights:  # the optimizer stepped: only the new comparison counts
            equal = all(d.ok for d in step.weights)
        if step.buffers and not all(d.ok for d in step.buffers):
            equal = False
        if not step.forward and not step.initial_weights and not step.weights:
            break  # the step did not run (inputs differ): the weights are untouched
    return equal
