"""The hls4ml emulator's build script, compiled two files at once: it still builds, and a failing compile fails it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

hls4ml = pytest.importorskip("hls4ml", reason="hls4ml is not installed (pip install 'edgekit[fpga]')")


def _template() -> str:
    return (Path(hls4ml.__file__).parent / "templates" / "vivado" / "build_lib.sh").read_text()


def _project(folder: Path, model_source: str) -> Path:
    (folder / "firmware" / "ap_types").mkdir(parents=True)
    (folder / "firmware" / "myproject.cpp").write_text(model_source)
    (folder / "myproject_bridge.cpp").write_text('extern "C" int bridge() { return 2; }\n')
    return folder


def _run(script: str, folder: Path) -> subprocess.CompletedProcess[str]:
    (folder / "build_lib.sh").write_text(script)
    return subprocess.run(["bash", "build_lib.sh"], cwd=folder, capture_output=True, text=True, timeout=120)


def test_the_installed_template_is_compiled_side_by_side_and_still_links(tmp_path: Path) -> None:
    from edgekit.backends.hls4ml.project import _compile_side_by_side

    template = _template()
    script = _compile_side_by_side(template)
    assert script != template, "hls4ml's build_lib.sh changed form; edgekit would build its two files one by one"
    assert script.index("model_compile=$!") < script.index("_bridge.o") < script.index('wait "$model_compile"')
    done = _run(script, _project(tmp_path, 'extern "C" int model() { return 1; }\n'))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "firmware" / "myproject-mystamp.so").is_file()


def test_a_model_that_does_not_compile_fails_the_script(tmp_path: Path) -> None:
    from edgekit.backends.hls4ml.project import _compile_side_by_side

    done = _run(_compile_side_by_side(_template()), _project(tmp_path, "this is not C++;\n"))
    assert done.returncode != 0
    assert "myproject.cpp" in done.stderr
    assert not (tmp_path / "firmware" / "myproject-mystamp.so").exists()


def test_a_script_of_another_form_is_left_as_it_is() -> None:
    from edgekit.backends.hls4ml.project import _compile_side_by_side

    other = "#!/bin/bash\nset -e\nmake -j2 lib\n"
    assert _compile_side_by_side(other) == other
