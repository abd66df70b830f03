"""The one settings merge: defaults < target < recipe < tiny < --set, and its errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekit.core.config import Layer, Settings, merge_settings, parse_set_flags
from edgekit.core.errors import ConfigError
from edgekit.core.targets import load_target
from edgekit.model.zoo import resolve_model


def test_defaults_when_no_layer_sets_anything() -> None:
    assert merge_settings([]) == Settings()


def test_later_layers_win_and_tables_merge_key_by_key() -> None:
    settings = merge_settings(
        [
            Layer("target", {"latency": {"batch_sizes": [1, 8], "warmup_iters": 3}}),
            Layer("recipe", {"latency": {"batch_sizes": [2]}, "train": {"epochs": 4}}),
            parse_set_flags(["train.epochs=9"]),
        ]
    )
    assert settings.latency.batch_sizes == (2,)  # recipe over target
    assert settings.latency.warmup_iters == 3  # untouched key from the target survives
    assert settings.train.epochs == 9  # command line over recipe


def test_full_order_with_a_real_target_and_recipe() -> None:
    spec = resolve_model("jet_tagger")
    target = load_target("gpu-tensorrt-fp16")  # sets gates.max_abs_diff_vs_float = 0.05
    cli = parse_set_flags(["train.epochs=3"])
    layers = [target.settings_layer(), *spec.recipe.settings_layers(tiny=True), cli]
    settings = merge_settings(layers)
    assert settings.gates.max_abs_diff_vs_float == 0.05  # from the target
    assert settings.gates.min_metric == 0.6  # the recipe's [tiny] over the recipe's 0.85
    assert settings.model_options["hidden"] == [16, 8]  # tiny
    assert settings.train.epochs == 3  # --set over tiny's 2
    assert settings.train.batch_size == 512  # the recipe over the code default


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"train": {"epoch": 3}}, "unknown key 'epoch' in [train]"),
        ({"trian": {}}, "unknown key 'trian' in the top level"),
        ({"train": {"epochs": "many"}}, "train.epochs: expected an integer"),
        ({"train": {"epochs": -1}}, "train.epochs: -1 is out of range"),
        ({"train": {"optimizer": "lbfgs"}}, "'lbfgs' is not allowed"),
        ({"latency": {"batch_sizes": [1, 0]}}, "latency.batch_sizes: 0 is out of range"),
        ({"latency": {"batch_sizes": 4}}, "expected list of int"),
        ({"gates": {"min_metric": True}}, "gates.min_metric: expected a number"),
    ],
)
def test_bad_layers_name_source_key_and_problem(table: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError) as err:
        merge_settings([Layer("my_recipe.toml", table)])
    assert "my_recipe.toml" in str(err.value)
    assert message in str(err.value)


def test_unknown_key_hint_lists_allowed_keys() -> None:
    with pytest.raises(ConfigError) as err:
        merge_settings([Layer("x", {"train": {"epoch": 1}})])
    assert (
        err.value.hint
        == "allowed keys there: batch_size, epochs, learning_rate, optimizer, seed, standardize, threads, weight_decay"
    )
    assert err.value.exit_code == 2


def test_set_flags_parse_toml_values_and_bare_strings() -> None:
    layer = parse_set_flags(["latency.batch_sizes=[1, 64]", "gates.min_metric=0.5", "train.optimizer=sgd"])
    assert layer.table == {
        "latency": {"batch_sizes": [1, 64]},
        "gates": {"min_metric": 0.5},
        "train": {"optimizer": "sgd"},
    }


@pytest.mark.parametrize("flag", ["train.epochs", "=3", "train.epochs=1\ntrain"])
def test_malformed_set_flags(flag: str) -> None:
    with pytest.raises(ConfigError):
        merge_settings([parse_set_flags([flag])])


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(AttributeError):
        settings.train.epochs = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.model_options["x"] = 1  # type: ignore[index]


def test_recipe_with_bad_tiny_table_is_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    text = (
        Path(resolve_model("jet_tagger").recipe.source)
        .read_text()
        .replace("train = { epochs = 2 }", "train = { epoks = 2 }")
    )
    (folder / "recipe.toml").write_text(text)
    with pytest.raises(ConfigError, match=r"unknown key 'epoks' in \[tiny.train\]"):
        resolve_model(str(folder))


def test_default_gates_come_from_the_number_format_and_yield_to_profile_recipe_and_cli(tmp_path: Path) -> None:
    from edgekit.core.config import FORMAT_GATES, parse_set_flags
    from edgekit.core.targets import load_target
    from edgekit.pipeline.planning import plan_target

    source = Path(load_target("gpu-tensorrt-fp16").source).read_text()
    bare = source[: source.index("[gates]")]  # the profile without its own gates
    for precision in ("fp16", "bf16", "fp32"):
        path = tmp_path / f"bare-{precision}.toml"
        path.write_text(bare.replace('precision = "fp16"', f'precision = "{precision}"'))
        gates = plan_target(str(path), [], False).settings.gates
        assert gates.max_abs_diff_vs_float == FORMAT_GATES[precision]["max_abs_diff_vs_float"]
        assert gates.min_top1_agreement == FORMAT_GATES[precision]["min_top1_agreement"]
    # the shipped profile's own value wins over the format default, and --set over both
    assert plan_target("gpu-tensorrt-fp16", [], False).settings.gates.max_abs_diff_vs_float == 0.05
    cli = parse_set_flags(("gates.max_abs_diff_vs_float=0.2",))
    assert plan_target(str(tmp_path / "bare-fp16.toml"), [cli], False).settings.gates.max_abs_diff_vs_float == 0.2
    int8 = plan_target("cpu-onnxruntime-int8", [], True).settings.gates
    assert int8.max_abs_diff_vs_quantized == 0.0


def test_nested_layer_names_on_the_command_line_and_in_recipes(tmp_path: Path) -> None:
    from edgekit.core.config import Layer, merge_settings, parse_set_flags

    flags = parse_set_flags(
        ["quant.layers.encoder.0.fc.weight_bits=4", 'quant.layers."decoder.fc".activation_bits=5',
         "quant.layers.head.weight_bits=3"]
    )  # fmt: skip
    assert flags.table["quant"]["layers"] == {
        "encoder.0.fc": {"weight_bits": 4}, "decoder.fc": {"activation_bits": 5}, "head": {"weight_bits": 3}
    }  # fmt: skip
    recipe = tmp_path / "r.toml"
    recipe.write_text('[quant.layers."encoder.0.fc"]\nweight_bits = 4\n[quant.layers.decoder.fc]\nweight_bits = 6\n'
                      "[quant.layers.decoder]\nactivation_bits = 7\n")  # fmt: skip
    import tomllib

    settings = merge_settings([Layer(str(recipe), tomllib.loads(recipe.read_text()))])
    assert dict(settings.quant.layers) == {
        "encoder.0.fc": {"weight_bits": 4}, "decoder.fc": {"weight_bits": 6}, "decoder": {"activation_bits": 7}
    }  # fmt: skip
    with pytest.raises(ConfigError, match="unknown key 'weight_bitz'"):
        merge_settings([Layer("x", {"quant": {"layers": {"encoder.0.fc": {"weight_bitz": 4}}}})])


def test_relative_data_paths_are_the_recipes_folder_or_the_current_one(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from edgekit.core.config import absolute_set_flags, parse_set_flags
    from edgekit.model.zoo import load_recipe

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "recipe.toml").write_text(
        'schema_version = 1\nname = "m"\ndescription = ""\nmodel = "model.py:build"\ndata = "data.py:load"\n'
        'input_shape = [2]\n[data_options]\npath = "events.npz"\nlabels_file = "/abs/labels.csv"\nn = 3\n'
    )
    monkeypatch.chdir(tmp_path)
    (layer,) = load_recipe(folder / "recipe.toml").settings_layers(tiny=False)
    assert layer.table["data_options"] == {"path": str(folder / "events.npz"), "labels_file": "/abs/labels.csv",
                                           "n": 3}  # fmt: skip
    assert parse_set_flags(["data_options.path=mine.npz"]).table["data_options"]["path"] == str(tmp_path / "mine.npz")
    assert absolute_set_flags(["data_options.path=mine.npz", "train.epochs=2"]) == (
        f'data_options.path="{tmp_path / "mine.npz"}"',
        "train.epochs=2",
    )


def test_an_empty_table_from_the_command_line_clears_the_recipes() -> None:
    recipe = Layer("recipe.toml", {"model_options": {"hidden": [16, 8]}, "train": {"epochs": 3}})
    cleared = merge_settings([recipe, parse_set_flags(["model_options={}"])])
    assert dict(cleared.model_options) == {} and cleared.train.epochs == 3
    kept = merge_settings([recipe, parse_set_flags(["model_options.depth=2"])])
    assert dict(kept.model_options) == {"hidden": [16, 8], "depth": 2}


def test_the_design_top_is_the_models_name_made_an_identifier_or_a_checked_choice() -> None:
    from edgekit.core.config import ExportSettings, design_top_name

    assert design_top_name(ExportSettings(), "jet_tagger") == "jet_tagger"
    assert design_top_name(ExportSettings(), "3-layer tagger.v2") == "m_3_layer_tagger_v2"
    assert design_top_name(ExportSettings(), "module") == "module_top"  # a Verilog keyword
    assert design_top_name(ExportSettings(), "defines") == "defines_top"  # would meet hls4ml's defines.h
    assert design_top_name(ExportSettings(), "---") == "model"
    assert design_top_name(ExportSettings(top_name="L1_tagger_v2"), "jet_tagger") == "L1_tagger_v2"
    for bad in ("1tagger", "my-tagger", "wire", "a__b", "x" * 64, "_hidden"):
        with pytest.raises(ConfigError, match="top_name") as err:
            design_top_name(ExportSettings(top_name=bad), "jet_tagger", "--set")
        assert err.value.exit_code == 2 and err.value.hint
