"""report.html in a real headless browser: it renders, every plot is there, no console errors, no network."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edgekit.pipeline.compile import compile_model
from edgekit.pipeline.request import BuildResult, CompileRequest
from edgekit.report.plots import bar_chart

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_bar_chart_escapes_labels_and_marks_exact_and_missing_values() -> None:
    svg = bar_chart(
        "plot-x", "a <title>", [("<script>alert(1)</script>", 0.0), ("nan", float("nan")), ("b", 2.0)], log=True
    )
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "0 (exact)" in svg and "n/a" in svg and svg.count('class="bar"') == 1


@pytest.fixture(scope="module")
def jet_build(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    pytest.importorskip("hls4ml", reason="the report's FPGA plots need an FPGA target: pip install 'edgekit[fpga]'")
    out = tmp_path_factory.mktemp("jet_html")
    return compile_model(
        CompileRequest("jet_tagger", ("cpu-onnxruntime", "fpga-xcvu13p"), out=out, tiny=True, quant="w6a8")
    )


def test_report_html_renders_in_chromium(jet_build: BuildResult) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install 'edgekit[dev]')")
    if CHROMIUM is None:
        pytest.skip("needs Chromium (.ci/run installs it: apt-get install chromium)")
    page_file = jet_build.build_dir / "report.html"
    assert page_file.is_file()
    errors: list[str] = []
    requests: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_file.as_uri())
            assert page.title() == "edgekit build: jet_tagger"
            plots = ("plot-metric", "plot-agreement", "plot-exactness", "plot-latency-batch-1", "plot-fpga-resources",
                     "plot-fpga-latency", "plot-fpga-layers")  # fmt: skip
            for plot in plots:
                figure = page.locator(f"#{plot}")
                assert figure.count() == 1, plot
                assert figure.locator("svg").count() == 1 and figure.locator("svg").bounding_box()["height"] > 40
                if plot != "plot-exactness":  # every target exact: no log axis to draw (it says so)
                    ticks = figure.locator("svg .tick-label")
                    assert ticks.count() >= 2 and figure.locator("svg line.tick").count() == ticks.count(), plot
                    box = figure.locator("svg line.tick").first.bounding_box()
                    assert box is not None and box["height"] > 0, plot  # drawn, not just in the markup
            axis = page.locator("#plot-metric .axis-label").text_content() or ""
            assert "not 0" in axis or "linear" in axis  # a zoomed metric axis says where it starts
            assert page.locator("#plot-latency-batch-1 figcaption").inner_text().count("[1]") == 1  # clocks named
            assert page.locator("#plot-metric rect.bar").count() == 4  # float, quantized, two targets
            assert page.locator("#plot-exactness").inner_text().count("0 (exact)") == 1
            rows = page.locator("#results tr").count()
            assert rows == 1 + 2 + len(jet_build.report.targets)
            assert page.locator(".pass").count() >= 2
        finally:
            browser.close()
    assert errors == []
    assert all(url.startswith("file://") for url in requests), requests  # self-contained: nothing fetched


def test_a_report_reads_only_its_build_and_the_builds_it_is_given(cli, jet_build: BuildResult, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """report.html is the same bytes whatever lies beside the build; edgekit report --compare adds other builds
    of the model to the bit-width plot, in order of precision."""
    folder = tmp_path / "builds"
    result = compile_model(CompileRequest("jet_tagger", ("fpga-xcvu13p",), out=folder / "w4a6", tiny=True,
                                          quant="w4a6"))  # fmt: skip
    alone = (result.build_dir / "report.html").read_bytes()
    shutil.copytree(jet_build.build_dir, folder / "w6a8")  # neighbours: a build of the same model, and junk
    (folder / "notes").mkdir()
    (folder / "notes" / "manifest.json").write_text("{not json")
    again = cli("report", str(result.build_dir))
    assert again.returncode == 0, again.stderr
    assert (result.build_dir / "report.html").read_bytes() == alone and b'id="plot-bits"' not in alone
    compared = cli("report", str(result.build_dir), "--compare", str(folder / "w6a8"))
    assert compared.returncode == 0, compared.stderr
    page = (result.build_dir / "report.html").read_text()
    assert 'id="plot-bits"' in page
    assert page.index("w4a6 fixed (w4a6)") < page.index("w6a8 fixed (w6a8)")  # ordered by bit width
    junk = cli("report", str(result.build_dir), "--compare", str(folder / "notes"))
    assert junk.returncode == 2 and "manifest" in junk.stderr, junk.stderr
