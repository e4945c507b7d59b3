"""Terminal text with `rich`: the width, whether to colour, tables and wrapped prose.

The summaries of :func:`~padiff_ir.match` and :func:`~padiff_ir.auto_diff` are built from
:class:`Column` tables and wrapped lines and rendered by :func:`render`: plain, deterministic
text by default (what ``str(result)`` returns and tests assert on), ANSI colours only when the
caller asks (the CLI does on a terminal, see :func:`wants_color`). ``rich`` is imported when
something is rendered, not by ``import padiff_ir``.

Example:
    >>> columns = (Column("name", flexible=True), Column("value", width=6, justify="right"))
    >>> text = render([line("two rows:"), table(columns, [("a", "1.0"), ("b", "2.5")], 20)], 20)
    >>> print(text)
    two rows:
    name           value
    a                1.0
    b                2.5
"""

from __future__ import annotations

import io
import os
import re
import shutil
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table
    from rich.text import Text

__all__ = [
    "DEFAULT_WIDTH",
    "MIN_WIDTH",
    "Cell",
    "Column",
    "line",
    "render",
    "table",
    "terminal_width",
    "wants_color",
    "wrapped",
]

_ANSI_CODE = re.compile(r"\x1b\[[0-9;]*m")
_TAIL = re.compile(r"(?:\s|\x1b\[[0-9;]*m)+$")  # trailing spaces and colour codes
DEFAULT_WIDTH = 100  # when the terminal's width is unknown
MIN_WIDTH = 60

Cell = str | tuple[str, str]
"""A table cell: its text, or ``(text, style)`` (a rich style such as ``"bold red"``)."""


def terminal_width() -> int:
    """The terminal's width in columns (``COLUMNS`` first; 100 when unknown; at least 60)."""
    return max(MIN_WIDTH, shutil.get_terminal_size(fallback=(DEFAULT_WIDTH, 24)).columns)


def wants_color(stream: IO[str]) -> bool:
    """Whether text written to ``stream`` should carry colours: a terminal, and neither
    ``NO_COLOR`` (https://no-color.org) nor ``TERM=dumb`` set."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())


@dataclass(frozen=True)
class Column:
    """A table column.

    Attributes:
        header: its title.
        width: its width in characters (the cells are cut with an ellipsis to fit).
        justify: ``"left"`` or ``"right"``.
        flexible: the column takes the room the fixed ones leave (``width`` is then its least).
    """

    header: str
    width: int = 8
    justify: Literal["left", "right"] = "left"
    flexible: bool = False


def line(text: str, style: str = "", *, spans: Sequence[tuple[str, str]] = ()) -> Text:
    """One line of text, kept whole (never wrapped nor cut); ``spans`` style the first
    occurrence of each ``(substring, style)``."""
    from rich.text import Text

    result = Text(text, style=style, no_wrap=True, overflow="ignore")
    for part, part_style in spans:
        start = text.find(part)
        if part and start >= 0:
            result.stylize(part_style, start, start + len(part))
    return result


def wrapped(
    text: str, width: int, indent: str = "", more: str = "      ", style: str = ""
) -> list[Text]:
    """``text`` wrapped to ``width`` (first line ``indent``, the others ``indent + more``);
    a token longer than a line (a long module path) is kept whole."""
    lines = textwrap.wrap(
        text,
        width,
        initial_indent=indent,
        subsequent_indent=indent + more,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [indent]
    return [line(each, style) for each in lines]


def table(columns: Sequence[Column], rows: Iterable[Sequence[Cell]], width: int) -> Table:
    """A borderless table exactly ``width`` wide: fixed columns at their width, the flexible
    ones sharing the rest; cells too long are cut with an ellipsis."""
    from rich.table import Table

    grid = Table(
        box=None,
        pad_edge=False,
        show_edge=False,
        expand=True,
        width=width,
        padding=(0, 1),
        header_style="bold",
        show_header=True,
    )
    for column in columns:
        grid.add_column(
            column.header,
            justify=column.justify,
            no_wrap=True,
            overflow="ellipsis",
            ratio=1 if column.flexible else None,
            min_width=column.width if column.flexible else None,
            width=None if column.flexible else column.width,
        )
    for row in rows:
        grid.add_row(*(_cell(cell) for cell in row))
    return grid


def _cell(cell: Cell) -> Text:
    from rich.text import Text

    if isinstance(cell, tuple):
        return Text(cell[0], style=cell[1])
    return Text(cell)


def render(parts: Iterable[RenderableType], width: int, *, color: bool = False) -> str:
    """``parts`` (lines, tables) one under another as text ``width`` columns wide; ANSI
    colours only with ``color``. Trailing spaces are removed from every line."""
    from rich.console import Console

    out = io.StringIO()
    console = Console(
        file=out,
        width=width,
        force_terminal=color,
        color_system="standard" if color else None,
        no_color=not color,
        highlight=False,
        markup=False,
        emoji=False,
        soft_wrap=False,
        legacy_windows=False,
    )
    for part in parts:
        console.print(part, crop=False)
    lines = out.getvalue().rstrip("\n").split("\n")
    return "\n".join(_rstrip(text) for text in lines)


def _rstrip(text: str) -> str:
    """``text`` without trailing spaces, keeping the colour codes among them."""
    tail = _TAIL.search(text)
    if tail is None:
        return text
    return text[: tail.start()] + "".join(_ANSI_CODE.findall(tail.group(0)))
