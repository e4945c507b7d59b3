"""``auto_diff``: train two models side by side and say where they first stop agreeing.

For each step (``steps`` on the same inputs; call again with ``auto_init=False`` to walk a
dataloader) :func:`auto_diff`:

1. compares the two sides' inputs (a data-pipeline difference is reported before any layer);
2. runs model A, then model B, with hooks on every matched layer pair
   (:mod:`padiff_ir.native._hooks`): layer outputs compared on the fly;
3. compares the running statistics the forward updated, then the two losses (``loss_fn``, or
   the mean of the outputs);
4. runs both backward passes: the gradients reaching each layer's output, the gradients each
   layer passes to its inputs, then every parameter's gradient through the parameter map
   (a transposed Linear, a split qkv...);
5. steps both optimizers and compares every weight and, where both expose it, the optimizer
   state (momentum, Adam moments).

Layer and parameter pairs come from :func:`padiff_ir.pairing.graphs.pair_models`, the matching
every entry point uses (``match_graphs`` on the ONNX graphs when both models export, on native
traces otherwise: models that cannot be exported are compared all the same), with the user's
:class:`~padiff_ir.pairing.layer_map.LayerMap` for corrections. Settings that differ between
matched layers (BatchNorm momentum conventions, epsilons, dropout rates) and between the two
optimizers are listed before any number. Dropout-like layers are put in eval mode for the call,
with a warning. The models' train/eval flags are restored and every hook is removed, also when
the call raises; weights change only through ``auto_init`` and the optimizer steps.

This module is the entry point; the call itself is a :class:`~padiff_ir.native._run.TrainingRun`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from padiff_ir.frameworks import preserved_global_rng
from padiff_ir.hints import Inputs, Model
from padiff_ir.matching.types import Matching
from padiff_ir.metrics import Tolerance, tolerance_of
from padiff_ir.native._blas import single_threaded_blas
from padiff_ir.native._noise import measured_call
from padiff_ir.native._run import TrainingRun
from padiff_ir.native._selection import Selector
from padiff_ir.native.diff_result import DiffResult
from padiff_ir.pairing.layer_map import LayerMap
from padiff_ir.pairing.noise_floor import auto_tolerance

__all__ = ["auto_diff"]

logger = logging.getLogger(__name__)


def auto_diff(
    model_a: Model,
    model_b: Model,
    inputs: Inputs,
    *,
    auto_init: bool = True,
    layer_map: LayerMap | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    compare_mode: str | None = None,
    single_step: bool = False,
    diff_phase: str = "both",
    loss_fn: Sequence[Callable[[Any], Any]] | None = None,
    optimizer: Sequence[Any] | None = None,
    steps: int = 1,
    blacklist: Iterable[Selector] = (),
    whitelist: Iterable[Selector] = (),
    matching: Matching | None = None,
    disable_random_layers: bool = True,
    workers: int | None = None,
    tolerance: Tolerance | str | None = None,
) -> DiffResult:
    """Compare two models (torch and/or paddle) through forward, loss, backward and updates.

    Args:
        model_a: the reference model (torch module, paddle layer or ``create_model`` wrapper).
        model_b: the model being aligned with it.
        inputs: inputs for both (numpy arrays or tensors; one array, a sequence or a dict by
            argument name), or a per-framework pair ``(inputs_a, inputs_b)`` in either order.
        auto_init: copy A's weights into B first (:func:`~padiff_ir.pairing.assign_weight`).
            Pass ``False`` when the weights are already aligned (every call after the first
            one in a dataloader loop); step 0 then checks that they are.
        layer_map: corrections to the automatic layer matching.
        tolerance: how close is close enough. By default (``"auto"``) every layer output,
            gradient, parameter gradient, running statistic, post-step weight, optimizer
            state and the loss is judged against its own measured noise (A's rounding in the
            lower precision of the two models, and B's where B rounds more, against float64
            shadows run through the same steps, :mod:`padiff_ir.native._noise`); what has
            no floor (the inputs; weights and states where A's optimizer cannot be copied)
            keeps the fixed tolerance below.
            ``"fixed"``, a :class:`~padiff_ir.metrics.Tolerance` (the three below as one
            object), or any of ``atol`` / ``rtol`` / ``compare_mode`` passed: fixed bounds
            instead, as PaDiff judges (PaDiff's flows pass them, and get PaDiff's verdicts).
        atol / rtol / compare_mode: the fixed tolerance, in PaDiff's modes ``"mean"`` (means
            within ``atol + rtol * |mean_b|``), ``"abs_mean"``, ``"strict"``. Each one not
            passed is PaDiff's default (``0``, ``1e-7``, ``mean``); :func:`~padiff_ir.match`
            judges every intermediate element by element (``1e-5``, ``1e-5``, ``strict``)
            and says why in its docstring.
        single_step: feed each B layer A's layer inputs (forward) and A's output gradients
            (backward) so each layer's own error is measured; no optimizer step, one step.
        diff_phase: ``"forward"``, ``"backward"`` (single step only; ``"both"`` otherwise) or
            ``"both"``.
        loss_fn: ``[loss for A, loss for B]``, one-argument callables taking the model output
            and returning a scalar; PaDiff's ``[paddle_loss, torch_loss]`` is put in model order
            when the functions show their framework. Default: the mean of the outputs.
        optimizer: ``[for A, for B]``: optimizer instances, zero-argument step functions (which
            update the weights themselves, as in PaDiff) or factories returning an optimizer;
            reordered by type like ``loss_fn``.
        steps: training steps on the same inputs (needs ``optimizer``).
        blacklist / whitelist: layers left out of (or the only ones in) the per-layer
            comparisons, with everything inside them: module paths of either model, class
            names, classes or module objects.
        matching: a ready :class:`~padiff_ir.matching.types.Matching`; by default
            :func:`~padiff_ir.pairing.graphs.pair_models` gives the one ``match`` and
            ``auto_layer_map`` give for these models and inputs.
        disable_random_layers: put dropout-like layers in eval mode for the call (with a
            warning); ``False`` leaves them random.
        workers: threads running the comparisons (default: the CPU count, at most 8; 1 runs
            them inline).

    Returns:
        A :class:`~padiff_ir.native.DiffResult`: ``bool(result)`` is the verdict,
        ``result.first_difference`` the stage, step and layer where the models first disagree.

    Raises:
        AutoDiffError: unusable arguments (a loss failing on its model's output names the fix).
        OptionError: a tolerance it cannot take, or ``tolerance`` and ``atol`` / ``rtol`` /
            ``compare_mode`` both given and different.
        MatchError / WeightAssignError: the models cannot be matched or initialised.

    Example:
        >>> import numpy as np, paddle, torch
        >>> t = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh())
        >>> p = paddle.nn.Sequential(paddle.nn.Linear(4, 3), paddle.nn.Tanh())
        >>> x = np.random.default_rng(0).standard_normal((2, 4)).astype("float32")
        >>> result = auto_diff(t, p, {"input": x}, atol=1e-6, rtol=1e-5,
        ...                    optimizer=[torch.optim.SGD(t.parameters(), lr=0.1),
        ...                               paddle.optimizer.SGD(0.1, parameters=p.parameters())])
        >>> bool(result), result.first_difference is None
        (True, True)
    """
    started = time.perf_counter()
    measured = auto_tolerance(tolerance, atol, rtol, compare_mode)
    fixed = tolerance if isinstance(tolerance, Tolerance) else None
    tolerance = tolerance_of(fixed, atol, rtol, compare_mode, defaults=_PADIFF_DEFAULTS)
    run = TrainingRun.prepare(
        model_a,
        model_b,
        inputs,
        auto_init=auto_init,
        layer_map=LayerMap.coerce(layer_map),
        tolerance=tolerance,
        single_step=single_step,
        diff_phase=diff_phase,
        loss_fn=loss_fn,
        optimizer=optimizer,
        steps=steps,
        blacklist=blacklist,
        whitelist=whitelist,
        matching=matching,
        disable_random_layers=disable_random_layers,
        workers=workers,
    )
    with single_threaded_blas(), preserved_global_rng():  # the user's forward may draw from them
        result = measured_call(run) if measured else run.execute()
    result.timings["total"] = time.perf_counter() - started
    log = logger.info if result.ok else logger.warning
    log(
        "auto_diff: %s",
        "aligned"
        if result.ok
        else (result.first_difference.message if result.first_difference else "diverged"),
    )
    return result


_PADIFF_DEFAULTS = Tolerance(atol=0.0, rtol=1e-7, mode="mean")
"""``auto_diff``'s default tolerance: PaDiff's."""
