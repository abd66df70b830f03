"""The quantization notebooks run top to bottom at toy size, through the public API, and are stored clean."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
FIGURES = {
    "01_quantization_bit_widths": "accuracy_vs_bits.png",
    "02_pruning_fine_tuning": "pruning.png",
    "03_fpga_codesign": "fpga_codesign.png",
    "04_your_model_in_python": "own_model.png",
}


def test_the_notebooks_are_there_and_stored_without_outputs() -> None:
    assert [p.stem for p in NOTEBOOKS] == sorted(FIGURES)
    for path in NOTEBOOKS:
        book = json.loads(path.read_text())
        for cell in book["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, f"{path.name} has outputs"
                for line in "".join(cell["source"]).splitlines():  # the public API only
                    assert not line.lstrip().startswith("from edgekit.") or line.strip() == "", (path.name, line)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_at_toy_size(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat", reason="needs the notebooks extra: pip install 'edgekit[notebooks]'")
    nbclient = pytest.importorskip("nbclient", reason="needs the notebooks extra: pip install 'edgekit[notebooks]'")
    from jupyter_client.manager import KernelManager

    monkeypatch.setenv("EDGEKIT_NOTEBOOK_TINY", "1")
    monkeypatch.setenv("EDGEKIT_NOTEBOOK_OUT", str(tmp_path / "builds"))
    monkeypatch.setenv("EDGEKIT_NOTEBOOK_FIGURES", str(tmp_path / "figures"))
    monkeypatch.setenv("PYTHONWARNINGS", "ignore::DeprecationWarning")
    book = nbformat.read(str(path), as_version=4)
    kernel = KernelManager(kernel_name="python3", ip="127.0.0.1")  # the kernel's sockets stay on loopback
    try:
        nbclient.NotebookClient(book, km=kernel, timeout=600, resources={"metadata": {"path": str(REPO)}}).execute()
    finally:
        if kernel.has_kernel:  # a kernel manager passed in is ours to stop, not nbclient's
            kernel.shutdown_kernel(now=True)
    figure = tmp_path / "figures" / FIGURES[path.stem]
    assert figure.is_file() and figure.stat().st_size > 10_000  # a real plot, not an empty canvas
    errors = [o for c in book.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
