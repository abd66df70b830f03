"""What edgekit reads back from hls4ml's converted model: per-layer facts for the resource estimate
(:mod:`edgekit.backends.hls4ml.estimate`) and the fixed-point types hls4ml chose, for the report.

A layer hls4ml builds with distributed arithmetic has no weight array: da4ml's adder graph gives its LUT
cost and depth instead.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from edgekit.backends.hls4ml.estimate import LayerFacts

__all__ = ["layer_facts", "layer_precisions"]


def layer_precisions(hls_model: Any) -> dict[str, dict[str, str]]:
    """The fixed-point types hls4ml chose per layer, for the report."""
    out: dict[str, dict[str, str]] = {}
    for layer in hls_model.get_layers():
        types = {}
        for name, var in getattr(layer, "types", {}).items():
            precision = getattr(var, "precision", None)
            if precision is not None:
                types[name] = str(precision)
        if types:
            out[layer.name] = types
    return out


def _width(variable: Any) -> int:
    return int(getattr(getattr(getattr(variable, "type", None), "precision", None), "width", 0) or 0)


def _shift_weights(weights: np.ndarray) -> int:
    """How many non-zero weights are plus or minus a power of two (a shift in hardware, no multiplier)."""
    magnitude = np.abs(np.asarray(weights, dtype=np.float64))
    nonzero = magnitude[magnitude > 0]
    return int(np.count_nonzero(np.exp2(np.round(np.log2(nonzero))) == nonzero))


def _adder_depth(code: str) -> int:
    """Adder levels on the longest path of a layer's distributed-arithmetic graph.

    da4ml writes each operation of the graph as one C++ line ending in ``// <latency>``, the operation's depth
    in adder levels (hls4ml asks for it with ``print_latency``); the deepest line is the graph's depth.
    """
    depths = [float(m) for m in re.findall(r"//\s*(\d+(?:\.\d+)?)\s*$", code, flags=re.MULTILINE)]
    return math.ceil(max(depths, default=0.0))


def layer_facts(hls_model: Any) -> list[LayerFacts]:
    """What the estimate needs from each layer of the hls4ml model graph."""
    facts = []
    for layer in hls_model.get_layers():
        cls = type(layer).__name__.lower()
        weight = getattr(layer, "weights", {}).get("weight")
        da_cost = layer.get_attr("da_kernel_cost")
        if da_cost is not None:
            # distributed arithmetic: the weights live in da4ml's adder graph, not as an array
            conv = "conv" in cls
            n_in, n_out = int(layer.get_attr("n_in") or 0), int(layer.get_attr("n_out") or 0)
            if conv:
                n_out = int(layer.get_attr("n_filt") or 0)
                n_in = int(layer.get_attr("n_chan") or 0) * int(layer.get_attr("filt_height") or 1)
                n_in *= int(layer.get_attr("filt_width") or 1)
            passes = int(layer.get_attr("out_height") or 1) * int(layer.get_attr("out_width") or 1) if conv else 1
            facts.append(
                LayerFacts(
                    name=layer.name,
                    kind="conv" if conv else "dense",
                    nonzero_weights=n_in * n_out,
                    input_bits=_width(layer.get_input_variable()),
                    accumulator_bits=_width(layer.get_output_variable()),
                    outputs_per_pass=n_out,
                    passes=passes,
                    da_lut=float(da_cost),
                    da_depth=_adder_depth(str(layer.get_attr("da_codegen") or "")),
                )
            )
        elif weight is not None and ("dense" in cls or "conv" in cls):
            conv = "conv" in cls
            filters = int(layer.get_attr("n_filt") or 0) if conv else int(layer.get_attr("n_out") or 0)
            passes = int(layer.get_attr("out_height") or 1) * int(layer.get_attr("out_width") or 1) if conv else 1
            facts.append(
                LayerFacts(
                    name=layer.name,
                    kind="conv" if conv else "dense",
                    weights=int(weight.data.size),
                    nonzero_weights=int(np.count_nonzero(weight.data)),
                    weight_bits=_width(weight),
                    input_bits=_width(layer.get_input_variable()),
                    accumulator_bits=_width(layer.get_output_variable()),
                    outputs_per_pass=filters,
                    passes=passes,
                    reuse_factor=int(layer.get_attr("reuse_factor") or 1),
                    shift_weights=_shift_weights(weight.data),
                )
            )
        elif "activation" in cls or "relu" in cls:
            facts.append(LayerFacts(layer.name, "activation"))
        elif "pool" in cls:
            facts.append(LayerFacts(layer.name, "pooling"))
    return facts
