"""``import edgekit`` and the light CLI commands work without any optional extra."""

from __future__ import annotations

import subprocess
import sys

# A subprocess in which the optional libraries cannot be imported even if installed here.
BLOCK = """
import importlib.abc, sys
OPTIONAL = {"brevitas", "qonnx", "hls4ml", "da4ml", "tensorrt", "ray", "h5py", "onnxoptimizer", "torch_pruning"}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in OPTIONAL:
            raise ImportError(f"blocked for this test: {name}")
sys.meta_path.insert(0, Block())
"""


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCK + code], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )


def test_import_is_light_and_needs_no_extra() -> None:
    proc = _run("import edgekit; print(edgekit.__version__); print('torch' in sys.modules)")
    assert proc.returncode == 0, proc.stderr
    version, torch_loaded = proc.stdout.split()
    assert version == __import__("edgekit").__version__
    assert torch_loaded == "False", "import edgekit must not import torch"


def test_cli_help_targets_models_doctor_without_extras() -> None:
    code = (
        "from edgekit.cli.main import main\n"
        "for args in (['targets'], ['models'], ['doctor']):\n"
        "    assert main(args) == 0, args\n"
        "try:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
    )
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    assert "compile" in proc.stdout and "cpu-onnxruntime" in proc.stdout and "jet_tagger" in proc.stdout
    assert "hls4ml" in proc.stdout and "missing" in proc.stdout  # doctor reports the blocked extras


def test_public_api_names_resolve() -> None:
    import edgekit

    for name in edgekit.__all__:
        assert getattr(edgekit, name) is not None


def test_quant_without_the_extra_says_what_to_install(tmp_path) -> None:  # type: ignore[no-untyped-def]
    code = (
        "import sys\n"
        "from edgekit.cli.main import main\n"
        f"sys.exit(main(['compile', 'jet_tagger', '--tiny', '--quant', 'int8', '-t', 'cpu-onnxruntime-int8',"
        f" '--out', {str(tmp_path / 'b')!r}]))\n"
    )
    proc = _run(code)
    assert proc.returncode == 3, proc.stderr
    assert "quantization needs brevitas and qonnx" in proc.stderr and "edgekit[quant]" in proc.stderr
    assert not (tmp_path / "b").exists()
