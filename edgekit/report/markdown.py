"""Human-readable results: the terminal tables and ``report.md`` in the build directory."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from edgekit.core.builddir import atomic_write_text
from edgekit.core.results import TargetResult, ValidationReport
from edgekit.model.reconstruction import describe

__all__ = ["latency_table", "problems", "quant_diff", "results_table", "user_layer_names", "write_report"]


def _us(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.1f} us" if value < 1000 else f"{value / 1000:.2f} ms"


def _num(value: float, fmt: str) -> str:
    return "-" if math.isnan(value) else format(value, fmt)


def _status(result: TargetResult, is_reference: bool) -> str:
    if is_reference:
        return "reference"
    if result.status != "ok":
        return result.status.upper()
    return "PASS" if result.passed else "FAIL"


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        parts = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def results_table(report: ValidationReport) -> str:
    """One row per reference and target: task metric(s), agreement with float and quantized references."""
    reconstruction = any(t.reconstruction for t in (report.reference, *report.targets))
    with_quant = any(t.quant_family for t in report.targets)
    if reconstruction:
        header = ["target", "status", "mse", "psnr (dB)", "signal kept", "max|diff| vs float"]
    else:
        header = ["target", "status", report.metric_name, "max|diff| vs float", "top-1 agree"]
        if report.metric_name != "accuracy":
            header.insert(3, "accuracy")
    if with_quant:
        header.append("max|diff| vs quantized")
    header.append("samples")
    rows = []
    references = [report.reference, *report.extra_references]
    for result in [*references, *report.targets]:
        is_ref = any(result is r for r in references)
        if result.status != "ok":
            rows.append([result.target, _status(result, is_ref)] + ["-"] * (len(header) - 2))
            continue
        is_float = result is report.reference
        vs_float = "-" if is_float else _num(result.max_abs_diff_vs_float, ".2e")
        if reconstruction:
            r = result.reconstruction
            nan = math.nan
            row = [result.target, _status(result, is_ref), _num(r.get("mse", nan), ".3e"),
                   _num(r.get("psnr", nan), ".2f"), _pct(r.get("signal_recovered", nan)), vs_float]  # fmt: skip
        else:
            row = [result.target, _status(result, is_ref), _num(result.metric, ".4f"), vs_float,
                   "-" if is_float else _pct(result.top1_agreement)]  # fmt: skip
            if report.metric_name != "accuracy":
                row.insert(3, _num(result.accuracy, ".4f"))
        if with_quant:
            row.append(quant_diff(result) if result.quant_family and not is_ref else "-")
        row.append(str(result.n_samples))
        rows.append(row)
    table = _table(header, rows, right=set(range(2, len(header))))
    heads = sorted({t.host_head for t in [*references, *report.targets] if t.host_head})
    if heads:
        table += (
            f"\nquantized rows: their graphs output logits; the model's last step ({', '.join(heads)}) is applied "
            "on the host before the metric and the comparison with the float reference"
        )
    tails = sorted({t.host_tail for t in [*references, *report.targets] if t.host_tail})
    if tails:
        table += (
            f"\nquantized rows: the artifacts compute the model up to {', '.join(tails)} (quant.deploy_until) and "
            "are compared with brevitas on its values; the host runs the rest of the quantized model on them "
            "for the metric and the comparison with the float reference"
        )
    return table


def _compression_lines(summary: dict[str, Any] | None) -> list[str]:
    lines = describe(summary or {})
    return ["## Compression", "", "```", *lines, "```", ""] if lines else []


def _pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{value * 100:.2f}%"


def quant_diff(result: TargetResult) -> str:
    """The difference from the quantized reference, with its size in units of the output's last bit."""
    text = _num(result.max_abs_diff_vs_quantized, ".2e")
    lsb = result.max_lsb_diff_vs_quantized
    if not math.isnan(lsb):
        text += f" = {lsb:.0f} LSB" if math.isfinite(lsb) and lsb == round(lsb) else f" = {lsb:.3g} LSB"
    return f"{text} ({result.quant_family})"


def latency_table(report: ValidationReport) -> str:
    header = ["target", "batch", "p50", "p99", "samples/s", "iterations", "clock"]
    rows = []
    for result in (report.reference, *report.targets):
        for stat in result.latency:
            rows.append(
                [
                    result.target,
                    str(stat.batch_size),
                    _us(stat.p50_us),
                    _us(stat.p99_us),
                    f"{stat.throughput_per_s:,.0f}",
                    str(stat.iterations),
                    stat.clock,
                ]
            )
    return _table(header, rows, right={1, 2, 3, 4, 5})


def problems(report: ValidationReport) -> list[str]:
    lines = []
    for t in report.targets:
        if t.status != "ok":
            first, *rest = t.reason.splitlines() or [""]
            lines.append(f"{t.target}: {t.status}: {first}")
            lines.extend(f"    {line}" for line in rest)
        if t.modified:
            lines.append(f"{t.target}: validated as modified since compile: {', '.join(t.modified)}")
        lines.extend(f"{t.target}: gate failed: {g.describe()}" for g in t.failed_gates())
        if t.divergence:
            lines.append(f"{t.target}: {t.divergence}")
    return lines


def user_layer_names(manifest: dict[str, Any]) -> list[str]:
    """The quantized model's weighted layers as the user named them (fc1, conv2, ...), in forward order."""
    quantized = (manifest["artifacts"].get("quantized") or {}).get("fixed") or {}
    return [name for name, fmt in (quantized.get("formats") or {}).items() if "weight" in fmt]


def _fpga_section(compiled: dict[str, Any], synthesis: dict[str, Any], user_names: list[str]) -> list[str]:
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


def _rtl_section(compiled: dict[str, Any], targets: dict[str, Any]) -> list[str]:
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


def _compiled_section(compiled: dict[str, Any]) -> list[str]:
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


def _pruning_section(pruning: dict[str, Any] | None) -> list[str]:
    if not pruning:
        return []
    before, after = pruning["before"], pruning["after"]
    lines = [
        "## Pruning",
        "",
        f"Method {pruning['method']}, sparsity {pruning['sparsity']:g}; held-out metric after pruning and "
        f"fine-tuning {pruning['held_out_metric']:.4f}.",
        "",
        "| layer | shape | parameters left | sparsity | MACs left |",
        "|---|---|---|---|---|",
    ]
    dense = {layer["layer"]: layer for layer in before["layers"]}
    for layer in after["layers"]:
        was = dense.get(layer["layer"], layer)
        lines.append(
            f"| {layer['layer']} | {'x'.join(map(str, was['shape']))} -> {'x'.join(map(str, layer['shape']))} "
            f"| {layer['nonzero_parameters']:,} of {was['parameters']:,} | {layer['sparsity']:.1%} "
            f"| {layer['nonzero_macs']:,} of {was['macs']:,} |"
        )
    tb, ta = before["totals"], after["totals"]
    lines += [
        f"| **total** | | {ta['nonzero_parameters']:,} of {tb['parameters']:,} | "
        f"{1 - ta['nonzero_parameters'] / tb['parameters']:.1%} | {ta['nonzero_macs']:,} of {tb['macs']:,} "
        f"({1 - ta['nonzero_macs'] / tb['macs']:.1%} fewer) |",
        "",
    ]
    return lines


def _quantization_section(quantized: dict[str, Any], artifacts: dict[str, Any]) -> list[str]:
    if not quantized:
        return []
    lines = ["## Quantization", ""]
    for family, q in quantized.items():
        plan = q["plan"]
        checks = artifacts["quant_exports"][family]
        diffs = ", ".join(f"{fmt} {d:g}" for fmt, d in checks["max_abs_diff_vs_brevitas"].items())
        lines += [
            f"### {family} family ({q['method'].upper()}, {plan['scale_type'].replace('_', '-')} scales)",
            "",
            f"Exported graphs vs brevitas' forward on {checks['n_check_samples']} held-out samples, "
            f"max abs difference: {diffs}.",
            "",
            "| layer | kind | weight bits | activation bits | signed | bias bits | weight scales "
            "| weight format | output format |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        formats = q.get("formats") or {}
        for layer in plan["layers"]:
            found = formats.get(layer["name"]) or formats.get(f"{layer['name']}_quant") or {}
            lines.append(
                f"| {layer['name']} | {layer['kind']} | {layer['weight_bits'] or '-'} | {layer['activation_bits']} "
                f"| {'yes' if layer['activation_signed'] else 'no'} | {layer['bias_bits'] or '-'} "
                f"| {(layer['weight_scaling'] or '-').replace('_', ' ')} | {found.get('weight', '-')} "
                f"| {found.get('output', '-')} |"
            )
        if formats:
            lines += [
                "",
                "Formats as trained: `fixed<W,I>` is W bits of which I integer bits (sign included; "
                "`ufixed` unsigned), one step 2^(I-W); `I..J` varies per channel. A layer without an output "
                "format hands its sum, unrounded, to the next quantizer (the last layer's is the model's output).",
            ]
        lines.append("")
    return lines


def write_report(root: Path, manifest: dict[str, Any], report: ValidationReport) -> Path:
    env = manifest["environment"]
    model = manifest["model"]
    lines = [
        f"# edgekit build: {model['name']}",
        "",
        f"- edgekit {manifest['edgekit_version']}, built {manifest['created_utc']}"
        + (f", re-validated {manifest['revalidated_utc']}" if "revalidated_utc" in manifest else ""),
        f"- machine: {env['platform']}, {env['cpu_count']} CPUs, Python {env['python']}",
        f"- model: {model['n_parameters']:,} parameters, input {tuple(model['input_shape'])}, "
        f"{len(model['classes'])} classes, recipe {model['recipe']}",
        f"- validated on {report.reference.n_samples} held-out samples (golden vectors in float/)",
        "",
        "## Results",
        "",
        "```",
        results_table(report),
        "```",
        "",
        *_compression_lines(model.get("compression")),
        "## Latency",
        "",
        "Each row: warm-up, then timed calls of one batch; percentiles over the timed calls.",
        "",
        "```",
        latency_table(report),
        "```",
        "",
        "## Gates",
        "",
    ]
    for t in report.targets:
        lines.append(f"### {t.target} ({t.backend}): {_status(t, False)}")
        lines.append("")
        if t.modified:
            lines += [f"- **validated as modified since compile: {', '.join(t.modified)}**", ""]
        if t.status != "ok":
            lines += [f"{t.reason}", ""]
            continue
        lines += [f"- runner: {t.runner}"]
        lines += [f"- {'pass' if g.passed else 'FAIL'}: {g.describe()}" for g in t.gates]
        if t.divergence:
            lines += [f"- **{t.divergence}**"]
        if t.layer_errors:
            lines += ["", "Per-layer max |difference| from the reference, in forward order:", ""]
            lines += ["| layer | kind | max abs diff |", "|---|---|---|"]
            lines += [f"| {e.layer} | {e.kind} | {e.max_abs_diff:.3g} |" for e in t.layer_errors]
        lines.append("")
    lines += _fpga_section(manifest["artifacts"].get("compiled") or {}, manifest["artifacts"].get("synthesis") or {},
                           user_layer_names(manifest))  # fmt: skip
    lines += _rtl_section(manifest["artifacts"].get("compiled") or {}, manifest["targets"])
    lines += _compiled_section(manifest["artifacts"].get("compiled") or {})
    lines += _pruning_section(manifest.get("pruning"))
    lines += _quantization_section(manifest["artifacts"].get("quantized") or {}, manifest["artifacts"])
    lines += ["## Stages", "", "| stage | folder | cached | wall time |", "|---|---|---|---|"]
    lines += [
        f"| {s['name']} | {s['directory']} | {'yes' if s['cached'] else 'no'} | {s['wall_s']:.2f} s |"
        for s in manifest["stages"]
    ]
    path = root / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
