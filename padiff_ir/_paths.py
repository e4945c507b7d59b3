"""Dotted module paths: containment, parents, joining.

A module path names a submodule by its attribute chain from the model (``"encoder.layers.0"``);
the model itself is the root, ``""``, which contains every path. A path is within itself.
Parameter and buffer names are paths too (``"encoder.fc.weight"``): their owner is their parent.

This module is floor 0: it imports nothing of the package.

Examples:
    >>> within("encoder.fc", "encoder")
    True
    >>> within("encoder2", "encoder")
    False
    >>> parent("encoder.fc"), parent("fc"), parent("")
    ('encoder', '', None)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

__all__ = [
    "ancestors",
    "call_site",
    "common_ancestor",
    "depth",
    "join",
    "leaf",
    "owner",
    "parent",
    "split_call_site",
    "strictly_within",
    "within",
    "within_any",
]


def within(path: str, ancestor: str) -> bool:
    """Whether ``path`` is ``ancestor`` or lies below it (everything lies within the root ``""``).

    Examples:
        >>> within("a.b", "a"), within("a", "a"), within("a", ""), within("", "")
        (True, True, True, True)
        >>> within("ab", "a"), within("a", "a.b"), within("", "a")
        (False, False, False)
    """
    return ancestor == "" or path == ancestor or path.startswith(ancestor + ".")


def strictly_within(path: str, ancestor: str) -> bool:
    """Whether ``path`` lies below ``ancestor`` and is not ``ancestor`` itself.

    Examples:
        >>> strictly_within("a.b", "a"), strictly_within("a", "a"), strictly_within("a", "")
        (True, False, True)
        >>> strictly_within("", "")
        False
    """
    return path != ancestor and within(path, ancestor)


def within_any(path: str, ancestors: Iterable[str]) -> bool:
    """Whether ``path`` is within one of ``ancestors`` (never, when there are none).

    Examples:
        >>> within_any("a.b", ["x", "a"]), within_any("a.b", []), within_any("a.b", [""])
        (True, False, True)
    """
    return any(within(path, a) for a in ancestors)


def parent(path: str) -> str | None:
    """The module directly containing ``path``; ``""`` for a top-level name, None for the root.

    Examples:
        >>> parent("a.b.c"), parent("a"), parent("")
        ('a.b', '', None)
    """
    if path == "":
        return None
    return path.rpartition(".")[0]


def owner(name: str) -> str:
    """The module holding the parameter, buffer or submodule ``name`` (``""``: the model).

    Examples:
        >>> owner("encoder.fc.weight"), owner("weight")
        ('encoder.fc', '')
    """
    return name.rpartition(".")[0]


def ancestors(path: str) -> Iterator[str]:
    """The modules containing ``path``, nearest first, ending with the root (none for the root).

    Examples:
        >>> list(ancestors("a.b.c")), list(ancestors("a")), list(ancestors(""))
        (['a.b', 'a', ''], [''], [])
    """
    node = parent(path)
    while node is not None:
        yield node
        node = parent(node)


def common_ancestor(paths: Iterable[str]) -> str:
    """The deepest module containing every path (a path contains itself; ``""`` for none).

    Examples:
        >>> common_ancestor(["attn.q_proj", "attn.k_proj", "attn.v_proj"])
        'attn'
        >>> common_ancestor(["fc1", "body.fc2"]), common_ancestor(["a.b"]), common_ancestor([])
        ('', 'a.b', '')
    """
    common: list[str] | None = None
    for path in paths:
        parts = path.split(".") if path else []
        if common is None:
            common = parts
            continue
        n = 0
        while n < min(len(common), len(parts)) and common[n] == parts[n]:
            n += 1
        common = common[:n]
    return ".".join(common or [])


def depth(path: str) -> int:
    """How many names ``path`` has: 0 for the root.

    Examples:
        >>> depth(""), depth("a"), depth("a.b.c")
        (0, 1, 3)
    """
    return 0 if path == "" else path.count(".") + 1


def join(prefix: str, name: str) -> str:
    """``name`` below the module ``prefix`` (``name`` itself below the root).

    Examples:
        >>> join("encoder", "fc"), join("", "fc")
        ('encoder.fc', 'fc')
    """
    return f"{prefix}.{name}" if prefix else name


def leaf(path: str) -> str:
    """The last name of ``path`` (``""`` for the root).

    Examples:
        >>> leaf("encoder.fc.weight"), leaf("weight"), leaf("")
        ('weight', 'weight', '')
    """
    return path.rpartition(".")[2]


def call_site(path: str, call: int | None) -> str:
    """One call of a module called several times: ``pool#2`` is the second call of ``pool``.

    ``call`` counts from 0 (the trace's call index); ``None`` means every call (a module called
    once, or its calls taken together) and gives the path itself.

    Examples:
        >>> call_site("pool", 1), call_site("pool", None), call_site("", 0)
        ('pool#2', 'pool', '<root>#1')
    """
    if call is None:
        return path
    return f"{path or '<root>'}#{call + 1}"


def split_call_site(site: str) -> tuple[str, int | None]:
    """The module path and call index (from 0) of a call site; ``(site, None)`` for a path.

    Examples:
        >>> split_call_site("blocks.0.pool#3"), split_call_site("fc"), split_call_site("<root>#1")
        (('blocks.0.pool', 2), ('fc', None), ('', 0))
    """
    path, sep, number = site.rpartition("#")
    if not sep or not number.isdigit() or int(number) < 1:
        return site, None
    return ("" if path == "<root>" else path), int(number) - 1


def layer_pattern(path: str) -> str:
    """``path`` with its layer indices as ``*``: the layers of a stack share one pattern.

    Examples:
        >>> layer_pattern("model.layers.12.self_attn"), layer_pattern("blocks.0")
        ('model.layers.*.self_attn', 'blocks.*')
    """
    return re.sub(r"(^|\.)\d+(?=\.|$)", r"\1*", path)
