"""The HLS project hls4ml writes, as edgekit leaves it: its names, its config file, its emulation build.

edgekit names the project folder and its default top function, rewrites ``hls4ml_config.yml`` so hls4ml
can open the project again from where it ends up (``link_existing_project``), and builds hls4ml's C++
emulation with a ``build_lib.sh`` changed in two ways: the weights folder is found at run time beside the
shared library, so the build can move, and on more than one core the model and its bridge compile at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit.core.errors import ToolchainError
from edgekit.core.tools import available_cpus, run_tool

__all__ = ["PROJECT", "PROJECT_DIR", "WEIGHTS_HEADER", "build_emulator", "final_folder", "portable_config"]

PROJECT = "myproject"
PROJECT_DIR = "hls4ml_prj"

_MODEL_COMPILE = "-c firmware/${PROJECT}.cpp -o ${PROJECT}.o\n"
_BRIDGE_COMPILE = "-c ${PROJECT}_bridge.cpp -o ${PROJECT}_bridge.o\n"


WEIGHTS_HEADER = "edgekit_weights_dir.h"
# WEIGHTS_DIR for hls4ml's load_weights_from_txt, as an expression: the folder of the shared library this code
# is linked into (found with dladdr), plus /weights; hls4ml's own default is the build folder's absolute path.
_WEIGHTS_DIR_CPP = """// Written by edgekit: the emulation library finds firmware/weights beside itself, wherever it is.
#pragma once
#include <dlfcn.h>
#include <string>
static inline std::string edgekit_weights_dir() {
    Dl_info info;
    if (dladdr(reinterpret_cast<void *>(&edgekit_weights_dir), &info) != 0 && info.dli_fname != nullptr) {
        const std::string library(info.dli_fname);
        const std::string::size_type slash = library.rfind('/');
        if (slash != std::string::npos) return library.substr(0, slash) + "/weights";
    }
    return "weights";
}
"""


def portable_config(project: Path, final_project: Path, model_file: str) -> None:
    """Rewrite ``hls4ml_config.yml`` so hls4ml's ``link_existing_project`` (a safe YAML loader) reads it.

    hls4ml 1.3.0 writes the source model itself into the file as a pickled Python object (a qonnx
    ModelWrapper, or the torch module), and the folder it wrote to (edgekit's staging folder) as
    ``OutputDir``. The model becomes the name of its file beside the project (``model_file``), the folder the
    project's final absolute path; any other value YAML cannot write plainly becomes its plain equivalent.
    """
    import yaml

    path = project / "hls4ml_config.yml"
    config = yaml.unsafe_load(path.read_text())  # edgekit's own file, written a moment ago by hls4ml
    for key in ("OnnxModel", "PyTorchModel", "KerasModel"):
        if key in config:
            config[key] = model_file
    config["OutputDir"] = str(final_project)
    path.write_text(yaml.safe_dump(_plain(config), sort_keys=True))


def _plain(value: Any) -> Any:
    """``value`` with numpy scalars and arrays as Python numbers and lists, tuples as lists, other objects by name."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return f"<{type(value).__module__}.{type(value).__name__}>"


def final_folder(out_dir: Path) -> Path:
    """The folder a staged target folder (``.NAME.tmp-XXXX``, see edgekit.core.builddir) is renamed to."""
    name = out_dir.name
    if name.startswith(".") and ".tmp-" in name:
        return out_dir.parent / name[1:].rsplit(".tmp-", 1)[0]
    return out_dir


def _compile_side_by_side(script: str) -> str:
    """build_lib.sh with the model and the bridge compiled at once (the model's g++ takes most of the time);
    a script in another form is returned as it is."""
    if script.count(_MODEL_COMPILE) != 1 or script.count(_BRIDGE_COMPILE) != 1:
        return script
    script = script.replace(
        _MODEL_COMPILE,
        _MODEL_COMPILE.rstrip("\n") + " &\nmodel_compile=$!\ntrap 'kill \"$model_compile\" 2>/dev/null || true' EXIT\n",
    )
    return script.replace(_BRIDGE_COMPILE, _BRIDGE_COMPILE + 'wait "$model_compile"\ntrap - EXIT\n')


def build_emulator(project: Path, log: Path, timeout_s: float) -> None:
    """Build the emulation library with hls4ml's ``build_lib.sh``, changed to find the weights beside it."""
    script = project / "build_lib.sh"
    text = script.read_text()
    absolute = 'WEIGHTS_DIR="\\"${BASEDIR}/firmware/weights\\""'
    if absolute not in text:
        raise ToolchainError(f"{script} is not in the form edgekit knows (hls4ml 1.3.0)", log_path=log)
    # The weights folder found at run time beside the library itself, so the build can move and the
    # library runs from any working directory (edgekit's workers, hls4ml's own predict()).
    (project / "firmware" / WEIGHTS_HEADER).write_text(_WEIGHTS_DIR_CPP)
    found_at_run_time = f'WEIGHTS_DIR=edgekit_weights_dir\\(\\)\nCFLAGS+=" -include firmware/{WEIGHTS_HEADER}"'
    text = text.replace(absolute, found_at_run_time)
    if available_cpus() > 1:
        text = _compile_side_by_side(text)
    script.write_text(text)
    try:
        run_tool(
            ["bash", "build_lib.sh"],
            cwd=project,
            timeout_s=timeout_s,
            log_path=log,
            name="the g++ build of hls4ml's emulation (build_lib.sh)",
        )
    except ToolchainError as err:
        if err.hint or "did not finish" not in err.message:
            raise
        raise ToolchainError(
            err.message,
            hint="give it longer (backend_options.build_timeout_s in a copy of the profile, -t ./my-fpga.toml), "
            "or build with io_stream (fpga-xczu7ev-stream), whose code is smaller",
            log_path=log,
        ) from err
