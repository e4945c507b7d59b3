"""Exception tree of padiff-ir.

Every error the library raises on purpose derives from :class:`PadiffError`. Messages name the
offending model, node, module or tensor and say what to do about it.
"""

from __future__ import annotations

__all__ = [
    "AutoDiffError",
    "DtypeKernelError",
    "ExecutionError",
    "ExportError",
    "FileFormatError",
    "InputError",
    "LayoutError",
    "IRError",
    "MatchError",
    "ModelTypeError",
    "OptionError",
    "PadiffError",
    "ReportError",
    "UnknownModelError",
    "WeightAssignError",
]


class PadiffError(Exception):
    """Root of every error raised by padiff-ir."""


class ModelTypeError(PadiffError, TypeError):
    """The object given as a model is not a torch module, a paddle layer or an ONNX model."""


class InputError(PadiffError, ValueError):
    """Inputs that do not fit a model (count, names, shape, dtype)."""


class DtypeKernelError(InputError):
    """A framework has no kernel for the model's dtype on its device (paddle's float16 and
    bfloat16 ``matmul`` and ``conv2d`` on the CPU): the message names the op, the dtype and
    what to do (another device, or the model in float32).

    Attributes:
        framework: ``"torch"`` or ``"paddle"``.
        op: the kernel the framework lacks (``matmul``).
        dtype: the dtype it lacks it for (``float16``).
    """

    def __init__(self, message: str, *, framework: str = "", op: str = "", dtype: str = "") -> None:
        super().__init__(message)
        self.framework = framework
        self.op = op
        self.dtype = dtype


class OptionError(PadiffError, ValueError):
    """An option with a value it cannot take (``atol=nan``, ``compare_mode="median"``).

    Attributes:
        option: the option's name as the caller spelled it (``atol``, ``tolerances``).
    """

    def __init__(self, message: str, *, option: str = "") -> None:
        super().__init__(message)
        self.option = option


class FileFormatError(PadiffError, ValueError):
    """A file padiff-ir reads back (a saved result, a layer map) is missing, unreadable,
    corrupt or of another kind.

    Attributes:
        path: the file.
    """

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class ExportError(PadiffError):
    """A model could not be exported to ONNX.

    Attributes:
        framework: ``"torch"`` or ``"paddle"``.
        location: the op or module the exporter failed on, when known.
        side: ``"A"`` or ``"B"`` when the model was one of a pair (``export_pair``).
    """

    def __init__(
        self, message: str, *, framework: str = "", location: str = "", side: str = ""
    ) -> None:
        super().__init__(message)
        self.framework = framework
        self.location = location
        self.side = side


class IRError(PadiffError):
    """The graph IR violates one of its invariants (see :func:`padiff_ir.ir.lint`)."""


class ExecutionError(PadiffError):
    """onnxruntime could not build or run an exported graph."""


class MatchError(PadiffError):
    """Two graphs or module trees could not be matched as asked."""


class LayoutError(MatchError):
    """Probing left several parameter layouts that reproduce a module's outputs."""


class WeightAssignError(PadiffError):
    """Weights could not be copied from one model to the other."""


class AutoDiffError(PadiffError):
    """An argument of :func:`~padiff_ir.native.auto_diff` that cannot be used as given."""


class ReportError(PadiffError, ValueError):
    """A result dictionary the report cannot read (unknown ``kind``, missing keys)."""


class UnknownModelError(PadiffError, LookupError):
    """A model name or size that the zoo does not have."""
