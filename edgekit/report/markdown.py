"""Human-readable results: the terminal tables and ``report.md`` in the build directory."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from edgekit.core.builddir import atomic_write_text
from edgekit.core.results import TargetResult, ValidationReport
from edgekit.model.reconstruction import describe
from edgekit.report.hardware import compiled_section, fpga_section, rtl_section

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
        lines += _learned_lines(q)
        lines.append("")
    return lines


def _learned_lines(q: dict[str, Any]) -> list[str]:
    """quant.method "learned": the bits each layer's output channels ended with, and the resource term."""
    learned = q.get("learned_bits") or {}
    if not learned:
        return []
    ratio = q.get("resource_ratio") or []
    lines = [
        "",
        "Learned precision: the bits each output channel's weights need after QAT (sign included, trailing zero "
        "bits dropped: what the RTL path's constant multiplications see; hls4ml uses the layer's width)"
        + (f"; bit operations {ratio[0]:.1%} of the uniform model's after the first epoch, {ratio[-1]:.1%} at the "
           "end." if ratio else "."),
        "",
        "| layer | channels | bits: min | median | max | bits per channel |",
        "|---|---|---|---|---|---|",
    ]  # fmt: skip
    for name, bits in learned.items():
        ordered = sorted(bits)
        counts = ", ".join(f"{b}: {ordered.count(b)}" for b in sorted(set(ordered)))
        lines.append(
            f"| {name} | {len(bits)} | {ordered[0]} | {ordered[len(ordered) // 2]} | {ordered[-1]} | {counts} |"
        )
    activations = q.get("learned_activations") or {}
    if activations:
        widths = ", ".join(f"{name} {start} -> {end}" for name, (start, end) in activations.items())
        lines += ["", f"Learned activation widths (bits, asked for -> learned): {widths}."]
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
    lines += fpga_section(manifest["artifacts"].get("compiled") or {}, manifest["artifacts"].get("synthesis") or {},
                           user_layer_names(manifest))  # fmt: skip
    lines += rtl_section(manifest["artifacts"].get("compiled") or {}, manifest["targets"])
    lines += compiled_section(manifest["artifacts"].get("compiled") or {})
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
