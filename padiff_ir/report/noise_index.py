"""A match result's errors in units of its measured noise, for the report's colours.

Under ``tolerance="auto"`` (``MatchResult.noise``) the report colours every module and op by
how far its error is from its noise, not by the error's size: a logit off by 1e-3 in the
thousands is rounding, a normalised activation off by 1e-5 may be a bug. :func:`noise_index`
reads the result's JSON alone:

* a module pair: its outputs' RMSE over their bound (``NoiseFloor.ratio``), and its own
  error's where measured;
* a model output pair: its output floor's ratio;
* an op pair: its largest elementwise difference over the elementwise rounding of the
  innermost module around it that has a floor (``NoiseFloor.peak_bound``: the bound an
  exporter's departure is judged by); a module compared as run (the native fallback) takes
  its module's ratio.

Each ratio has a level: ``ok`` within its noise (ratio <= 1), ``warn`` out of it by up to
:data:`FAR` times, ``fail`` beyond.

Example:
    >>> level(0.4), level(3.0), level(2400.0), level(None)
    ('ok', 'warn', 'fail', '')
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from padiff_ir._paths import ancestors, split_call_site
from padiff_ir.compare.noise_result import NoiseFloor, NoiseVerdict
from padiff_ir.pairing.noise_floor import epsilon_of

__all__ = ["FAR", "level", "noise_index"]

logger = logging.getLogger(__name__)

FAR = 10.0
"""A ratio beyond this many times the noise bound is far out of noise (``fail``)."""


def level(ratio: float | None) -> str:
    """``ok``, ``warn`` or ``fail`` for an error ``ratio`` times its noise bound (``""``:
    not measured)."""
    if ratio is None:
        return ""
    if ratio <= 1.0:
        return "ok"
    return "warn" if ratio <= FAR else "fail"


def _entry(ratio: float | None, own: float | None = None) -> dict[str, Any] | None:
    if ratio is None:
        return None
    out: dict[str, Any] = {"ratio": _finite(ratio), "level": level(ratio)}
    if own is not None:
        out["own"], out["own_level"] = _finite(own), level(own)
    return out


def _finite(value: float) -> float | str:
    return value if math.isfinite(value) else "inf"


def _module_entries(verdict: NoiseVerdict) -> dict[str, dict[str, dict[str, Any]]]:
    """Module path -> its entry, per side; a layer called several times also under its path
    (the worst call)."""
    out: dict[str, dict[str, dict[str, Any]]] = {"a": {}, "b": {}}
    for module in verdict.modules:
        if module.output is None:
            continue
        own = module.own.ratio if module.own is not None else None
        entry: dict[str, Any] = {**(_entry(module.output.ratio, own) or {})}
        for side, site in (("a", module.module_a), ("b", module.module_b)):
            out[side][site] = entry
            path = split_call_site(site)[0]
            known = out[side].get(path)
            if known is None or _ratio(known) < module.output.ratio:
                out[side][path] = entry
    return out


def _ratio(entry: Mapping[str, Any]) -> float:
    value = entry["ratio"]
    return math.inf if value == "inf" else float(value)


def _pair_entry(
    pair: Mapping[str, Any], floors: Mapping[str, NoiseFloor], verdict: NoiseVerdict
) -> dict[str, Any] | None:
    """One op pair against the elementwise rounding of its innermost measured module."""
    module = str(pair.get("module_a", ""))
    floor = floors.get(module)
    if floor is not None and "eager-module" in pair.get("evidence", ()):
        return _entry(floor.ratio)  # a module's outputs as run: the module's own judgment
    path = split_call_site(module)[0]
    for enclosing in (module, path, *ancestors(path)):
        floor = floors.get(enclosing)
        if floor is not None:
            break
    if floor is None:
        return None
    max_abs = (pair.get("metrics") or {}).get("max_abs")
    if not isinstance(max_abs, (int, float)):
        return _entry(math.inf)  # "nan" / "inf": beyond any noise
    bound = floor.peak_bound(verdict.multiplier, epsilon_of(verdict.dtype))
    if bound <= 0:
        return _entry(0.0 if max_abs == 0 else math.inf)
    return _entry(float(max_abs) / bound)


def noise_index(data: Mapping[str, Any]) -> dict[str, Any] | None:
    """The report's noise colours of a match result's JSON (None without ``noise``)."""
    raw = data.get("noise")
    if not raw:
        return None
    verdict = NoiseVerdict.from_dict(dict(raw))
    floors = {m.module_a: m.output for m in verdict.modules if m.output is not None}
    pairs = [_pair_entry(pair, floors, verdict) for pair in data.get("pairs", ())]
    outputs = data.get("outputs", ())
    for index, floor in enumerate(verdict.outputs):  # a model output: its own floor
        if index < len(outputs):
            position = _pair_position(data, outputs[index])
            if position is not None:
                pairs[position] = _entry(floor.ratio)
    logger.debug("noise colours: %d module pairs, %d op pairs", len(floors), len(pairs))
    return {
        "modules": _module_entries(verdict),
        "pairs": pairs,
        "outputs": [_entry(f.ratio) for f in verdict.outputs],
        "far": FAR,
    }


def _pair_position(data: Mapping[str, Any], output: Mapping[str, Any]) -> int | None:
    """Where a model output pair sits among the result's pairs (None: not among them)."""
    names = (list(output.get("a", ())), list(output.get("b", ())))
    for position, pair in enumerate(data.get("pairs", ())):
        if (list(pair.get("a", ())), list(pair.get("b", ()))) == names:
            return position
    return None
