"""A paddle layer's saved PIR program, and which sublayer made each ONNX node paddle2onnx
converted from it.

paddle2onnx names the final output of the k-th PIR op ``pd_op.X`` as ``p2o.pd_op.X.k.i``: the
op's ``struct_name`` then names the sublayer (through the
:class:`~padiff_ir.exporters._paddle_scopes.CallRecorder` of the trace), and a ``fetch`` op's
output names the sublayer whose value it fetches.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from padiff_ir.exporters._paddle_scopes import CallRecorder

if TYPE_CHECKING:
    import onnx

__all__ = ["ProgramOp", "read_program", "scopes_from_program"]

_P2O_NAME = re.compile(r"^p2o\.pd_op\.(\w+)\.(\d+)\.\d+$")


@dataclass(frozen=True)
class ProgramOp:
    """One top-level op of a PIR program: its kind (``matmul``), the sublayer's struct name,
    the ids of the values it reads and makes, and for a ``fetch`` op the output's name."""

    name: str
    struct_name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    fetch_name: str | None


def _attr(op: dict, key: str) -> Any:
    for entry in op.get("A", []):
        if isinstance(entry, dict) and entry.get("N") == key:
            return entry.get("AT", {}).get("D")
    return None


def _value_ids(entries: Any) -> tuple[int, ...]:
    if isinstance(entries, dict):
        entries = [entries]
    return tuple(e["%"] for e in entries or () if isinstance(e, dict) and "%" in e)


def read_program(path: str) -> list[ProgramOp]:
    """Top-level ops of a PIR program saved as JSON, in program order."""
    with open(path, encoding="utf-8") as handle:
        program = json.load(handle)
    ops = []
    for op in program["program"]["regions"][0]["blocks"][0]["ops"]:
        kind = op.get("#", "")
        name = kind.split(".", 1)[1] if "." in kind else kind
        ops.append(
            ProgramOp(
                name=name,
                struct_name=_attr(op, "struct_name") or "",
                inputs=_value_ids(op.get("I")),
                outputs=_value_ids(op.get("O")),
                fetch_name=_attr(op, "name") if name == "fetch" else None,
            )
        )
    return ops


def scopes_from_program(
    onnx_model: onnx.ModelProto,
    ops: list[ProgramOp],
    recorder: CallRecorder,
    calls: dict[str, int] | None = None,
) -> dict[str, str | None]:
    """Node name -> sublayer path (``None`` when unknown); ``calls`` receives node name ->
    which call of a sublayer called several times made the node."""
    by_kind: dict[tuple[str, int], ProgramOp] = {}
    counters: dict[str, int] = {}
    producer: dict[int, ProgramOp] = {}
    fetch_struct: dict[str, str] = {}
    for op in ops:
        k = counters.get(op.name, 0)
        counters[op.name] = k + 1
        by_kind[(op.name, k)] = op
        for value in op.outputs:
            producer[value] = op
    for op in ops:
        if op.fetch_name and op.inputs and op.inputs[0] in producer:
            fetch_struct[op.fetch_name] = producer[op.inputs[0]].struct_name
    scopes: dict[str, str | None] = {}
    for node in onnx_model.graph.node:
        scope = None
        for out in node.output:
            match = _P2O_NAME.match(out)
            if match:
                program_op = by_kind.get((match.group(1), int(match.group(2))))
                if program_op is not None:
                    scope = recorder.layer_path(program_op.struct_name)
                    call = recorder.layer_call(program_op.struct_name)
                    if calls is not None and call is not None:
                        calls[node.name] = call
                    break
            elif out in fetch_struct:
                scope = recorder.layer_path(fetch_struct[out])
                call = recorder.layer_call(fetch_struct[out])
                if calls is not None and call is not None:
                    calls[node.name] = call
                break
        scopes[node.name] = scope
    return scopes
