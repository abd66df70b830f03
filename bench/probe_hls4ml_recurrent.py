"""Does hls4ml's PyTorch frontend compute torch's LSTM and GRU? edgekit refuses them for FPGA targets while not.

    python bench/probe_hls4ml_recurrent.py [--out build/probe-hls4ml-recurrent]

Builds a batch-first LSTM and GRU (4 features, 8 hidden units, seeded weights) through hls4ml's PyTorch
frontend with wide fixed-point types (fixed<32,12>, so rounding is not the question), compiles the C++
emulation, and prints the largest |difference| from torch over 64 random sequences of 1 and 6 steps. Rerun
it after an hls4ml upgrade: when every row is within --tolerance, the refusal in
``edgekit.pipeline.planning.check_recurrent`` can be lifted.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import platform
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn


class Recurrent(nn.Module):
    def __init__(self, cell: type[nn.RNNBase]) -> None:
        super().__init__()
        self.rnn = cell(4, 8, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return out[:, -1]


def max_difference(cell: type[nn.RNNBase], steps: int, out: Path) -> float:
    import hls4ml

    torch.manual_seed(0)
    model = Recurrent(cell).eval()
    x = np.random.default_rng(0).normal(0.0, 1.0, (64, steps, 4)).astype(np.float32)
    with torch.no_grad():
        reference = model(torch.from_numpy(x)).numpy()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        config = hls4ml.utils.config_from_pytorch_model(
            model, input_shape=(steps, 4), granularity="name", default_precision="fixed<32,12>", backend="Vitis"
        )
        hls_model = hls4ml.converters.convert_from_pytorch_model(
            model, hls_config=config, output_dir=str(out / f"{cell.__name__}-{steps}"), backend="Vitis",
            io_type="io_parallel", part="xcvu13p-flga2577-2-e",
        )  # fmt: skip
        hls_model.compile()
        y = hls_model.predict(np.ascontiguousarray(x.reshape(len(x), -1)))
    return float(np.max(np.abs(np.asarray(y).reshape(reference.shape) - reference)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/probe-hls4ml-recurrent"))
    parser.add_argument("--tolerance", type=float, default=1e-3)
    args = parser.parse_args()
    import hls4ml

    print(f"hls4ml {hls4ml.__version__}, torch {torch.__version__}, {platform.machine()} ({platform.node()})")
    print(f"{'layer':<6} {'steps':>5} {'max |hls4ml - torch|':>22}")
    worst = 0.0
    for cell in (nn.LSTM, nn.GRU):
        for steps in (1, 6):
            diff = max_difference(cell, steps, args.out)
            worst = max(worst, diff)
            print(f"{cell.__name__:<6} {steps:>5} {diff:>22.4f}")
    verdict = "within" if worst <= args.tolerance else "NOT within"
    print(f"worst {worst:.4f}: {verdict} {args.tolerance:g} of torch")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
