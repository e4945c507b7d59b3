"""Forward hooks on modules, installed for a block and always removed.

Both frameworks call a pre-hook ``fn(module, args, kwargs)`` and a post-hook
``fn(module, args, output)``; :func:`installed` registers them on the given modules through the
framework's interface and removes every handle in ``finally``, also when the block raises.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from padiff_ir.frameworks._base import Framework

__all__ = ["installed"]

PreHook = Callable[[Any, tuple[Any, ...], dict[str, Any]], Any]
PostHook = Callable[[Any, tuple[Any, ...], Any], Any]


@contextlib.contextmanager
def installed(
    framework: Framework, modules: Iterable[tuple[Any, PreHook | None, PostHook | None]]
) -> Iterator[None]:
    """Register ``(module, pre_hook, post_hook)`` triples (either hook may be ``None``)."""
    handles = []
    try:
        for module, pre, post in modules:
            if pre is not None:
                handles.append(framework.register_pre_hook(module, pre))
            if post is not None:
                handles.append(framework.register_post_hook(module, post))
        yield
    finally:
        for handle in handles:
            handle.remove()
