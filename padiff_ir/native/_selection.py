"""Which layer pairs :func:`~padiff_ir.native.auto_diff` compares: its black and white lists.

A selector is a module path of either model, a class name, a class or a module object; a pair
is selected unless it or a module containing it (on either side) matches the blacklist, and,
when there is a whitelist, only if it or a module containing it matches the whitelist.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from padiff_ir._paths import ancestors
from padiff_ir.hints import Module

__all__ = ["Selector", "selection"]

logger = logging.getLogger(__name__)

Selector = str | type | Any
"""What ``auto_diff``'s ``blacklist`` / ``whitelist`` name a layer by: a module path of either
model, a class name, a class or the module object itself."""


def selection(
    blacklist: list[Selector],
    whitelist: list[Selector],
    modules_a: dict[str, Module],
    modules_b: dict[str, Module],
) -> Callable[[str, str], bool]:
    """``select(path_a, path_b)``: whether a pair is compared under the black/white lists."""

    def matches(selector: Selector, path: str, module: Module) -> bool:
        if isinstance(selector, str):
            return selector == path or selector == type(module).__name__
        if isinstance(selector, type):
            return isinstance(module, selector)
        return selector is module

    def chain(path: str, modules: dict[str, Module]) -> list[tuple[str, Any]]:
        return [(p, modules[p]) for p in (path, *ancestors(path)) if p and p in modules]

    def hit(selectors: list[Selector], path_a: str, path_b: str) -> bool:
        items = chain(path_a, modules_a) + chain(path_b, modules_b)
        return any(matches(s, p, m) for s in selectors for p, m in items)

    def select(path_a: str, path_b: str) -> bool:
        if blacklist and hit(blacklist, path_a, path_b):
            return False
        return not whitelist or hit(whitelist, path_a, path_b)

    return select
