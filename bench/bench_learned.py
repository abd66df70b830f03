"""Uniform precision, the per-layer search's recipe and learned precision, side by side on the open RTL target.

    python bench/bench_learned.py [--out build/bench-learned] [--tiny] [--resource-weight 0.05 0.1 ...]
                                  [--search] [--no-ecp5] [--json]

The jet tagger (full size unless ``--tiny``), every build with 12 QAT epochs, for ``fpga-xcvu13p-rtl``
(yosys-mapped LUT/FF/DSP, da4ml's pipeline latency at 200 MHz; validated through da4ml's interpreter to keep
the bench to minutes) and checked bit for bit against brevitas on the held-out jets:

- **uniform**: one width for every layer at several (bits, pruning) points;
- **per-layer**: the recipe the per-layer precision search (``edgekit search``, budget 0.01, from 6 down to
  3 bits, at 85% pruning, on this RTL target) found: ``--search`` runs that search first (about 15 minutes
  on two cores), otherwise the recipe it found when the bench was last updated is built;
- **learned**: ``quant.method = "learned"`` from the same upper bounds (w6a6, 85% pruning) at each
  ``--resource-weight``: each output channel's weight bits and each ReLU's and the input's width learned.

For each method the cheapest build within one point of float accuracy is picked, and those are placed and
routed on the Lattice ECP5-85F (yosys synth_ecp5 + nextpnr-ecp5: post-route LUT4/FF, the achieved Fmax,
latency at that clock) unless ``--no-ecp5``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_rtl import ECP5, _routed, bench_profile

from edgekit.core.progress import configure
from edgekit.pipeline.compile import compile_model
from edgekit.pipeline.request import CompileRequest

RTL = "fpga-xcvu13p-rtl-bench"
BUDGET = 0.01
PRUNE = "0.85"
QAT = "quant.qat_epochs=12"  # every build (and every search trial) gets the same, longer QAT
UNIFORM: list[tuple[str, str | None]] = [
    ("w6a8", None),
    ("w6a6", PRUNE),
    ("w4a6", PRUNE),
    ("w3a6", PRUNE),
    ("w3a5", PRUNE),
    ("w3a4", PRUNE),
]
# What `--search` found (2026-12-06, 2-core x86_64: 33 trials at 12 QAT epochs; 3,405 LUT, accuracy 0.7433):
# per layer, (weight bits, bits of the ReLU after it); the input stays at the start width.
PER_LAYER: dict[str, tuple[int, int | None]] = {"fc1": (4, 3), "fc2": (3, 3), "fc3": (3, 4), "output": (3, None)}
LEARNED_START = "w6a6"


def _layer_overrides(layers: dict[str, tuple[int, int | None]]) -> tuple[str, ...]:
    relus = {"fc1": "relu1", "fc2": "relu2", "fc3": "relu3"}
    out: list[str] = []
    for name, (weight, act) in layers.items():
        out.append(f"quant.layers.{name}.weight_bits={weight}")
        if act is not None and name in relus:
            out.append(f"quant.layers.{relus[name]}.activation_bits={act}")
    return tuple(out)


def build(out: Path, profiles: list[Path], quant: str, prune: str | None, tiny: bool, overrides: tuple[str, ...],
          method: str, point: str) -> dict[str, Any]:  # fmt: skip
    """One build; its accuracy, exactness, yosys figures, latency and (when routed) the ECP5's."""
    started = time.perf_counter()
    request = CompileRequest("jet_tagger", tuple(map(str, profiles)), out=out, quant=quant, prune=prune, tiny=tiny,
                             overrides=(QAT, *overrides))  # fmt: skip
    result = compile_model(request)
    rtl = next(t for t in result.report.targets if t.target == RTL)
    compiled = result.manifest["artifacts"]["compiled"]
    info = compiled[RTL]["info"]
    quantized = result.manifest["artifacts"]["quantized"]["fixed"]
    bits = [b for layer in (quantized.get("learned_bits") or {}).values() for b in layer]
    acts = {lp["name"]: lp["activation_bits"] for lp in quantized["plan"]["layers"] if lp["kind"] in ("input", "relu")}
    weights = {lp["name"]: lp["weight_bits"] for lp in quantized["plan"]["layers"] if lp["weight_bits"]}
    return {
        "method": method,
        "point": point,
        "float_accuracy": result.report.reference.accuracy,
        "accuracy": rtl.accuracy,
        "exact": all(t.status == "ok" and t.max_abs_diff_vs_quantized == 0.0 for t in result.report.targets),
        "samples": rtl.n_samples,
        "lut": info["synthesis"]["lut"],
        "ff": info["synthesis"]["ff"],
        "dsp": info["synthesis"]["dsp"],
        "cycles": info["latency_cycles"],
        "latency_ns": info["latency_ns"],
        "mean_weight_bits": sum(bits) / len(bits) if bits else None,
        "weight_bits": weights,
        "activation_bits": acts,
        **(_routed(compiled[f"{ECP5}-bench"]["info"]) if f"{ECP5}-bench" in compiled else {}),
        "wall_s": time.perf_counter() - started,
        "yosys": info["synthesis"].get("yosys", ""),
    }


def search_recipe(root: Path, profile: Path, tiny: bool) -> dict[str, tuple[int, int | None]]:
    """The per-layer search on this target at the bench's pruning; its layers as (weight bits, ReLU bits)."""
    import edgekit

    found = edgekit.search_precision(
        "jet_tagger", str(profile), budget=BUDGET, start=6, lowest=3, out=root / "search", tiny=tiny,
        overrides=(QAT, "prune.method=unstructured", f"prune.sparsity={PRUNE}"),
    )  # fmt: skip
    print(f"search: {found.trials} trials; layers {found.layers}", flush=True)
    if found.recipe_folder is None:
        raise SystemExit("the per-layer search kept no recipe within the budget (see its history); the bench stops")
    layers: dict[str, tuple[int, int | None]] = {}
    relus = {"relu1": "fc1", "relu2": "fc2", "relu3": "fc3"}
    for name, bits in found.layers.items():
        if "weight_bits" in bits:
            layers[name] = (int(bits["weight_bits"]), layers.get(name, (0, None))[1])
        if name in relus and "activation_bits" in bits:
            owner = relus[name]
            layers[owner] = (layers.get(owner, (6, None))[0], int(bits["activation_bits"]))
    return layers


def _points(args: argparse.Namespace, per_layer: dict[str, tuple[int, int | None]]) -> list[tuple[Any, ...]]:
    points: list[tuple[Any, ...]] = [
        ("uniform", f"{q}, {'pruned ' + p if p else 'dense'}", q, p, ()) for q, p in UNIFORM
    ]
    if args.tiny:  # the tiny model has no fc3
        per_layer = {k: v for k, v in per_layer.items() if k != "fc3"}
    if per_layer:
        text = ", ".join(f"{k} w{w}" + (f"a{a}" if a else "") for k, (w, a) in per_layer.items())
        points.append(("per-layer", f"{text}, pruned {PRUNE}", LEARNED_START, PRUNE, _layer_overrides(per_layer)))
    for weight in args.resource_weight:
        overrides = ("quant.method=learned", f"quant.resource_weight={weight}")
        points.append(("learned", f"{LEARNED_START}, pruned {PRUNE}, weight {weight:g}", LEARNED_START, PRUNE,
                       overrides))  # fmt: skip
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="build folder (default: a temporary one)")
    parser.add_argument("--tiny", action="store_true", help="the tiny variant (a smoke test of the bench)")
    parser.add_argument("--resource-weight", type=float, nargs="+", default=[0.1, 0.2], help="learned points")
    parser.add_argument("--search", action="store_true", help="run the per-layer search first (~15 min)")
    parser.add_argument("--no-ecp5", action="store_true", help="no place and route of the chosen points")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    configure(bars=False, messages=False)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgekit-bench-learned-") as tmp:
        root = args.out or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        rtl, ecp5 = bench_profile(root), bench_profile(root, ECP5)
        per_layer = search_recipe(root, rtl, args.tiny) if args.search else dict(PER_LAYER)
        rows = []
        for method, point, quant, prune, overrides in _points(args, per_layer):
            print(f"building {method}: {point} ...", flush=True)
            out = root / f"{method}-{len(rows)}"
            row = build(out, [rtl], quant, prune, args.tiny, overrides, method, point)
            rows.append(row | {"out": str(out), "request": (quant, prune, overrides)})
        goal = rows[0]["float_accuracy"] - BUDGET
        chosen = {}
        for row in rows:
            fits = row["exact"] and row["accuracy"] >= goal
            best = chosen.get(row["method"])
            if fits and (best is None or row["lut"] < best["lut"]):
                chosen[row["method"]] = row
        if not args.no_ecp5:
            for row in chosen.values():
                print(f"routing {row['method']}: {row['point']} on the ECP5 ...", flush=True)
                quant, prune, overrides = row.pop("request")
                routed = build(Path(row["out"]), [rtl, ecp5], quant, prune, args.tiny, overrides, "", "")
                row.update({k: v for k, v in routed.items() if k.startswith("ecp5_")})
    for row in rows:
        row.pop("request", None)
    _print(rows, chosen, goal, args, time.perf_counter() - started)


def _print(rows: list[dict[str, Any]], chosen: dict[str, Any], goal: float, args: argparse.Namespace,
           wall: float) -> None:  # fmt: skip
    if args.json:
        print(json.dumps({"rows": rows, "goal_accuracy": goal}, indent=1))
        return
    print(f"\njet_tagger{' (tiny)' if args.tiny else ''}: float accuracy {rows[0]['float_accuracy']:.4f}, within one "
          f"point: >= {goal:.4f}; {rows[0]['samples']} held-out jets per build")  # fmt: skip
    header = (f"{'method':<10} {'point':<44} {'accuracy':>8} {'exact':>5} {'LUT':>7} {'FF':>6} {'DSP':>3} "
              f"{'ns':>4} {'ECP5 LUT4':>9} {'FF':>6} {'Fmax':>6} {'ns':>5}")  # fmt: skip
    print(header)
    print("-" * len(header))
    for row in rows:
        mark = "*" if chosen.get(row["method"]) is row else " "
        routed = (
            f"{row['ecp5_lut4']:>9,} {row['ecp5_ff']:>6,} {row['ecp5_fmax_mhz']:>6.1f} {row['ecp5_latency_ns']:>5.0f}"
            if "ecp5_lut4" in row
            else f"{'-':>9} {'-':>6} {'-':>6} {'-':>5}"
        )
        print(f"{row['method']:<10} {row['point'][:43] + mark:<44} {row['accuracy']:>8.4f} "
              f"{'yes' if row['exact'] else 'NO':>5} {row['lut']:>7,} {row['ff']:>6,} {row['dsp']:>3} "
              f"{row['latency_ns']:>4.0f} {routed}")  # fmt: skip
    print("\n* the cheapest exact build of its method within one point of float")
    learned = chosen.get("learned")
    for other in ("uniform", "per-layer"):
        if learned and other in chosen:
            base = chosen[other]
            print(f"learned vs {other}: {learned['lut'] / base['lut']:.2f}x LUT, {learned['ff'] / base['ff']:.2f}x FF"
                  + (f", {learned['ecp5_lut4'] / base['ecp5_lut4']:.2f}x ECP5 LUT4" if "ecp5_lut4" in learned
                     and "ecp5_lut4" in base else "")
                  + f"; accuracy {learned['accuracy'] - base['accuracy']:+.4f}")  # fmt: skip
    for row in rows:
        if row["method"] != "uniform":
            print(f"{row['method']} {row['point']}: weight bits {row['weight_bits']}, activation bits "
                  f"{row['activation_bits']}" + (f", mean learned weight bits per channel {row['mean_weight_bits']:.2f}"
                                                 if row["mean_weight_bits"] is not None else ""))  # fmt: skip
    print(f"\nLUT/FF/DSP: yosys {rows[0]['yosys']} synth_xilinx -family xcup (mapped, no timing) for the VU13P; ns: "
          "da4ml's pipeline at 200 MHz; ECP5: post-route (nextpnr-ecp5), ns = cycles at the achieved Fmax. "
          f"{platform.machine()}, {os.cpu_count()} cores, {wall:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
