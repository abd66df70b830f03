"""The hardware sections of ``report.md``: hls4ml estimates (and vendor C synthesis), the open RTL design's
figures from each source, and how AOTInductor packages and TensorRT engines were built."""

from __future__ import annotations

from typing import Any

__all__ = ["compiled_section", "fpga_section", "rtl_section"]


def fpga_section(compiled: dict[str, Any], synthesis: dict[str, Any], user_names: list[str]) -> list[str]:
    """hls4ml targets: the calibrated estimate with its band, C synthesis when run, and the per-layer table."""
    lines: list[str] = []
    for target, artifact in compiled.items():
        info = artifact.get("info", {})
        est = info.get("estimate")
        if not est:
            continue
        util, band = est["utilization"], est.get("band", {})

        def spread(key: str, value: float, band: dict[str, Any] = band) -> str:
            """The range the calibration's published designs leave around ``value``."""
            if key not in band or not value:
                return ""
            low, high = band[key]
            return f" [{value * low:,.0f}-{value * high:,.0f}]"

        lines += [
            f"## FPGA estimates: {target}",
            "",
            f"{info['part']} at {1000 / info['clock_period_ns']:.0f} MHz, {info['io_type']}, {info['strategy']} "
            f"strategy, reuse factor {info['reuse_factor']}. **Estimates** ({est['method']}), not synthesis results.",
            "",
            f"- latency {est['latency_cycles']} cycles = {est['latency_ns']:.0f} ns"
            f"{spread('latency_ns', est['latency_ns'])}, "
            f"initiation interval {est['initiation_interval']} cycles",
            f"- LUT {est['lut']:,}{spread('lut', est['lut'])} ({util['lut']:.1%}), "
            f"FF {est['ff']:,}{spread('ff', est['ff'])} ({util['ff']:.1%}), "
            f"DSP {est['dsp']:,}{spread('dsp', est['dsp'])} ({util['dsp']:.1%}), "
            f"BRAM18 {est['bram_18k']:,} ({util['bram_18k']:.1%})",
            *(
                [
                    "- [low-high]: the band the published designs of the calibration leave around each calibrated "
                    "figure (bench/bench_calibration.py); the formula's own totals: "
                    + ", ".join(f"{k.upper()} {v:,.0f}" for k, v in est["uncalibrated"].items() if k != "latency_ns")
                ]
                if band
                else []
            ),
            *_synthesis_lines(synthesis.get(target)),
            "",
            "| layer | kind | multipliers | DSP | LUT | FF | BRAM18 | latency (cycles, formula) | II |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        weighted = [layer for layer in est["layers"] if layer["kind"] in ("dense", "conv")]
        # hls4ml names layers after graph nodes (Dense_MatMul_0); the n-th weighted one is the user's n-th
        named = len(user_names) == len(weighted) and info.get("path", "").startswith("QONNX")
        for i, layer in enumerate(weighted):
            name = f"{user_names[i]} ({layer['name']})" if named else layer["name"]
            lines.append(
                f"| {name} | {layer['kind']} | {layer['multipliers']:,} | {layer['dsp']:,} | {layer['lut']:,} "
                f"| {layer['ff']:,} | {layer['bram_18k']:,} | {layer['latency_cycles']} "
                f"| {layer['initiation_interval']} |"
            )
        lines.append("")
    return lines


def rtl_section(compiled: dict[str, Any], targets: dict[str, Any]) -> list[str]:
    """Open-RTL targets: latency in cycles, da4ml's estimate beside yosys' mapped cells and any hls4ml estimate."""
    lines: list[str] = []
    hls = {name: a["info"]["estimate"] for name, a in compiled.items() if a.get("info", {}).get("estimate")}
    for target, artifact in compiled.items():
        info = artifact.get("info", {})
        if "da4ml_estimate" not in info:
            continue
        capacity = targets[target]["profile"]["fpga"]["resources"]
        lines += [
            f"## RTL: {target}",
            "",
            _rtl_head(info) + f" Ports: {info['n_inputs']} inputs ({info['input_bits']} bits, {info['input_format']}), "
            f"{info['n_outputs']} outputs ({info['output_bits']} bits).",
            "",
            *_rtl_table(info, capacity, hls),
            "",
            *_rtl_notes(target, info),
            "",
        ]
    return lines


def _rtl_head(info: dict[str, Any]) -> str:
    """The pipeline, and the achieved clock and latency (routed) or the profile's (not routed)."""
    route = info.get("route")
    clock_mhz = 1000 / info["clock_period_ns"]
    head = (
        f"da4ml {info['da4ml']} Verilog for {info['part']} at {clock_mhz:.0f} MHz: {info['latency_cycles']} "
        f"pipeline stages (at most {info['adder_levels_per_stage']} adder levels each), a new sample every cycle. "
    )
    if route:
        met = "met" if route["timing_met"] else "**not met**"
        return head + (
            f"Placed and routed by nextpnr-ecp5 {route['nextpnr']} ({route['router']}, seed {route['seed']}, "
            f"{route['wall_s']:.0f} s): **Fmax {route['fmax_mhz']:.1f} MHz**, timing {met} at "
            f"{route['constraint_mhz']:g} MHz; latency **{info['latency_ns']:.0f} ns** at the achieved clock "
            f"({info['latency_ns_at_constraint']:.0f} ns at the constraint)."
        )
    return head + (
        f"Latency **{info['latency_ns']:.0f} ns** at the profile's clock; no timing analysis (open tools "
        f"have no timing models for this family: the depth follows adder_levels_per_ns)."
    )


def _rtl_table(info: dict[str, Any], capacity: dict[str, int], hls: dict[str, Any]) -> list[str]:
    """One row per source of figures: da4ml's estimate, yosys, nextpnr, and the hls4ml estimates beside them."""

    def share(used: float, kind: str) -> str:
        return f"{used:,.0f} ({used / capacity[kind]:.2%})" if capacity.get(kind) else f"{used:,.0f}"

    est, syn, route = info["da4ml_estimate"], info.get("synthesis"), info.get("route")
    lines = [
        "| source | LUT | FF | DSP | carry | mux | BRAM |",
        "|---|---|---|---|---|---|---|",
        f"| {est['label']} | {share(est['lut'], 'lut')} | {share(est['ff'], 'ff')} | 0 | - | - | - |",
    ]
    if syn:
        command = "synth_ecp5" if syn["family"] == "ecp5" else f"synth_xilinx -family {syn['family']}"
        version = f" {syn['yosys']}" if syn.get("yosys") else ""
        lut_note = " LUT4 + 2 per carry cell" if syn["family"] == "ecp5" else ""
        luts = syn["lut"] + (2 * syn["carry"] if syn["family"] == "ecp5" else 0)
        lines.append(
            f"| {syn['label']} (yosys{version} {command}, {syn['wall_s']:.0f} s{';' if lut_note else ''}"
            f"{lut_note}) | {share(luts, 'lut')} | {share(syn['ff'], 'ff')} | {syn['dsp']} | {syn['carry']:,} "
            f"| {syn['mux']:,} | {syn['bram']} |"
        )
    else:
        lines.append("| yosys | not run (synthesis = false) | | | | | |")
    if route:
        used = route["used"]
        carry = f"{syn['carry']:,}" if syn else "-"  # every CCU2C of the netlist is placed (two LUT4 slots)
        lines.append(
            f"| {route['label']} (LUT4 slots, carry chains included; I/O {used['io']} of "
            f"{route['available']['io']}) | {share(used['lut'], 'lut')} | {share(used['ff'], 'ff')} "
            f"| {used['dsp']} | {carry} | - | {used['bram_18k']} |"
        )
    for name, h in hls.items():
        lines.append(
            f"| hls4ml estimate of {name} ({h['method']}) | {h['lut']:,} | {h['ff']:,} | {h['dsp']:,} | - | - "
            f"| {h['bram_18k']} |"
        )
    return lines


def _rtl_notes(target: str, info: dict[str, Any]) -> list[str]:
    """Where the Verilog, scripts and testbenches are, the self-check, and the critical path when routed."""
    check = info["self_check"]
    tops = info.get("tops") or {"core": info["top"], "valid": f"{info['top']}_stream"}
    faces = f"the core `{tops['core']}`, with a valid handshake `{tops['valid']}`" + (
        f", as AXI4-Stream `{tops['axi_stream']}`" if "axi_stream" in tops else ""
    )
    implemented = info.get("implemented_top", tops["core"])
    scripts = ", ".join(f"`rtl/{f}`" for f in info.get("project_files", []))
    lines = [
        f"- Verilog: `targets/{target}/rtl/src/` ({len(info['sources'])} files: {faces}); the figures above "
        f"are of `{implemented}`"
        + (f" (project script and constraints: {scripts})" if scripts else "")
        + f"; testbenches and vectors: `vectors/{target}/` (`design.f` lists the design files)",
        f"- emulation validated as the target: {info['emulation']}; da4ml's logic equalled edgekit's exact "
        f"replay of the graph on {check['samples']} inputs ({check['inputs']})",
    ]
    path = (info.get("route") or {}).get("critical_path")
    if path:
        lines.append(
            f"- critical path (post-route): {path['delay_ns']:.2f} ns = {path['logic_ns']:.2f} ns logic + "
            f"{path['routing_ns']:.2f} ns routing through {path['cells']} cells, from `{path['start']}` to "
            f"`{path['end']}`; Verilog: {', '.join(f'`{s}`' for s in path['sources'][:4]) or 'not named'}"
        )
    return lines


def compiled_section(compiled: dict[str, Any]) -> list[str]:
    """AOTInductor packages and TensorRT engines: how they were built, and (TensorRT) the layer precisions."""
    lines: list[str] = []
    for target, artifact in compiled.items():
        info = artifact.get("info", {})
        if artifact.get("backend") == "inductor":
            device = info.get("cuda_device", "CPU") if info["device"] == "cuda" else "CPU"
            lines += [
                f"## AOTInductor: {target}",
                "",
                f"torch {info['torch']}, {info['precision']}, {device}, dynamic batch 1..{info['max_batch']}"
                + (", CUDA graphs" if info.get("cuda_graphs") else "")
                + f"; export {info['export_s']:.1f} s, compile {info['compile_s']:.1f} s (in a worker process); "
                f"first load matched eager within {info['self_check_max_abs_diff_vs_eager']:.2e} on "
                f"{info['self_check_samples']} samples.",
                "",
            ]
        elif artifact.get("backend") == "tensorrt":
            settings, layers = info["settings"], info.get("layers", {})
            formats = ", ".join(f"{k}: {v}" for k, v in sorted(layers.get("tensor_formats", {}).items()))
            lines += [
                f"## TensorRT: {target}",
                "",
                f"TensorRT {info['tensorrt']} on {info['gpu']} (compute {info['compute_capability']}), "
                f"{settings['graph']} strongly typed network, optimization level {settings['optimization_level']}, "
                f"workspace {settings['workspace_bytes'] >> 20} MiB, batch {settings['input_shapes'][0][0]}.."
                f"{settings['input_shapes'][2][0]}, built in {info['build_s']:.1f} s"
                + (" (timing cache reused)" if info.get("timing_cache_reused") else "")
                + f"; {layers.get('count', 0)} engine layers ({formats or 'formats not reported'}); per layer in "
                f"`targets/{target}/layers.json`.",
                "",
            ]
    return lines


def _synthesis_lines(result: dict[str, Any] | None) -> list[str]:
    if not result:
        return ["- C synthesis: not run (edgekit compile --synth, with Vitis HLS or Vivado HLS on PATH)"]
    rep = result["report"]
    used = ", ".join(f"{k.upper()} {v:,}" for k, v in rep["resources"].items())
    return [
        f"- **C synthesis** ({result['tool']} {rep['tool_version']}, vendor report): latency "
        f"{rep['latency_best_cycles']}-{rep['latency_worst_cycles']} cycles, interval {rep['interval_min_cycles']}-"
        f"{rep['interval_max_cycles']}, estimated clock {rep['estimated_clock_ns']:.2f} ns "
        f"(target {rep['target_clock_ns']:.2f}); {used}",
    ]
