"""Assertions for the user's own test suite.

Example (pytest)::

    import padiff_ir.testing
    from padiff_ir.zoo import get_pair

    def test_port_matches_the_reference():
        pair = get_pair("mlp")
        padiff_ir.testing.assert_match(pair.torch_model, pair.paddle_model, pair.inputs)
"""

from __future__ import annotations

import logging
from typing import Any

from padiff_ir.hints import Inputs, Model

__all__ = ["assert_match"]

logger = logging.getLogger(__name__)


def assert_match(model_a: Model, model_b: Model, inputs: Inputs, **match_kwargs: Any) -> Any:
    """Assert that two models compute the same thing (:func:`padiff_ir.match`).

    Args:
        model_a, model_b, inputs: as for :func:`padiff_ir.match` (A is the reference).
        **match_kwargs: any keyword argument of :func:`padiff_ir.match` (``atol``, ``rtol``,
            ``compare_mode``, ``tolerances``, ``layer_map``...).

    Returns:
        the :class:`~padiff_ir.compare.MatchResult` when the models agree.

    Raises:
        AssertionError: the models diverge; its message is the full summary (the first
            divergence, each culprit with its explanation).
        PadiffError: the comparison could not be made (bad options, inputs, exports), as
            raised by :func:`padiff_ir.match`.

    Example:
        >>> from padiff_ir.zoo import get_pair
        >>> pair = get_pair("mlp")
        >>> bool(assert_match(pair.torch_model, pair.paddle_model, pair.inputs))
        True
    """
    import dataclasses

    from padiff_ir.compare.options import MatchOptions
    from padiff_ir.compare.pipeline import match
    from padiff_ir.errors import OptionError

    accepted = {f.name for f in dataclasses.fields(MatchOptions)}
    unknown = sorted(set(match_kwargs) - accepted)
    if unknown:
        raise OptionError(
            f"assert_match got unknown options {unknown}: it takes the keyword "
            f"arguments of padiff_ir.match ({', '.join(sorted(accepted))})",
            option=unknown[0],
        )
    result = match(model_a, model_b, inputs, MatchOptions(**match_kwargs))
    if not result:
        raise AssertionError(f"the models diverge:\n{result}")
    return result
