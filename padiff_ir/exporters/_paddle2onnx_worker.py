"""Run paddle2onnx in a child process: ``python -m padiff_ir.exporters._paddle2onnx_worker``.

paddle2onnx converts in C++: it writes its logs to file descriptor 1, raises ``SystemExit`` on
some failures and aborts the whole process (SIGABRT) on others. Running it in a child process
keeps the user's process alive whatever happens and lets the parent route the logs to
``logging``. Arguments: ``MODEL_JSON PARAMS OUT_ONNX OPSET``.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    model_file, params_file, out_file, opset = argv
    import paddle2onnx

    paddle2onnx.export(
        model_filename=model_file,
        params_filename=params_file,
        save_file=out_file,
        opset_version=int(opset),
        auto_upgrade_opset=True,
        verbose=False,
        enable_onnx_checker=True,
        enable_optimize=False,
        optimize_tool=None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
