"""Build da4ml's generated Verilog into a loadable simulation library with the Verilator Debian ships.

da4ml 0.6 writes a makefile (``sim/build_binder.mk``) written for newer Verilator
releases. Debian 12's Verilator 5.006 needs three adjustments, all kept here:

1. Lint pragmas: the generated sources switch ``WIDTHTRUNC`` off and on, a warning
   code 5.006 does not know (it errors out). ``WIDTH``, the umbrella code every
   release knows, covers it, so the pragma is rewritten to it.
2. ``VERILATOR_ROOT``: the makefile reads the *last* ``VERILATOR_ROOT`` line of
   ``verilator -V``, which on Debian is an empty environment entry; the include
   directory is the first one. (Exporting ``VERILATOR_ROOT`` instead breaks
   Debian's wrapper script.)
3. Runtime objects: 5.006's ``--build`` makes the model archive but not
   ``libverilated.a``; ``verilated.cpp`` and ``verilated_threads.cpp`` are compiled
   here and linked into the library.

Instead of patching the makefile, the three commands it would run are run here
through :func:`edgekit.tools.run_tool` (explicit cwd, timeout, log file, checked
exit code).
"""

from __future__ import annotations

import functools
import re
import shutil
from pathlib import Path

from edgekit.errors import ToolchainError
from edgekit.tools import require_program, run_tool

__all__ = [
    "adjust_lint_pragmas",
    "build_library",
    "build_testbench",
    "find_verilator",
    "verilator_root",
]

CXXFLAGS = ["-std=c++17", "-fPIC", "-O"]
# Split the generated C++ into files of about this many statements: one 16-64-32-32-5 MLP compiled in 200 s
# as a single file and in 17 s split (g++ 12, 2 cores); the split also lets make use every core.
OUTPUT_SPLIT = 3000
_PRAGMA = re.compile(r"(lint_(?:off|on))\s+WIDTHTRUNC\b")


def find_verilator() -> str:
    return require_program(
        "verilator", "to simulate the generated RTL",
        "apt-get install verilator, or set emulation = 'interpreter' in the target's [backend_options]",
    )  # fmt: skip


@functools.cache
def verilator_root() -> Path:
    """The first non-empty ``VERILATOR_ROOT`` that ``verilator -V`` reports (adjustment 2)."""
    out = run_tool([find_verilator(), "-V"], cwd=Path.cwd(), timeout_s=30, name="verilator -V").output
    for line in out.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "VERILATOR_ROOT" and value.strip():
            root = Path(value.strip())
            if (root / "include" / "verilated.cpp").is_file():
                return root
    raise ToolchainError(
        "verilator -V names no VERILATOR_ROOT with include/verilated.cpp",
        hint="reinstall verilator (apt-get install --reinstall verilator)",
    )


def adjust_lint_pragmas(source_dir: Path) -> int:
    """Rewrite ``lint_off/lint_on WIDTHTRUNC`` to ``WIDTH`` in every .v file below ``source_dir`` (adjustment 1)."""
    changed = 0
    for path in sorted(source_dir.rglob("*.v")):
        text = path.read_text()
        new, count = _PRAGMA.subn(r"\1 WIDTH", text)
        if count:
            path.write_text(new)
            changed += count
    return changed


def build_library(project: Path, top: str, jobs: int, log_dir: Path, timeout_s: float) -> Path:
    """Verilate ``src/{top}_wrapper.v`` and link it with da4ml's C++ binder into ``sim/lib{top}.so``."""
    project, log_dir = project.resolve(), log_dir.resolve()  # the commands run in sim/
    sim = project / "sim"
    wrapper = f"{top}_wrapper"
    prefix = f"V{wrapper}"
    root = verilator_root()
    adjust_lint_pragmas(project / "src")
    run_tool(
        [find_verilator(), "--cc", "-j", str(jobs), "--build", f"../src/{wrapper}.v", "--prefix", prefix, "-Wall",
         "--output-split", str(OUTPUT_SPLIT),
         "-CFLAGS", " ".join(CXXFLAGS), "-I../src", "-I../src/static"],
        cwd=sim, timeout_s=timeout_s, log_path=log_dir / "verilator.log", name="verilator",
    )  # fmt: skip
    includes = [f"-I{root / 'include'}", f"-I{root / 'include' / 'vltstd'}"]
    objects = []
    for name in ("verilated", "verilated_threads"):  # adjustment 3
        obj = sim / "obj_dir" / f"{name}.o"
        run_tool(
            ["g++", *CXXFLAGS, *includes, "-c", str(root / "include" / f"{name}.cpp"), "-o", str(obj)],
            cwd=sim, timeout_s=timeout_s, log_path=log_dir / f"{name}.log", name=f"g++ ({name}.cpp)",
        )  # fmt: skip
        objects.append(str(obj))
    library = sim / f"lib{top}.so"
    run_tool(
        ["g++", *CXXFLAGS, "-shared", "-Iobj_dir", *includes, "-I../src", "-Wl,--no-undefined", "-pthread",
         "-fopenmp", "-o", library.name, f"{wrapper}_binder.cc", f"obj_dir/{prefix}__ALL.a", *objects],
        cwd=sim, timeout_s=timeout_s, log_path=log_dir / "link.log", name="g++ (simulation library)",
    )  # fmt: skip
    shutil.rmtree(sim / "obj_dir")  # tens of MB of generated C++; the library is all the runner needs
    return library


def build_testbench(vectors_dir: Path, project: Path, top: str, work: Path, timeout_s: float) -> Path:
    """Compile the testbench edgekit wrote beside the vectors (``tb_<top>.sv``) into a program with ``--binary``.

    Run the program from ``vectors_dir``: it reads ``stimulus.hex`` and ``response.hex`` from there and prints
    PASS or FAIL with the mismatching samples.
    """
    vectors_dir, project, work = vectors_dir.resolve(), project.resolve(), work.resolve()
    design = sorted(p for p in (project / "src").glob(f"{top}*.v") if not p.stem.endswith("_wrapper"))
    design += sorted(p for p in (project / "src" / "static").glob("*.v") if p.name != "lookup_table.v")
    adjust_lint_pragmas(project / "src")
    run_tool(
        [find_verilator(), "--binary", "-Wno-fatal", "-j", "2", "--top-module", f"tb_{top}", "-Mdir", str(work),
         str(vectors_dir / f"tb_{top}.sv"), *map(str, design)],
        cwd=vectors_dir, timeout_s=timeout_s, log_path=work / "testbench_build.log", name="verilator --binary",
    )  # fmt: skip
    return work / f"Vtb_{top}"
