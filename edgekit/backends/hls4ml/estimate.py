"""Resource and latency estimates for an hls4ml design, before (and without) synthesis.

An analytical model, labelled as an estimate everywhere it is shown. Per layer
with weights, from the weights hls4ml will hard-wire (pruned zeros count as free:
HLS drops a multiplication by a constant zero) and the fixed-point widths hls4ml
chose:

* multipliers = ceil(non-zero weights per output pass / reuse factor); a Conv
  layer computes one output pixel per pass (hls4ml's default parallelization);
* a weight of plus or minus a power of two is a shift, not a multiplier: no DSP
  and no LUT (the latency strategy hard-wires the weights, and synthesis turns
  a product with 2^k into wiring; its sign folds into the adder tree);
* a multiplier goes to a DSP48 when both operands are wider than 9 bits, else to
  LUTs at about (weight bits x input bits) / 2 LUTs: at low precision Vivado HLS
  builds constant multiplications from LUTs and the DSP count drops to zero
  (Duarte et al., JINST 13 (2018) P07027, DSP usage vs precision);
* adder trees: one accumulator-wide adder per product beyond the first, one LUT
  per bit; registers: every product and every adder-tree level of the outputs;
* weights: constants in the logic for the latency strategy; for the resource
  strategy, BRAM18 blocks of 36 bits x 512 words holding the weights a cycle reads;
* the ``distributed_arithmetic`` strategy (hls4ml 1.3 asks da4ml for each
  layer's constant multiplications as one adder graph): LUT is da4ml's own cost
  of that graph, which hls4ml records per layer; no multipliers, no DSP; a
  layer's latency is the graph's depth in adder levels (from da4ml's code) at
  one level per ns of the clock period (``DA_LEVELS_PER_NS``), plus its output
  register, with one accumulator-wide row of registers per stage;
* latency: a Dense layer takes reuse + adder-tree depth + 2 cycles, a Conv layer
  (output pixels x reuse) + depth + 2, activations and pooling 1; io_parallel
  layers run one after another, io_stream layers overlap (the slowest plus the
  depths of the rest); the initiation interval is the slowest layer's.

The formula's totals are then scaled by factors fitted to published Vivado
results of the same architecture (``CALIBRATION``, from
``bench/bench_calibration.py``; the hls4ml paper, arXiv:2103.05579, Table 1),
and each calibrated figure carries the band those designs spread over; the
formula's own totals stay in ``Estimate.uncalibrated``. Per layer, LUT, FF and
DSP are scaled alike; per-layer latency stays the formula's. The published
designs are io_parallel with the latency strategy and reuse factor 1, so only
such designs are scaled; any other keeps the formula's figures, labelled uncalibrated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from edgekit.core.targets import FpgaSpec

__all__ = ["CALIBRATION", "PUBLISHED", "Calibration", "Estimate", "LayerEstimate", "LayerFacts", "estimate"]

DSP_MIN_WIDTH = 10
BRAM18_WIDTH, BRAM18_DEPTH = 36, 512


@dataclass(frozen=True)
class PublishedDesign:
    name: str
    # how edgekit builds the same bit widths: --quant for QAT, or hls4ml's own post-training quantization of the
    # float model (edgekit's float path) with every type float_bits wide, as the paper's PTQ rows were made
    quant: str | None
    float_bits: int | None
    figures: dict[str, float]  # lut, ff, dsp, latency_ns after Vivado synthesis


# Fahim et al., "hls4ml: An Open-Source Codesign Workflow to Empower Scientific Low-Power Machine Learning
# Devices", arXiv:2103.05579 (2021), Table 1: the 16-64-32-32-5 jet tagger, Xilinx VU9P, 200 MHz, latency
# strategy. bench/bench_calibration.py builds the same architecture and bit widths through edgekit.
PUBLISHED = (
    PublishedDesign("16-bit PTQ", None, 16, {"lut": 89_209, "dsp": 1_852, "ff": 11_266, "latency_ns": 50}),
    PublishedDesign("14-bit PTQ", None, 14, {"lut": 90_019, "dsp": 1_132, "ff": 9_262, "latency_ns": 50}),
    PublishedDesign("6-bit QAT", "w6a6", None, {"lut": 63_251, "dsp": 38, "ff": 4_394, "latency_ns": 45}),
)


@dataclass(frozen=True)
class Calibration:
    """A factor on one estimated total and the band (low, high factor) the published rows leave around it."""

    coefficient: float
    band: tuple[float, float]


# Fitted by bench/bench_calibration.py to PUBLISHED: the geometric mean of published / formula over the rows,
# and the band the rows leave around the fitted figure (min and max of their ratio to it). Measured 2026-12-04
# on the zoo's jet tagger (2-core x86_64): per-row ratios LUT 1.35, 1.56, 0.65; FF 0.076, 0.071, 0.117;
# DSP 0.435, 0.266 (the 6-bit design's 38 DSPs against the formula's 0 leave no ratio); latency 0.286, 0.286,
# 0.25. The formula's structure (a register per product and adder-tree level, every 10-bit-or-wider product
# on a DSP, a cycle per adder-tree level) is what Vivado does not do at 200 MHz; the factors correct its
# scale for designs like these (dense MLPs, uniform 6-16 bits, latency strategy, reuse 1), and the band says
# how far three designs spread. Other architectures, reuse factors or io_stream are outside what was fitted.
CALIBRATION: dict[str, Calibration] = {
    "lut": Calibration(1.111, (0.585, 1.404)),
    "ff": Calibration(0.0858, (0.831, 1.361)),
    "dsp": Calibration(0.340, (0.782, 1.279)),
    "latency_ns": Calibration(0.273, (0.915, 1.046)),
}
CALIBRATION_SOURCE = "arXiv:2103.05579 Table 1 (3 Vivado designs of the jet tagger)"


@dataclass(frozen=True)
class LayerFacts:
    name: str
    kind: str  # dense, conv, activation, pooling, other
    weights: int = 0
    nonzero_weights: int = 0
    weight_bits: int = 0
    input_bits: int = 0
    accumulator_bits: int = 0
    outputs_per_pass: int = 0  # n_out for Dense, filters for Conv
    passes: int = 1  # output pixels for Conv
    reuse_factor: int = 1
    shift_weights: int = 0  # non-zero weights that are +-2^k: shifts, no multiplier
    da_lut: float = 0.0  # distributed arithmetic: da4ml's LUT cost of the layer's adder graph (hls4ml records it)
    da_depth: int = 0  # distributed arithmetic: adder levels on the graph's longest path (da4ml's code says)


@dataclass(frozen=True)
class LayerEstimate:
    name: str
    kind: str
    multipliers: int
    dsp: int
    lut: int
    ff: int
    bram_18k: int
    latency_cycles: int
    initiation_interval: int


@dataclass(frozen=True)
class Estimate:
    layers: tuple[LayerEstimate, ...]
    lut: int
    ff: int
    dsp: int
    bram_18k: int
    latency_cycles: int
    latency_ns: float
    initiation_interval: int
    utilization: dict[str, float]  # fraction of the part, per resource
    method: str = "edgekit analytical estimate; no synthesis"
    # the formula's totals before calibration, and per calibrated resource the band around the figure above
    uncalibrated: dict[str, float] = field(default_factory=dict)
    band: dict[str, tuple[float, float]] = field(default_factory=dict)


# Adder levels one clock cycle holds at a 1 ns period: the convention of da4ml's own examples (5 levels at
# 200 MHz), which the open RTL path's UltraScale+ profile uses too (its ``adder_levels_per_ns``).
DA_LEVELS_PER_NS = 1.0


def _layer(facts: LayerFacts, strategy: str, clock_period_ns: float = 5.0) -> LayerEstimate:
    if facts.kind not in ("dense", "conv"):
        return LayerEstimate(facts.name, facts.kind, 0, 0, 0, 0, 0, 1 if facts.kind != "other" else 0, 1)
    reuse = max(1, facts.reuse_factor)
    per_pass = facts.nonzero_weights
    fan_in = max(1, per_pass // max(1, facts.outputs_per_pass))
    depth = math.ceil(math.log2(fan_in)) if fan_in > 1 else 0
    if strategy == "distributed_arithmetic":
        # da4ml's adder graph replaces every multiplier and the adder tree: its own LUT count, no DSP. HLS
        # pipelines the graph: its depth in adder levels over the levels a clock period holds, plus the
        # output register; one accumulator-wide row of registers per stage
        levels = max(1, math.floor(clock_period_ns * DA_LEVELS_PER_NS))
        stages = math.ceil(facts.da_depth / levels) + 1
        ff = facts.outputs_per_pass * facts.accumulator_bits * stages
        lut = round(facts.da_lut)
        return LayerEstimate(facts.name, facts.kind, 0, 0, lut, ff, 0, facts.passes + stages - 1, facts.passes)
    multipliers = math.ceil(max(0, per_pass - facts.shift_weights) / reuse)
    wide = min(facts.weight_bits, facts.input_bits) >= DSP_MIN_WIDTH
    dsp = multipliers * (2 if max(facts.weight_bits, facts.input_bits) > 27 else 1) if wide else 0
    mult_lut = 0 if wide else multipliers * math.ceil(facts.weight_bits * facts.input_bits / 2)
    adders = max(0, per_pass - facts.outputs_per_pass) // reuse
    lut = mult_lut + adders * facts.accumulator_bits
    ff = multipliers * (facts.weight_bits + facts.input_bits) + facts.outputs_per_pass * facts.accumulator_bits * (
        depth + 1
    )
    bram = 0
    if strategy == "resource":
        width_bits = math.ceil(facts.nonzero_weights / reuse) * facts.weight_bits
        bram = math.ceil(width_bits / BRAM18_WIDTH) * math.ceil(reuse / BRAM18_DEPTH)
    ii = facts.passes * reuse
    return LayerEstimate(facts.name, facts.kind, multipliers, dsp, lut, ff, bram, ii + depth + 2, ii)


def estimate(layers: Sequence[LayerFacts], fpga: FpgaSpec) -> Estimate:
    raw = tuple(_layer(f, fpga.strategy, fpga.clock_period_ns) for f in layers)
    # the published designs were io_parallel, latency strategy, reuse 1: other designs keep the formula's figures
    fitted = (fpga.io_type, fpga.strategy, fpga.reuse_factor) == ("io_parallel", "latency", 1)
    factors = CALIBRATION if fitted else {}

    def scaled(value: int, key: str) -> int:
        return round(value * factors[key].coefficient) if key in factors else value

    per_layer = tuple(
        replace(e, lut=scaled(e.lut, "lut"), ff=scaled(e.ff, "ff"), dsp=scaled(e.dsp, "dsp")) for e in raw
    )
    if fpga.io_type == "io_stream":
        slowest = max((e.initiation_interval for e in per_layer), default=1)
        formula_cycles = slowest + sum(e.latency_cycles - e.initiation_interval for e in per_layer)
    else:
        formula_cycles = sum(e.latency_cycles for e in per_layer)
    cycles = formula_cycles
    if "latency_ns" in factors and formula_cycles:
        cycles = max(1, round(formula_cycles * factors["latency_ns"].coefficient))
    totals = {
        "lut": sum(e.lut for e in per_layer),
        "ff": sum(e.ff for e in per_layer),
        "dsp": sum(e.dsp for e in per_layer),
        "bram_18k": sum(e.bram_18k for e in per_layer),
    }
    capacity = fpga.resources
    utilization = {
        "lut": totals["lut"] / capacity.lut,
        "ff": totals["ff"] / capacity.ff,
        "dsp": totals["dsp"] / capacity.dsp if capacity.dsp else 0.0,
        "bram_18k": totals["bram_18k"] / capacity.bram_18k if capacity.bram_18k else 0.0,
    }
    uncalibrated = {
        "lut": float(sum(e.lut for e in raw)),
        "ff": float(sum(e.ff for e in raw)),
        "dsp": float(sum(e.dsp for e in raw)),
        "latency_ns": formula_cycles * fpga.clock_period_ns,
    }
    method = "edgekit analytical estimate, uncalibrated for this io type, strategy or reuse; no synthesis"
    if fpga.strategy == "distributed_arithmetic":
        method = (
            "da4ml's adder-graph LUT cost per dense/conv layer (recorded by hls4ml); latency from the graph's "
            "depth at one adder level per ns of the clock period, FF from edgekit's formula; uncalibrated, "
            "no synthesis"
        )
    if factors:
        method = f"edgekit analytical estimate calibrated to {CALIBRATION_SOURCE}; no synthesis"
    return Estimate(
        layers=per_layer,
        lut=totals["lut"],
        ff=totals["ff"],
        dsp=totals["dsp"],
        bram_18k=totals["bram_18k"],
        latency_cycles=cycles,
        latency_ns=cycles * fpga.clock_period_ns,
        initiation_interval=max((e.initiation_interval for e in per_layer), default=1),
        utilization=utilization,
        method=method,
        uncalibrated=uncalibrated,
        band={k: c.band for k, c in factors.items()},
    )
