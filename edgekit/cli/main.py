"""``edgekit`` subcommands. Each parses its flags, calls the library, and prints.

Exit codes: 0 every gate passed, 1 a validation gate failed, 2 bad config or
input, 3 a backend is unavailable, 4 an external toolchain failed.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgekit import __version__
from edgekit.cli.listings import add_listings, cmd_doctor, cmd_models, cmd_ops, cmd_recipe, cmd_targets, print_json
from edgekit.core.errors import EdgekitError
from edgekit.core.tools import CPUS_ENV

__all__ = ["main"]

EPILOG = (
    "exit codes: 0 all gates passed, 1 a validation gate failed, 2 bad config or input, "
    "3 backend unavailable, 4 toolchain failed"
)


def _add_output_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress messages")


def _add_trial_flags(p: argparse.ArgumentParser, each: str) -> None:
    """What every build of a sweep or search shares, and where the builds run (Ray)."""
    p.add_argument("--tiny", action="store_true", help=f"the recipe's tiny variant for every {each}")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides")
    p.add_argument("--address", help="join an existing Ray cluster (default: a local one on 127.0.0.1)")
    p.add_argument("--workers", type=int, help=f"local Ray workers (default: every core, or {CPUS_ENV})")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgekit",
        description="Quantize, prune, export, compile and validate small neural networks for CPUs, GPUs and FPGAs.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"edgekit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_compile(sub)
    _add_validate_and_report(sub)
    _add_sweep_and_search(sub)
    add_listings(sub)
    return parser


def _add_compile(sub: Any) -> None:
    c = sub.add_parser(
        "compile",
        help="train/load, export, compile and validate a model for one or more targets",
        description="Build MODEL for each --target and validate every artifact against the float reference.",
        epilog=EPILOG,
    )
    c.add_argument("model", metavar="MODEL", help="zoo model name (edgekit models), a model folder, or module:factory")
    c.add_argument(
        "-t",
        "--target",
        action="append",
        default=[],
        metavar="TARGET",
        help="target profile name (edgekit targets) or profile TOML path; repeatable; default: the recipe's targets",
    )
    c.add_argument("-o", "--out", type=Path, help="build directory (default: build/MODEL)")
    c.add_argument("--recipe", help="recipe for a module:factory model: a zoo model name or a recipe TOML path")
    c.add_argument("--tiny", action="store_true", help="the recipe's tiny variant: seconds instead of minutes")
    c.add_argument(
        "--data",
        metavar="FILE",
        help="inputs and labels from a .npz, .npy, .h5, .csv or .parquet file (the built-in loader; name arrays or "
        "columns with --set data_options.inputs=... / data_options.labels=...), instead of the recipe's loader",
    )
    c.add_argument(
        "--synth",
        action="store_true",
        help="run vendor C synthesis (Vitis HLS / Vivado HLS) for FPGA targets and report its numbers",
    )
    c.add_argument(
        "--prune",
        metavar="SPEC",
        help="prune: a sparsity (0.8: unstructured magnitude), structured:0.5 (channels), 2:4, or off",
    )
    c.add_argument(
        "--quant",
        metavar="SPEC",
        help="quantize: wNaM (N-bit weights, M-bit activations, e.g. w6a8), wNaMiK (K-bit input), int8, or off",
    )
    c.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="override a setting, e.g. --set train.epochs=5 --set gates.min_metric=0.9 (repeatable)",
    )
    c.add_argument("--force", action="store_true", help="rebuild every stage, ignoring cached outputs")
    _add_output_flags(c)


def _add_validate_and_report(sub: Any) -> None:
    v = sub.add_parser(
        "validate",
        help="re-validate an existing build directory",
        description="Re-run every compiled artifact of BUILD_DIR on its golden vectors and check the gates.",
        epilog=EPILOG,
    )
    v.add_argument("build_dir", type=Path, metavar="BUILD_DIR")
    v.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides")
    _add_output_flags(v)

    rp = sub.add_parser(
        "report",
        help="write a build's report.md and report.html again, optionally beside other builds",
        description="Render BUILD_DIR's reports from its manifest (nothing is built or run). --compare adds "
        "other builds of the same model to the HTML report's bit-width plot; a report reads no other build.",
        epilog=EPILOG,
    )
    rp.add_argument("build_dir", type=Path, metavar="BUILD_DIR")
    rp.add_argument("--compare", type=Path, nargs="+", default=[], metavar="OTHER", help="builds to plot beside it")
    _add_output_flags(rp)


def _add_sweep_and_search(sub: Any) -> None:
    s = sub.add_parser(
        "sweep",
        help="build and validate every point of a grid (bits, sparsity, reuse) on Ray",
        description="Every point runs the normal pipeline into SWEEP/points/NAME; finished points are reused, "
        "so a repeated or interrupted sweep runs only what is missing. Results: results.csv, results.parquet, "
        "sweep.md and sweep.html in the sweep folder.",
        epilog=EPILOG,
    )
    s.add_argument("model", metavar="MODEL", help="zoo model name, model folder, or module:factory")
    s.add_argument(
        "--grid",
        nargs="+",
        default=[],
        metavar="KEY=V1,V2",
        help="weight_bits, act_bits, sparsity, reuse, resource_weight (learned precision); e.g. --grid "
        "weight_bits=4,6,8 sparsity=0,0.5 (default: the recipe's [sweep] grid)",
    )
    s.add_argument("-t", "--target", action="append", default=[], metavar="TARGET", help="repeatable")
    s.add_argument("-o", "--out", type=Path, help="sweep folder (default: build/sweep-MODEL)")
    s.add_argument("--recipe", help="recipe for a module:factory model")
    s.add_argument("--data", metavar="FILE", help="inputs and labels from a data file (as edgekit compile --data)")
    _add_trial_flags(s, "point")
    s.add_argument("--retry-failed", action="store_true", help="run failed points again")
    s.add_argument("--best", metavar="CONDITIONS", help='pick a point, e.g. "accuracy>=0.74, lut<=20000"')
    _add_output_flags(s)

    r = sub.add_parser(
        "search",
        help="per-layer precision search: the narrowest bit widths per layer that keep an accuracy budget",
        description="Uniform precision from --start down to --lowest bits, then each layer's weights and "
        "activations narrowed on their own (bisection), combined and repaired until the budget holds. Every "
        "trial is a sweep point (QAT, compile, validate) on Ray; the result is a model folder to compile.",
        epilog=EPILOG,
    )
    r.add_argument("model", metavar="MODEL", help="zoo model name or model folder")
    r.add_argument("-t", "--target", required=True, metavar="TARGET", help="an FPGA target (its LUT estimate)")
    r.add_argument("--budget", type=float, default=0.01, help="accuracy below float that is allowed (0.01)")
    r.add_argument("--start", type=int, default=8, help="the widest precision, every layer (default 8)")
    r.add_argument("--lowest", type=int, default=2, help="the narrowest precision tried (default 2)")
    r.add_argument("-o", "--out", type=Path, help="search folder (default: build/search-MODEL)")
    _add_trial_flags(r, "trial")
    _add_output_flags(r)


def _cmd_compile(args: argparse.Namespace) -> int:
    from edgekit.pipeline.compile import compile_model
    from edgekit.pipeline.request import CompileRequest

    request = CompileRequest(
        model=args.model,
        targets=tuple(args.target),
        out=args.out,
        recipe=args.recipe,
        tiny=args.tiny,
        quant=args.quant,
        prune=args.prune,
        synth=args.synth,
        overrides=tuple(args.overrides),
        force=args.force,
        data=args.data,
    )
    started = time.perf_counter()
    result = compile_model(request)
    return _show_result(result, args, time.perf_counter() - started)


def _cmd_validate(args: argparse.Namespace) -> int:
    from edgekit.pipeline.reopen import validate_build

    started = time.perf_counter()
    result = validate_build(args.build_dir, tuple(args.overrides))
    return _show_result(result, args, time.perf_counter() - started)


def _cmd_report(args: argparse.Namespace) -> int:
    from edgekit.pipeline.reopen import render_reports

    markdown, html = render_reports(args.build_dir, tuple(args.compare))
    if args.json:
        print_json({"report": str(markdown), "report_html": str(html), "compare": [str(p) for p in args.compare]})
    else:
        print(f"{markdown}\n{html}")
    return 0


def _show_result(result: Any, args: argparse.Namespace, wall_s: float) -> int:
    from edgekit.report.markdown import latency_table, problems, results_table

    if args.json:
        print_json(
            {
                "build_dir": str(result.build_dir),
                "exit_code": result.exit_code,
                "passed": result.report.passed,
                "manifest": str(result.build_dir / "manifest.json"),
                "report": str(result.build_dir / "report.md"),
                "report_html": str(result.build_dir / "report.html"),
                "validation": result.report,
            }
        )
        return int(result.exit_code)
    from edgekit.model.reconstruction import describe

    print()
    print(results_table(result.report))
    for line in describe(result.manifest["model"].get("compression") or {}):
        print(line)
    print()
    print(latency_table(result.report))
    print()
    for line in problems(result.report):
        print(line)
    verdicts = {0: "all gates passed", 1: "a validation gate failed", 2: "an artifact could not be read",
                3: "a backend is unavailable"}  # fmt: skip
    verdict = verdicts.get(result.exit_code, "a toolchain failed")
    print(f"{verdict} (exit code {result.exit_code}) in {wall_s:.1f} s; report: {result.build_dir / 'report.md'}")
    return int(result.exit_code)


def _cmd_sweep(args: argparse.Namespace) -> int:
    from edgekit.explore.api import sweep_grid
    from edgekit.explore.sweep import progress_tally, rebuild_command
    from edgekit.explore.sweep_results import best_point

    progress, tally = progress_tally()  # drawn on a terminal only, and not with --json or --quiet
    try:
        result = sweep_grid(args.model, args.grid or None, args.target, out=args.out, tiny=args.tiny,
                            recipe=args.recipe, data=args.data, overrides=args.overrides, workers=args.workers,
                            address=args.address, retry_failed=args.retry_failed, on_progress=progress)  # fmt: skip
    finally:
        tally.close()
    sweep = result.spec
    chosen = best_point(result.rows, args.best) if args.best else None
    if args.json:
        print_json({"root": str(result.root), "ran": result.ran, "reused": result.reused, "failed": result.failed,
                     "wall_s": result.wall_s, "files": result.files, "rows": result.rows,
                     "best": chosen, "rebuild": rebuild_command(sweep, chosen) if chosen else None})  # fmt: skip
    else:
        print()
        print((result.root / "sweep.md").read_text())
        print(f"{len(result.rows)} points: {result.ran} run now, {result.reused} reused, {result.failed} failed, "
              f"in {result.wall_s:.1f} s on {result.workers} workers; results: {result.files.get('csv')}")  # fmt: skip
        if chosen:
            print(f"best for {args.best!r}: {chosen['point']} (accuracy {chosen.get('accuracy')}, "
                  f"metric {chosen.get('metric')})")  # fmt: skip
            print(f"rebuild it with:\n  {rebuild_command(sweep, chosen)}")
    return 1 if result.failed else 0


def _cmd_search(args: argparse.Namespace) -> int:
    from edgekit.explore.api import search_precision
    from edgekit.explore.sweep import rebuild_command

    result = search_precision(args.model, args.target, budget=args.budget, start=args.start, lowest=args.lowest,
                              out=args.out, tiny=args.tiny, overrides=args.overrides, workers=args.workers,
                              address=args.address)  # fmt: skip
    sweep = result.spec
    if args.json:
        print_json(result)
        return 0 if result.chosen else 1
    print(f"\nfloat accuracy {result.float_accuracy:.4f}; goal: accuracy >= {result.target_accuracy:.4f} "
          f"({result.trials} trials run now{', in one Ray session' if result.ray_starts else ''})")  # fmt: skip
    print("uniform precision:")
    for row in result.uniform:
        print(f"  {row['point']:<12} accuracy {row.get('accuracy', float('nan')):.4f}  LUT {row.get('lut', '-')}")
    if result.best_uniform:
        best = result.best_uniform
        print(f"best uniform within budget: {best['point']} (accuracy {best['accuracy']:.4f}, LUT {best.get('lut')})")
    if result.chosen is None:
        print("no per-layer precision met the budget; " + "; ".join(result.history))
        return 1
    chosen = result.chosen
    print(f"per-layer: accuracy {chosen['accuracy']:.4f}, LUT {chosen.get('lut')}")
    for layer, fields in result.layers.items():
        print(f"  {layer}: " + ", ".join(f"{k} {v}" for k, v in fields.items()))
    print(f"recipe: {result.recipe_folder}/recipe.toml; build it with:")
    extra = (" --tiny" if args.tiny else "") + "".join(f" --set {shlex.quote(o)}" for o in args.overrides)
    print(f"  edgekit compile {shlex.quote(str(result.recipe_folder))} --target {shlex.quote(args.target)}{extra}")
    print(f"(the same trial: {rebuild_command(sweep, chosen)})")
    return 0


COMMANDS = {
    "compile": _cmd_compile,
    "search": _cmd_search,
    "validate": _cmd_validate,
    "report": _cmd_report,
    "sweep": _cmd_sweep,
    "targets": cmd_targets,
    "models": cmd_models,
    "doctor": cmd_doctor,
    "ops": cmd_ops,
    "recipe": cmd_recipe,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from edgekit.core import progress

    quiet = getattr(args, "quiet", False) or args.json
    progress.configure(bars=not quiet, messages=not quiet)
    try:
        return COMMANDS[args.command](args)
    except EdgekitError as err:
        print(f"edgekit: error: {err.message}", file=sys.stderr)
        if err.log_path is not None:
            print(f"  log: {err.log_path}", file=sys.stderr)
        if err.hint:
            print(f"  hint: {err.hint}", file=sys.stderr)
        return err.exit_code
    except ModuleNotFoundError as err:
        if err.name not in ("torch", "sklearn", "torchvision"):
            raise
        print(f"edgekit: error: edgekit {args.command} needs the training part ({err.name} is not installed)",
              file=sys.stderr)  # fmt: skip
        print("  hint: pip install 'edgekit[train]' (the base install is the runtime a device needs)", file=sys.stderr)
        return 3
    except BrokenPipeError:  # output piped into head and the like
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("edgekit: interrupted; finished stages are kept, unfinished ones left nothing behind", file=sys.stderr)
        return 130
