"""The commands that list and explain without building: ``edgekit targets``, ``models``, ``ops``, ``recipe``,
``doctor``, and the JSON printer every command's ``--json`` uses."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edgekit.core.errors import EdgekitError

__all__ = ["add_listings", "cmd_doctor", "cmd_models", "cmd_ops", "cmd_recipe", "cmd_targets", "print_json"]


def add_listings(sub: Any) -> None:
    t = sub.add_parser("targets", help="list target profiles, or show one")
    t.add_argument("name", nargs="?", help="a profile name or TOML path to show in full")
    t.add_argument("--json", action="store_true")

    m = sub.add_parser("models", help="list the model zoo")
    m.add_argument("--json", action="store_true")

    o = sub.add_parser("ops", help="which layers each target family takes under --quant: exact, host or refused")
    o.add_argument("--json", action="store_true")

    rc = sub.add_parser("recipe", help="the recipe schema: every top-level key of recipe.toml, its type and default")
    rc.add_argument("--schema", action="store_true", help="print the schema (the default, for now the only view)")
    rc.add_argument("--json", action="store_true")

    d = sub.add_parser("doctor", help="which toolchains are present and what each enables")
    d.add_argument("--json", action="store_true")


def print_json(data: Any) -> None:
    from edgekit.core.jsonio import dumps

    print(dumps(data))


def cmd_targets(args: argparse.Namespace) -> int:
    from edgekit.backends import get_backend
    from edgekit.core.targets import list_targets, load_target

    if args.name:
        profile = load_target(args.name)
        if args.json:
            print_json(profile)
        else:
            print(Path(profile.source).read_text(), end="")
        return 0
    rows: list[dict[str, Any]] = []
    for profile in list_targets():
        try:
            backend = get_backend(profile.backend)
            reason = backend.unavailable_reason()
            if reason is None:
                backend.check_target(profile)  # a program this profile needs (Verilator, yosys) may be missing
        except EdgekitError as err:
            reason = err.message
        rows.append(
            {
                "name": profile.name,
                "family": profile.family,
                "backend": profile.backend,
                "precision": profile.precision,
                "available": reason is None,
                "reason": reason or "",
                "description": profile.description,
            }
        )
    if args.json:
        print_json(rows)
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        state = "available" if r["available"] else "unavailable"
        kind = f"{r['family']:<4}  {r['backend']:<11}  {r['precision']:<5}"
        print(f"{r['name']:<{width}}  {kind}  {state:<11}  {r['description']}")
        if not r["available"]:
            print(f"{'':<{width}}  -> {r['reason']}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from edgekit.model.zoo import list_models

    recipes = list_models()
    if args.json:
        print_json(
            [
                {
                    "name": r.name,
                    "description": r.description,
                    "input_shape": r.input_shape,
                    "metric": r.metric,
                    "default_targets": r.default_targets,
                    "folder": r.folder,
                }
                for r in recipes
            ]
        )
        return 0
    width = max(len(r.name) for r in recipes)
    for r in recipes:
        print(f"{r.name:<{width}}  input {tuple(r.input_shape)!s:<10}  {r.metric:<8}  {r.description}")
    return 0


def cmd_ops(args: argparse.Namespace) -> int:
    from edgekit.pipeline.coverage import COLUMNS, HEADERS, OPS, details, rows
    from edgekit.report.markdown import _table

    if args.json:
        print_json(
            [
                {"layer": op.name, "forms": op.forms, "float": "float", **{c: op.status[c] for c in COLUMNS},
                 "reasons": op.reasons, "evidence": op.evidence, "notes": op.notes}
                for op in OPS
            ]
        )  # fmt: skip
        return 0
    targets = ", ".join(f"{HEADERS[c]}: {t}" for c, (t, _) in COLUMNS.items())
    print(f"Layers under --quant, checked before any training ({targets}).")
    print("exact: bit-exact against brevitas (gated in every build); host: the host applies it to exact logits;")
    print("refused: the check stops the build with the reason; float: the float targets (cpu-onnxruntime, ...).")
    print()
    print(_table(["layer", "float targets", *(HEADERS[c] for c in COLUMNS)], rows(), right=set()))
    print()
    print("\n".join(details()))
    print()
    print("The forms each row covers, and the tests behind each exact column: edgekit ops --json")
    return 0


def cmd_recipe(args: argparse.Namespace) -> int:
    from edgekit.model.recipe_doc import schema_rows, schema_table

    if args.json:
        print_json([{"key": k, "type": t, "default": d, "meaning": m} for k, t, d, m in schema_rows()])
        return 0
    print("recipe.toml: the top-level keys (tables hold settings; edgekit sets folder, source and content_sha256).")
    print()
    print(schema_table())
    print()
    print("Every key inside the setting tables, with its type and allowed values: docs/settings.md.")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from edgekit.core.toolchains import doctor

    found = doctor()
    if args.json:
        print_json(found)
        return 0
    width = max(len(t.name) for t in found)
    for t in found:
        state = f"{t.version}" if t.found else "missing"
        print(f"{t.name:<{width}}  {state:<12}  {t.enables}")
        if not t.found and t.hint:
            print(f"{'':<{width}}  {'':<12}  -> {t.hint}")
    return 0
