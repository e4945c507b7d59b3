"""Why an export failed, in the words of the failure itself, not a guess.

:func:`torch_failure` reads the cause chain of a torch exporter failure and names its kind (a
data-dependent branch, an op with no ONNX function, an output the exporter cannot flatten);
:func:`paddle_trace_failure` reads paddle's dy2static error ("In transformed code: ...") for
the innermost error and the line of the model's source it points at.
"""

from __future__ import annotations

import re

__all__ = ["paddle_trace_failure", "torch_failure"]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_FRAME = re.compile(r'^\s*File "([^"]+)", line (\d+), in (\w+)')
_ERROR_LINE = re.compile(r"^\s*(\w+(?:Error|Exception|Exit)): (.+)$")

_TORCH_KINDS = (
    (
        ("GuardOnDataDependentSymNode", "data-dependent expression"),
        "its control flow depends on tensor values (data-dependent), which a static graph "
        "cannot hold",
    ),
    (
        ("No ONNX function found for",),
        "an op it calls has no ONNX conversion",
    ),
    (
        ("which is not a known type", "register a pytree"),
        "it returns or takes an object that is no structure of tensors",
    ),
)


def torch_failure(err: BaseException) -> tuple[str, str]:
    """The most telling lines of a torch exporter failure (its cause chain, without colour
    codes) and, where the chain says, what kind of failure it is ("" where it does not)."""
    lines: list[str] = []
    texts: list[str] = []
    current: BaseException | None = err
    while current is not None:
        text = _ANSI.sub("", str(current)).strip()
        texts.append(text)
        if len(lines) < 3:
            first = text.splitlines()[0] if text else ""
            lines.append(f"{type(current).__name__}: {first}")
        current = current.__cause__
    everything = "\n".join(texts)
    kind = next(
        (what for needles, what in _TORCH_KINDS if any(n in everything for n in needles)), ""
    )
    return " <- ".join(lines), kind


def _short_path(path: str) -> str:
    """A source path from its package on (``.../site-packages/pkg/mod.py`` -> ``pkg/mod.py``)."""
    for marker in ("site-packages/", "dist-packages/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def paddle_trace_failure(err: BaseException) -> str:
    """The innermost error of a dy2static failure and where in the model's code it happened:
    ``AssertionError: We only support 'view()' in dynamic graph mode ... (at
    qwen3_moe/modeling.py:337 in forward: hidden_states.view(...))``; the error's first line
    where it is no dy2static report."""
    text = str(err).strip()
    lines = text.splitlines()
    if not lines or "In transformed code" not in lines[0]:
        first = lines[0] if lines else ""
        return f"{type(err).__name__}: {first}"
    errors = [m for m in map(_ERROR_LINE.match, reversed(lines)) if m]
    inner = (
        f"{errors[0].group(1)}: {errors[0].group(2).strip()}"
        if errors
        else f"{type(err).__name__}: {lines[-1].strip()}"
    )
    where = ""
    for index, line in enumerate(lines):
        frame = _FRAME.match(line)
        if frame and "/paddle/" not in frame.group(1):
            after = lines[index + 1 : index + 6]
            here = next((i for i, text in enumerate(after) if "<--- HERE" in text), None)
            code = (after[here - 1] if here else after[0] if after else "").strip()
            path = _short_path(frame.group(1))
            where = f"{path}:{frame.group(2)} in {frame.group(3)}" + (f": {code}" if code else "")
            if here is not None:
                break
    return f"{inner} (at {where})" if where else inner
