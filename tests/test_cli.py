"""The padiff-ir command line: real models through main(argv), exit codes 0/1/2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from padiff_ir.cli import EXIT_DIVERGED, EXIT_ERROR, EXIT_OK, main


@pytest.fixture(scope="module")
def onnx_pair(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    paths = {}
    for side in ("torch", "paddle"):
        paths[side] = str(folder / f"cnn_{side}.onnx")
        assert main(["export", f"zoo:cnn:{side}", "-o", paths[side]]) == EXIT_OK
    return paths


def test_export_writes_attributed_onnx(onnx_pair, capsys):
    import padiff_ir

    exported = padiff_ir.export(onnx_pair["paddle"])
    assert exported.framework == "paddle"
    assert {"conv1", "bn1", "fc"} <= set(exported.node_modules.values())


def test_compare_two_onnx_files_aligned(onnx_pair, tmp_path, capsys):
    out = tmp_path / "result.json"
    code = main(
        [
            "compare",
            onnx_pair["torch"],
            onnx_pair["paddle"],
            "--input-shape",
            "x=2,3,32,32",
            "--json",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.out
    assert "ALIGNED" in captured.out
    assert json.loads(out.read_text())["ok"] is True


def test_compare_takes_the_tolerance_measured_or_fixed(tmp_path, capsys):
    for extra, measured in (
        ([], True),
        (["--tolerance", "fixed"], False),
        (["--atol", "1e-4"], False),
    ):
        out = tmp_path / "result.json"
        code = main(["compare", "zoo:mlp:torch", "zoo:mlp:paddle", "--json", str(out), *extra])
        captured = capsys.readouterr()
        assert code == EXIT_OK, captured.out
        data = json.loads(out.read_text())
        assert (data.get("noise") is not None) is measured, extra
        assert ("tolerance: auto, measured noise" in captured.out) is measured


def test_compare_unknown_model_spec_exits_2(capsys):
    code = main(["compare", "zoo:mlp:torch", "mypkg_missing:factory"])
    assert code == EXIT_ERROR
    assert "cannot import" in capsys.readouterr().err


def test_demo_with_injected_bug_exits_1_and_writes_report(tmp_path, capsys):
    html = tmp_path / "demo.html"
    code = main(["demo", "--bug", "-o", str(html), "--json", str(tmp_path / "demo.json")])
    captured = capsys.readouterr()
    assert code == EXIT_DIVERGED
    assert "culprit: backbone.blocks.1.norm1" in captured.out
    assert html.exists() and html.stat().st_size > 10_000
    # the report renders again from the JSON alone
    again = tmp_path / "again.html"
    assert main(["report", str(tmp_path / "demo.json"), "-o", str(again)]) == EXIT_OK
    assert "backbone.blocks.1.norm1" in again.read_text()


def test_bad_arguments_exit_2(capsys):
    assert main(["compare", "only-one.onnx"]) == EXIT_ERROR
    assert (
        main(["compare", "/missing/a.onnx", "/missing/b.onnx", "--input-shape", "x=1"])
        == EXIT_ERROR
    )
    assert "does not exist" in capsys.readouterr().err


def test_console_script_is_installed():
    result = subprocess.run(
        [sys.executable, "-m", "padiff_ir.cli", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    for command in ("demo", "compare", "export", "report"):
        assert command in result.stdout


def test_readme_command_lines_parse():
    """Every ``padiff-ir`` line of the README's Command line section is accepted by the parser
    (options spelled as they are parsed, e.g. ``--input-range=-1,1``)."""
    import re
    import shlex
    from pathlib import Path

    from padiff_ir.cli import _build_parser

    readme = Path(__file__).resolve().parents[1] / "README.md"
    section = readme.read_text(encoding="utf-8").split("## Command line", 1)[1].split("\n## ")[0]
    lines = [
        line
        for block in re.findall(r"```bash\n(.*?)```", section, re.S)
        for line in block.splitlines()
        if line.startswith("padiff-ir ")
    ]
    assert any("--input-range" in line for line in lines)
    parser = _build_parser()
    for line in lines:
        argv = shlex.split(line, comments=True)[1:]
        argv = argv[: argv.index(">")] if ">" in argv else argv
        args = parser.parse_args(argv)
        assert args.command == argv[0], line
