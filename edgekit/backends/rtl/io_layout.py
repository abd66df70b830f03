"""The design's ports as fixed-point formats: how samples go in and out of the emulators and the testbench buses.

:class:`IoLayout` holds each port element's (signed, integer bits, fraction
bits), LSB first, as da4ml's traced logic gives them. It encodes inputs into
the integer words the Verilator binder moves, decodes its outputs, and packs
samples into the top module's buses for ``$readmemh``. :func:`check_word_size`
refuses a design whose ports do not fit the emulator's word. This module
imports numpy, and da4ml only inside :meth:`IoLayout.of`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgekit.backends.rtl.options import RtlOptions
from edgekit.core.errors import ConfigError

__all__ = ["INTERPRETER_WORD_BITS", "VERILATOR_WORD_BITS", "IoLayout", "check_word_size"]

VERILATOR_WORD_BITS = 32  # da4ml's C++ binder moves every value through one int32
INTERPRETER_WORD_BITS = 52  # the interpreter computes in float64


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


def check_word_size(layout: IoLayout, options: RtlOptions) -> None:
    """A ConfigError when a port, aligned to its widest fraction, needs more bits than the emulation's word."""
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
