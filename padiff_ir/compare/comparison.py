"""Many inputs for the price of one export: a comparison prepared once, checked per batch.

:class:`Comparison` exports, matches and opens the onnxruntime sessions of two models once
(a :class:`~padiff_ir.pairing.pair.ModelPair`, :func:`~padiff_ir.compare.prepared.prepare_pair`);
each :meth:`Comparison.check` runs both models eagerly (their outputs only, a plain forward),
both graphs, and compares them (:func:`~padiff_ir.compare.check.check_inputs`), giving the
:class:`MatchResult` that :func:`padiff_ir.match` gives for those inputs. Inputs of another
signature (a last batch of another size) prepare the pair again, from the export cache. When a
model cannot be exported, each check compares the models module by module, as ``match`` does
(:func:`~padiff_ir.compare.native_match.answer_natively`).

``keys`` picks each model's inputs out of a batch: ``(keys_a, keys_b)``, each a dict
``{forward argument: batch key}``, a sequence of batch keys (positional inputs) or a function
of the batch; e.g. ``keys=({"img": "image"}, {"image": "image"})`` feeds ``batch["image"]`` to
A's argument ``img`` and B's argument ``image``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias

from padiff_ir.compare.check import EagerPair, checker
from padiff_ir.compare.eager import run_eager_pair
from padiff_ir.compare.match_result import MatchResult
from padiff_ir.compare.native_match import answer_natively
from padiff_ir.compare.options import MatchOptions, auto_tolerance
from padiff_ir.compare.pipeline import resolve_sides, rounded_sides
from padiff_ir.compare.prepared import prepare_pair
from padiff_ir.compare.verify import unfaithful, verified
from padiff_ir.errors import ExportError, InputError, OptionError
from padiff_ir.exporters import FRAMEWORK_LOCK
from padiff_ir.frameworks.inputs import split_inputs
from padiff_ir.hints import Inputs, Model
from padiff_ir.metrics import Tolerance
from padiff_ir.pairing.pair import ModelPair, input_signature
from padiff_ir.pairing.stages import Stage, StageTimer

__all__ = ["Comparison", "KeySpec", "select_inputs"]

KeySpec: TypeAlias = Mapping[str, object] | Sequence[object] | Callable[[Inputs], Inputs]
"""How one model's inputs are picked out of a batch: ``{forward argument: batch key}``, batch
keys in positional order, or a function of the batch."""

logger = logging.getLogger(__name__)


def _pick(batch: Inputs, spec: KeySpec, label: str) -> Any:
    try:
        if callable(spec):
            return spec(batch)
        if isinstance(spec, Mapping):
            return {argument: batch[key] for argument, key in spec.items()}
        return [batch[key] for key in spec]
    except (KeyError, IndexError, TypeError) as err:
        present = list(batch) if isinstance(batch, Mapping) else f"{type(batch).__name__}"
        raise InputError(
            f"keys for model {label} ({spec!r}) do not fit the batch ({present}): "
            f"{type(err).__name__}: {err}"
        ) from err


def _check_keys(keys: object) -> None:
    if keys is None:
        return
    if not isinstance(keys, (tuple, list)) or len(keys) != 2:
        raise OptionError(
            f"keys must be a pair (keys of A, keys of B), each a dict {{forward argument: "
            f"batch key}}, a sequence of batch keys or a function of the batch; got {keys!r}",
            option="keys",
        )
    for spec in keys:
        if not (callable(spec) or isinstance(spec, (Mapping, Sequence))) or isinstance(spec, str):
            raise OptionError(
                f"keys: {spec!r} is neither a dict, a sequence of batch keys nor a function",
                option="keys",
            )


def select_inputs(
    batch: Inputs,
    keys: Sequence[KeySpec] | None,
    framework_a: str,
    framework_b: str,
    *,
    paired: bool = False,
) -> tuple[Any, Any]:
    """Each model's inputs from a batch: through ``keys``, else as :func:`padiff_ir.match`
    splits its ``inputs``. A ``paired`` batch is ``(batch of A, batch of B)``.

    Example:
        >>> batch = {"image": 1, "label": 2}
        >>> select_inputs(batch, ({"img": "image"}, ["image"]), "torch", "paddle")
        ({'img': 1}, [1])
        >>> select_inputs(({"img": 1}, {"image": 2}), ({"x": "img"}, {"x": "image"}),
        ...               "torch", "paddle", paired=True)
        ({'x': 1}, {'x': 2})
    """
    if paired:
        batch_a, batch_b = batch
        if keys is None:
            return batch_a, batch_b
        return _pick(batch_a, keys[0], "A"), _pick(batch_b, keys[1], "B")
    if keys is None:
        return split_inputs(batch, framework_a, framework_b)
    return _pick(batch, keys[0], "A"), _pick(batch, keys[1], "B")


class Comparison:
    """Two models exported, matched and opened in onnxruntime once; :meth:`check` compares
    them on any inputs of the same signature.

    Args:
        model_a, model_b: as for :func:`padiff_ir.match` (A is the reference).
        example_inputs: inputs (or a batch, with ``keys``) that fix the input signature.
        keys: how to pick each model's inputs out of a batch (see the module docstring).
        paired: each batch is ``(batch of A, batch of B)`` (two loaders zipped).
        options / match_options: a :class:`~padiff_ir.compare.options.MatchOptions`, or
            :func:`padiff_ir.match`'s keyword options (``atol=1e-4``...).

    The graphs read the models' weights where the models hold them, at each check (see
    :mod:`padiff_ir.exporters._live`): a weight changed in place (an optimizer step) needs
    nothing, and a parameter replaced by another tensor is read from its new memory. A graph
    that holds copies (an export that could not be made live) is checked against the models
    when its outputs depart from theirs, and the pair is prepared again if they changed (or
    call :meth:`refresh` after changing them).
    Close the comparison (or use ``with``) to release the sessions.

    Raises:
        what :func:`padiff_ir.match` raises; OptionError for malformed ``keys``.
    """

    def __init__(
        self,
        model_a: Model,
        model_b: Model,
        example_inputs: Inputs,
        *,
        keys: Sequence[KeySpec] | None = None,
        paired: bool = False,
        options: MatchOptions | None = None,
        **match_options: Any,
    ) -> None:
        from padiff_ir.frameworks.wrapper import unwrap_model

        _check_keys(keys)
        if options is not None and match_options:
            raise OptionError(
                "pass either options=MatchOptions(...) or match's keyword options, not both",
                option="options",
            )
        if "tolerance" in match_options and not isinstance(match_options["tolerance"], Tolerance):
            match_options["auto_tolerance"] = auto_tolerance(
                match_options.pop("tolerance"),
                *(match_options.get(name) for name in ("atol", "rtol", "compare_mode")),
            )
        options = options or MatchOptions(**match_options)
        self.keys = keys
        self.paired = paired
        self.model_a, self.model_b, self.framework_a, self.framework_b, self.options = (
            resolve_sides(model_a, model_b, options, unwrap_model)
        )
        self._prepared: ModelPair | None = None
        self._unexported: ExportError | None = None  # then every check answers natively
        self.timings: dict[str, float] = {}
        with FRAMEWORK_LOCK:
            timer = StageTimer(options.progress)
            raw_a, raw_b = self._select(example_inputs)
            with contextlib.ExitStack() as runs, timer.stage(Stage.EAGER):
                # the inputs must fit the models before the slow export
                run_eager_pair(self._sides(raw_a, raw_b), runs, memory_budget=options.memory_budget)
            try:
                self._prepare(raw_a, raw_b, example_inputs, timer)
            except ExportError as err:
                self._fall_back(err)
            self.timings = dict(timer.timings)

    def _select(self, batch: Inputs) -> tuple[Any, Any]:
        raw_a, raw_b = select_inputs(
            batch, self.keys, self.framework_a, self.framework_b, paired=self.paired
        )
        side_a, side_b = rounded_sides(*self._sides(raw_a, raw_b))  # float16 vs float32
        return side_a[2], side_b[2]

    def _sides(
        self, raw_a: Inputs, raw_b: Inputs
    ) -> tuple[tuple[Any, str, Any], tuple[Any, str, Any]]:
        return (self.model_a, self.framework_a, raw_a), (self.model_b, self.framework_b, raw_b)

    def _prepare(
        self,
        raw_a: Inputs,
        raw_b: Inputs,
        inputs: Inputs,
        timer: StageTimer,
        fresh: tuple[bool, bool] = (False, False),
    ) -> ModelPair:
        if self._prepared is not None:
            self._prepared.close()
            self._prepared = None
        side_a, side_b = self._sides(raw_a, raw_b)
        self._prepared = prepare_pair(
            side_a, side_b, inputs, self.options, timer, keep_sessions=True, fresh=fresh
        )
        return self._prepared

    def _fall_back(self, err: ExportError) -> None:
        """A model cannot be exported: every check compares the models natively (an ONNX file
        side has nothing to run natively: ``err`` is raised)."""
        if "onnx" in (self.framework_a, self.framework_b):
            raise err
        logger.info("comparison: a model cannot be exported, checks compare natively: %s", err)
        self.close()
        self._unexported = err

    def _natively(self, batch: Inputs, timer: StageTimer) -> MatchResult:
        """``match``'s answer for ``batch`` when a model cannot be exported."""
        assert self._unexported is not None
        raw_a, raw_b = select_inputs(
            batch, self.keys, self.framework_a, self.framework_b, paired=self.paired
        )
        # what match would be given: the batch itself, else each model's inputs as a pair
        inputs = batch if self.keys is None and not self.paired else (raw_a, raw_b)
        sides = self._sides(raw_a, raw_b)
        return answer_natively(self._unexported, sides, inputs, self.options, timer, [])

    @property
    def prepared(self) -> ModelPair | None:
        """The exported, matched pair (None once closed, or when a model cannot be exported)."""
        return self._prepared

    def check(self, inputs: Inputs) -> MatchResult:
        """Compare the two models on ``inputs`` (a batch, with ``keys``): the result
        :func:`padiff_ir.match` gives, without exporting or matching again.

        When a graph's outputs depart from its model's and the model's weights are no longer
        those of its graph (changed since the comparison was prepared), the pair is prepared
        again with the current weights (from the export cache) and the check rerun.
        """
        with FRAMEWORK_LOCK, contextlib.ExitStack() as runs:
            result, eager = self._check(inputs, runs)
            if self._weights_changed(result):
                logger.info("the models' weights changed: preparing the comparison again")
                self.refresh()
                for run in eager:  # runs of the models as they were
                    if run is not None:
                        run.close()
                result, eager = self._check(inputs, runs)
            if self.options.auto_tolerance:  # judged in units of measured noise
                from padiff_ir.compare.noise_verdict import judged_by_noise

                result = judged_by_noise(
                    result, *self._sides(*self._select(inputs)), self.options.memory_budget, eager
                )
            return result

    def _weights_changed(self, result: MatchResult) -> bool:
        prepared = self._prepared
        departs = any(unfaithful(report) for report in result.export_fidelity.values())
        return prepared is not None and departs and self._weights_changed_since(prepared)

    def _check(self, inputs: Inputs, runs: contextlib.ExitStack) -> tuple[MatchResult, EagerPair]:
        """:meth:`check`'s result at the fixed tolerance and the eager runs it made (closed
        with ``runs``; none where the models are compared natively)."""
        with FRAMEWORK_LOCK:
            timer = StageTimer()
            if self._unexported is not None:
                return self._natively(inputs, timer), (None, None)
            try:
                return self._check_graphs(inputs, timer, runs)
            except ExportError as err:  # a new signature or a fresh export fails to export
                self._fall_back(err)
                return self._natively(inputs, timer), (None, None)

    def _check_graphs(
        self, inputs: Inputs, timer: StageTimer, runs: contextlib.ExitStack
    ) -> tuple[MatchResult, EagerPair]:
        """:meth:`check` on the graphs of the prepared pair, and both models' eager runs (every
        module recorded with ``tolerance="auto"``: the noise measurement judges with them)."""
        raw_a, raw_b = self._select(inputs)
        sides = self._sides(raw_a, raw_b)
        budget, recorded = self.options.memory_budget, bool(self.options.auto_tolerance)
        with timer.stage(Stage.EAGER):
            eager = run_eager_pair(sides, runs, memory_budget=budget, modules=recorded)
        prepared = self._prepared
        signature = (input_signature(raw_a), input_signature(raw_b))
        if prepared is None or prepared.signature != signature:
            logger.debug("inputs of another signature: preparing the pair again")
            prepared = self._prepare(raw_a, raw_b, inputs, timer)

        def by_module() -> EagerPair:
            if all(run is None or run.by_module for run in eager):
                return eager
            return run_eager_pair(sides, runs, memory_budget=budget, modules=True)

        check = checker((raw_a, raw_b), eager, by_module, self.options, timer, [])

        def prepare_fresh(fresh: tuple[bool, bool]) -> ModelPair:
            return self._prepare(raw_a, raw_b, inputs, timer, fresh)

        # new weights (see check) explain a departing graph: it is not stale
        prepared, result = verified(
            prepared, check, prepare_fresh, _kept_open, self._weights_changed_since
        )
        _trust_faithful(prepared, result)
        return result, eager

    def _weights_changed_since(self, prepared: ModelPair) -> bool:
        """Whether either model's weights are no longer those its graph holds (then a graph
        that departs from its model is explained, see :meth:`check`); with assign_weights
        either side's graph can hold the other's weights: both are looked at."""
        from padiff_ir.exporters import stale_parameters

        sides = zip(
            (prepared.exported_a, prepared.exported_b),
            (self.model_a, self.model_b),
            (self.framework_a, self.framework_b),
        )
        return any(
            framework != "onnx" and bool(stale_parameters(exported, model, framework))
            for exported, model, framework in sides
        )

    def refresh(self) -> None:
        """Forget the prepared graphs: the next check exports (from the cache, with the
        models' current weights) and matches again."""
        self.close()

    def close(self) -> None:
        """Release the onnxruntime sessions."""
        if self._prepared is not None:
            self._prepared.close()
            self._prepared = None

    def __enter__(self) -> Comparison:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "prepared" if self._prepared is not None else "closed"
        if self._unexported is not None:
            state = "compared natively"
        return (
            f"Comparison({self.framework_a} {type(self.model_a).__name__} vs "
            f"{self.framework_b} {type(self.model_b).__name__}, {state})"
        )


def _kept_open(prepared: ModelPair) -> None:
    """A comparison's replaced pair is closed by :meth:`Comparison._prepare`."""


def _trust_faithful(prepared: ModelPair, result: MatchResult) -> None:
    """A side's graph is held from one check to the next: one that reproduced its model is
    verified again at a later check (the model may change meanwhile); one exported now that
    still departs is the exporter's doing and is not exported again at every check."""
    faithful = [not unfaithful(result.export_fidelity.get(side)) for side in "ab"]
    prepared.cached = (prepared.cached[0] or faithful[0], prepared.cached[1] or faithful[1])


def comparison_progress(options: MatchOptions) -> Callable[[int, int | None], None]:
    """A per-batch progress call built on ``options.progress`` (does nothing without it)."""

    def report(index: int, total: int | None) -> None:
        if options.progress is not None:
            options.progress(f"batch {index + 1}/{total if total is not None else '?'}")

    return report
