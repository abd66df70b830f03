"""edgekit's hls4ml resource estimate against published Vivado results for the same architecture and bit widths.

    python bench/bench_calibration.py [--out build/bench-calibration] [--json]

The published rows: Fahim et al., "hls4ml: An Open-Source Codesign Workflow to
Empower Scientific Low-Power Machine Learning Devices", arXiv:2103.05579 (2021),
Table 1: the 16-64-32-32-5 jet tagger on a Xilinx VU9P at 200 MHz, latency
strategy, after Vivado synthesis. edgekit builds the zoo's jet tagger (the same
16-64-32-32-5 architecture, trained here on synthetic jets, so the weights
differ) at the same bit widths through its hls4ml target (fpga-xcvu13p: the
same UltraScale+ fabric and clock) and prints its analytical estimate beside
each published figure, the ratio published / estimate, the multiplicative
coefficient per resource that fits the rows best (geometric mean of the
ratios) and the band the rows leave around it. The coefficients and band that
``edgekit/fpga_estimate.py`` applies are checked against this output.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
from pathlib import Path

from edgekit.fpga_estimate import CALIBRATION, PUBLISHED
from edgekit.pipeline import CompileRequest, compile_model
from edgekit.progress import configure

TARGET = "fpga-xcvu13p"
RESOURCES = ("lut", "ff", "dsp", "latency_ns")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/bench-calibration"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    configure(bars=False, messages=False)
    rows = []
    for row in PUBLISHED:
        overrides = ("quant.method=ptq",) if row.training == "ptq" else ()
        build = compile_model(CompileRequest("jet_tagger", (TARGET,), out=args.out / row.quant, quant=row.quant,
                                             overrides=overrides))  # fmt: skip
        raw = build.manifest["artifacts"]["compiled"][TARGET]["info"]["estimate"]["uncalibrated"]
        rows.append({"design": row.name, "quant": row.quant, "published": row.figures,
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
