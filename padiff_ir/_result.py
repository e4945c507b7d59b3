"""What every top-level result shares: a verdict, PaDiff-style ``== False``, JSON, HTML.

Results are data and know nothing of their presentation: the renderers live in
:mod:`padiff_ir.report` (floor 7), which this ground-floor module never imports at import time.
:func:`renderer` looks a renderer up by name when a result is asked to draw itself
(:meth:`VerdictResult.to_html`, ``MatchResult.to_model_explorer``), so the comparison code that
builds results imports no report code.
"""

from __future__ import annotations

import importlib
import json
import logging
import math
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar, TypeVar

__all__ = [
    "RENDERERS_MODULE",
    "RESULT_KINDS",
    "TextEnum",
    "Verdict",
    "VerdictResult",
    "json_safe",
    "read_json_file",
    "renderer",
]

logger = logging.getLogger(__name__)

T = TypeVar("T", bound="VerdictResult")


class TextEnum(str, Enum):
    """An enum whose members are their string values: they compare equal to the old strings,
    print as them and go into JSON as them (``class Status(TextEnum)``).

    Example:
        >>> class Colour(TextEnum):
        ...     RED = "red"
        >>> Colour.RED == "red", str(Colour.RED), f"{Colour.RED}", Colour("red") is Colour.RED
        (True, 'red', 'red', True)
        >>> json.dumps({"colour": Colour.RED})
        '{"colour": "red"}'
    """

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, format_spec: str) -> str:
        return format(str(self.value), format_spec)


class Verdict(TextEnum):
    """The verdict of a whole result, as the summary and the report say it."""

    ALIGNED = "aligned"
    DIVERGED = "diverged"

    @classmethod
    def of(cls, ok: bool) -> Verdict:
        """``ALIGNED`` when ``ok``, else ``DIVERGED``."""
        return cls.ALIGNED if ok else cls.DIVERGED


#: The module whose functions render a result (HTML, Model Explorer); imported on first use.
RENDERERS_MODULE = "padiff_ir.report"


def renderer(name: str) -> Callable[..., Any]:
    """The report function ``name`` (``"render_html"``, ``"to_model_explorer"``), imported lazily.

    Raises:
        AttributeError: the report package has no function of that name.
    """
    module = importlib.import_module(RENDERERS_MODULE)
    function = getattr(module, name, None)
    if not callable(function):
        raise AttributeError(f"{RENDERERS_MODULE} has no renderer {name!r}")
    logger.debug("rendering with %s.%s", RENDERERS_MODULE, name)
    return function


#: The ``kind`` of each result's JSON -> the class that reads it.
RESULT_KINDS = {"match": "MatchResult", "auto_diff": "DiffResult"}


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float written as a string (``"nan"``, ``"inf"``,
    ``"-inf"``, as :class:`~padiff_ir.metrics.TensorMetrics` reads them back): strict JSON has
    no NaN or Infinity.

    Example:
        >>> json_safe({"max_abs": float("inf"), "values": [1.0, float("nan")]})
        {'max_abs': 'inf', 'values': [1.0, 'nan']}
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not strict JSON")


def read_json_file(path: str | Path, what: str) -> Any:
    """The JSON value in ``path``.

    Raises:
        FileFormatError: naming the file and ``what`` it should hold, when the file is missing,
            unreadable, not UTF-8 text or not (strict) JSON.
    """
    from padiff_ir.errors import FileFormatError

    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise FileFormatError(
            f"{path}: no such file; pass the path of {what}", path=str(path)
        ) from err
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise FileFormatError(
            f"{path}: cannot be read as text ({reason}); pass the path of {what}", path=str(path)
        ) from err
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError as err:
        raise FileFormatError(
            f"{path}: is not valid JSON ({err}); it should hold {what}", path=str(path)
        ) from err


class VerdictResult:
    """Mixin for result dataclasses with an ``ok`` field, ``to_dict`` and ``from_dict``.

    ``bool(result)`` is the verdict and ``result == False`` works as in PaDiff's examples
    (``if result == False: break``); two results are equal when their data are.
    """

    ok: bool
    #: the ``kind`` its JSON carries (``"match"``, ``"auto_diff"``); checked by :meth:`load`
    kind: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover - provided by the dataclass
        raise NotImplementedError

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:  # pragma: no cover
        raise NotImplementedError

    def __bool__(self) -> bool:
        return self.ok

    def __eq__(self, other: object) -> bool:
        if isinstance(other, bool):
            return self.ok is other
        if not isinstance(other, type(self)):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    #: the module whose ``render_summary(result, width=, color=)`` writes the terminal summary
    summary_module: ClassVar[str] = ""

    def summary(self, *, width: int | None = None, color: bool = False) -> str:
        """The terminal summary, ``width`` columns wide (default: the terminal's), with ANSI
        colours when ``color``; ``str(result)`` is the plain one."""
        module = importlib.import_module(self.summary_module)
        text: str = module.render_summary(self, width=width, color=color)
        return text

    def __str__(self) -> str:
        return self.summary()

    def to_json(self, path: str | Path | None = None, *, indent: int | None = 1) -> str:
        """The result as strict JSON (NaN and Inf written as ``"nan"``, ``"inf"``, ``"-inf"``);
        also written to ``path`` when given."""
        text = json.dumps(json_safe(self.to_dict()), indent=indent, allow_nan=False)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    @classmethod
    def load(cls: type[T], path: str | Path) -> T:
        """Read a result saved with :meth:`to_json`.

        Raises:
            FileFormatError: the file is missing, not JSON, a result of another kind or not a
                result at all (the message names the file and what is wrong).
        """
        from padiff_ir.errors import FileFormatError

        what = f"a {cls.__name__} saved with to_json()"
        data = read_json_file(path, what)
        if not isinstance(data, dict):
            raise FileFormatError(
                f"{path}: holds a JSON {type(data).__name__}, not {what}", path=str(path)
            )
        kind = data.get("kind")
        if (cls.kind and kind != cls.kind) or (
            isinstance(kind, str) and RESULT_KINDS.get(kind, cls.__name__) != cls.__name__
        ):
            found = f"a result of kind {kind!r}" if kind else "no result kind"
            raise FileFormatError(
                f"{path}: holds {found}, not {what}"
                + (f" (kind {cls.kind!r})" if cls.kind else ""),
                path=str(path),
            )
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            detail = f"missing key {err}" if isinstance(err, KeyError) else str(err)
            raise FileFormatError(f"{path}: is not {what}: {detail}", path=str(path)) from err

    def to_html(self, path: str | Path, *, title: str | None = None) -> Path:
        """Write the self-contained HTML report (renders from :meth:`to_dict` alone)."""
        return renderer("render_html")(self, path, title=title)
