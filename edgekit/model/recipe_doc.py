"""The recipe schema as a table: every top-level key of ``recipe.toml``, its type, default and meaning.

``edgekit recipe --schema`` prints it, docs/your-model.md shows it, and a test holds both to
:class:`edgekit.model.zoo.Recipe` (a key added there without a line here fails it), so the documentation cannot
fall behind the code.
"""

from __future__ import annotations

import dataclasses
from dataclasses import MISSING, fields
from typing import Any, get_type_hints

from edgekit.core.config import Settings
from edgekit.core.schema import describe_type
from edgekit.model.zoo import Recipe

__all__ = ["MEANINGS", "schema_rows", "schema_table"]

MEANINGS = {
    "schema_version": "recipe format version; this edgekit reads 1",
    "name": "the model's name (build folder, reports)",
    "description": "one line for `edgekit models`",
    "model": "the factory: 'model.py:build' in the recipe's folder, or 'package.module:build'",
    "data": "the loader: 'data.py:load', 'package.module:load', or 'edgekit.model.data_files:load' (the built-in "
    "loader of .npz, .npy, .h5, .csv and .parquet files; --data FILE chooses it)",
    "input_shape": "one sample's shape, without the batch axis: [16], [1, 28, 28]",
    "metric": "the score every target is judged by",
    "task": "classification: scores vs integer labels (cross-entropy); reconstruction: outputs vs the loader's "
    "targets, an autoencoder's own input (MSE); regression: outputs vs continuous targets (MSE)",
    "latent_layer": "reconstruction: the layer whose output is the compressed representation",
    "readout_bits": "bits per input value as read out of the detector (compression ratio in the report)",
    "default_targets": "the targets built when --target is not given",
    "train": "[train]: epochs, batch_size, learning_rate, weight_decay, optimizer, seed, threads, standardize",
    "export": "[export]: opset, top_name (the FPGA design's top module and HLS project; default: the model's name)",
    "latency": "[latency]: batch sizes and iteration limits of the latency measurement",
    "validation": "[validation]: max_samples, batch_size",
    "gates": "[gates]: pass/fail limits (min_metric, max_metric_drop_vs_float, agreement, FPGA budgets)",
    "quant": "[quant]: precision, method (qat, ptq, learned), per-layer precision under [quant.layers.NAME]",
    "prune": "[prune]: method (unstructured, structured, 2:4), sparsity, steps, fine-tuning",
    "synth": "[synth]: vendor C synthesis (enabled, timeout_s)",
    "model_options": "keyword arguments of the model factory",
    "data_options": "keyword arguments of the data loader (the built-in one: path, inputs, labels, test_path, "
    "test_fraction, seed, max_samples, classes)",
    "tiny": "[tiny]: the --tiny variant, any of the tables above (smaller model, less data, fewer epochs)",
    "sweep": "[sweep]: edgekit sweep's default grid and targets",
}

_SET_BY_EDGEKIT = ("folder", "source", "content_sha256")


def _default(field: dataclasses.Field[Any]) -> str:
    if field.default is not MISSING:
        value = field.default
        return "(required)" if value is MISSING else repr(list(value) if isinstance(value, tuple) else value)
    if field.default_factory is not MISSING:
        return "{}" if isinstance(field.default_factory(), dict) else repr(field.default_factory())
    return "(required)"


def schema_rows() -> list[tuple[str, str, str, str]]:
    """(key, type, default, meaning) for every key a recipe may set, in the order of :class:`Recipe`."""
    hints = get_type_hints(Recipe)
    settings = {f.name for f in fields(Settings)}
    rows = []
    for field in fields(Recipe):
        if field.name in _SET_BY_EDGEKIT:
            continue
        table = field.name in settings or field.name in ("tiny", "sweep")
        kind = "table" if table else describe_type(hints[field.name]).replace(" | ", ", ")  # Markdown-safe choices
        rows.append((field.name, kind, _default(field), MEANINGS[field.name]))
    return rows


def schema_table() -> str:
    """The schema as a Markdown table."""
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    lines += [f"| `{k}` | {t} | {d} | {m} |" for k, t, d, m in schema_rows()]
    return "\n".join(lines)
