"""The quantized graph lowered to da4ml's adder graphs, checked, pipelined and written as Verilog.

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

Before the logic is pipelined, da4ml's interpreter runs it against edgekit's exact
numpy replay of the graph (:func:`self_check_logic`). da4ml is imported inside the
functions only, so importing this module needs none of the ``rtl`` extra.
"""

from __future__ import annotations

import contextlib
import io
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.backends.rtl.fixed_graph import FixedFormat, FixedGraph
from edgekit.backends.rtl.io_layout import IoLayout, check_word_size
from edgekit.backends.rtl.options import RtlOptions, latency_cutoff
from edgekit.core.errors import BackendUnavailable, EdgekitError, ToolchainError
from edgekit.core.progress import say
from edgekit.core.targets import FpgaSpec, TargetProfile

__all__ = ["SELF_CHECK_SAMPLES", "LoweredDesign", "guarded", "load_da4ml", "lower", "self_check_logic", "trace_logic"]

SELF_CHECK_SAMPLES = 2000


def load_da4ml() -> Any:
    """da4ml, with edgekit's exact constant fractions in place; BackendUnavailable when it is not installed."""
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


def guarded(what: str, fn: Any) -> Any:
    """da4ml raises AssertionError and ValueError for what it cannot build: a toolchain failure, with the reason."""
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            return fn()
    except EdgekitError:
        raise
    except (AssertionError, ValueError, NotImplementedError, RuntimeError, KeyError) as err:
        raise ToolchainError(f"da4ml could not {what}: {type(err).__name__}: {str(err)[:300]}") from err


def self_check_logic(fixed: FixedGraph, logic: Any) -> dict[str, Any]:
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


@dataclass(frozen=True)
class LoweredDesign:
    """One graph as da4ml's logic and its pipeline, with the ports' layout and what it took to get there."""

    logic: Any  # da4ml's CombLogic
    pipeline: Any  # da4ml's Pipeline of that logic
    layout: IoLayout
    cutoff: int  # adder levels per pipeline stage
    self_check: dict[str, Any]
    trace_s: float

    @property
    def cycles(self) -> int:
        """Pipeline stages: clock cycles from input to output."""
        return len(self.pipeline.solutions)

    def write_verilog(self, project: Path, top: str, fpga: FpgaSpec) -> None:
        """da4ml's Verilog of the pipeline into ``project`` (``src/<top>*.v``), for the profile's part and clock."""
        from da4ml.codegen import VerilogModel

        model = VerilogModel(self.pipeline, top, project, latency_cutoff=self.cutoff,
                             clock_period=fpga.clock_period_ns, part_name=fpga.part)  # fmt: skip
        guarded("write Verilog", model.write)


def lower(fixed: FixedGraph, target: TargetProfile, options: RtlOptions) -> LoweredDesign:
    """``fixed`` traced into adder graphs, checked against the exact replay, and pipelined for the target's clock."""
    cutoff = latency_cutoff(target, options)
    started = time.perf_counter()
    logic = guarded("trace the model into adder graphs", lambda: trace_logic(fixed, cutoff))
    trace_s = time.perf_counter() - started
    say(f"  {target.name}: traced into adder graphs in {trace_s:.1f} s (da4ml cost: {float(logic.cost):,.0f} LUT)")
    layout = IoLayout.of(logic)
    check_word_size(layout, options)
    self_check = guarded("run its logic in its interpreter", lambda: self_check_logic(fixed, logic))
    from da4ml.trace import to_pipeline

    pipeline = guarded("pipeline the logic", lambda: to_pipeline(logic, cutoff, verbose=False))
    return LoweredDesign(logic, pipeline, layout, cutoff, self_check, trace_s)
