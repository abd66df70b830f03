"""edgekit's hls4ml resource estimate against published Vivado results for the same architecture and bit widths.

    python bench/bench_calibration.py [--out build/bench-calibration] [--json]

The published rows: Fahim et al., "hls4ml: An Open-Source Codesign Workflow to
Empower Scientific Low-Power Machine Learning Devices", arXiv:2103.05579 (2021),
Table 1: the 16-64-32-32-5 jet tagger on a Xilinx VU9P at 200 MHz, latency
strategy, after Vivado synthesis. edgekit builds the zoo's jet tagger (the same
16-64-32-32-5 architecture, trained here on synthetic jets, so the weights
differ) at the same bit widths through its hls4ml target (fpga-xcvu13p: the
same UltraScale+ fabric and clock): the PTQ rows through edgekit's float path
(hls4ml's own post-training quantization, every type 16 or 14 bits wide, as
the paper made them), the QAT row from brevitas at w6a6. It prints its analytical estimate beside
each published figure, the ratio published / estimate, the multiplicative
coefficient per resource that fits the rows best (geometric mean of the
ratios) and the band the rows leave around it. The coefficients and band that
``edgekit/backends/hls4ml/estimate.py`` applies are checked against this output.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import tempfile
from pathlib import Path

from edgekit.backends.hls4ml.estimate import CALIBRATION, PUBLISHED
from edgekit.core.progress import configure
from edgekit.core.targets import targets_dir
from edgekit.pipeline.compile import compile_model
from edgekit.pipeline.request import CompileRequest

TARGET = "fpga-xcvu13p"
RESOURCES = ("lut", "ff", "dsp", "latency_ns")


def _float_profile(folder: Path, bits: int) -> Path:
    """fpga-xcvu13p with hls4ml's float-path types ``bits`` wide."""
    text = (targets_dir() / f"{TARGET}.toml").read_text().replace(f'name = "{TARGET}"', f'name = "{TARGET}-ptq{bits}"')
    if "[backend_options]" in text:
        text = text.replace("[backend_options]", f"[backend_options]\nfloat_width_bits = {bits}", 1)
    else:
        text += f"\n[backend_options]\nfloat_width_bits = {bits}\n"
    path = folder / f"{TARGET}-ptq{bits}.toml"
    path.write_text(text)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/bench-calibration"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    configure(bars=False, messages=False)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for row in PUBLISHED:
            target = TARGET if row.float_bits is None else str(_float_profile(Path(tmp), row.float_bits))
            name = row.quant or f"float{row.float_bits}"
            print(f"building jet_tagger for {row.name} ({name}) ...", flush=True)
            build = compile_model(CompileRequest("jet_tagger", (target,), out=args.out / name, quant=row.quant))
            compiled = next(iter(build.manifest["artifacts"]["compiled"].values()))
            raw = compiled["info"]["estimate"]["uncalibrated"]
            rows.append({"design": row.name, "build": name, "published": row.figures,
                         "estimate": {k: float(raw[k]) for k in RESOURCES}})  # fmt: skip
    fit = {}
    for key in RESOURCES:
        ratios = [r["published"][key] / r["estimate"][key] for r in rows if r["estimate"][key] > 0]
        coefficient = math.exp(sum(map(math.log, ratios)) / len(ratios)) if ratios else math.nan
        band = (min(ratios) / coefficient, max(ratios) / coefficient) if ratios else (math.nan, math.nan)
        fit[key] = {"coefficient": coefficient, "band": band, "ratios": ratios}
    applied = {k: {"coefficient": c.coefficient, "band": c.band} for k, c in CALIBRATION.items()}
    machine = f"{platform.machine()}, {platform.python_version()}"
    result = {"machine": machine, "rows": rows, "fit": fit, "applied": applied}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"edgekit hls4ml estimate (uncalibrated) vs arXiv:2103.05579 Table 1 (VU9P, 200 MHz); {result['machine']}")
    print(f"{'design':<12} {'resource':<10} {'published':>10} {'estimate':>10} {'ratio':>7}")
    for r in rows:
        for key in RESOURCES:
            p, e = r["published"][key], r["estimate"][key]
            print(f"{r['design']:<12} {key:<10} {p:>10,.0f} {e:>10,.0f} {p / e if e else math.nan:>7.2f}")
    print()
    print(f"{'resource':<10} {'fitted coefficient':>18} {'band after it':>16}   applied in fpga_estimate.py")
    for key in RESOURCES:
        f, applied = fit[key], CALIBRATION.get(key)
        used = f"x{applied.coefficient:.2f}, band {applied.band[0]:.2f}-{applied.band[1]:.2f}" if applied else "none"
        print(f"{key:<10} {f['coefficient']:>18.2f} {f['band'][0]:>8.2f}-{f['band'][1]:<7.2f}   {used}")


if __name__ == "__main__":
    main()
