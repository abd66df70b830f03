"""The quantizer's reading of a model: what average pooling and reshape forms it takes, and what it refuses."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from edgekit.core.errors import ConfigError
from edgekit.model.avg_pooling import avg_pool_of
from edgekit.model.quant_graph import analyze, fold_batchnorm, shapes


class Pool(nn.Module):
    def __init__(self, pool: object) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.pool = pool

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.pool(F.relu(self.conv(x)))  # type: ignore[operator]


def _pool(pool: object, size: int = 8) -> object:
    gm = fold_batchnorm(Pool(pool))
    modules = dict(gm.named_modules())
    node = (
        next(n for n in gm.graph.nodes if n.op == "call_module" and n.target == "pool")
        if isinstance(pool, nn.Module)
        else next(
            n
            for n in gm.graph.nodes
            if n.op in ("call_function", "call_method") and n.name.startswith(("avg", "mean", "adaptive"))
        )
    )
    return avg_pool_of(node, modules, shapes(gm, (1, size, size))[node.args[0].name][1:])


@pytest.mark.parametrize(
    ("pool", "kernel", "keep"),
    [
        (nn.AvgPool2d(2), (2, 2), True),
        (nn.AvgPool2d((2, 4)), (2, 4), True),
        (nn.AdaptiveAvgPool2d(1), (8, 8), True),
        (lambda x: F.avg_pool2d(x, 4), (4, 4), True),
        (lambda x: F.adaptive_avg_pool2d(x, (1, 1)), (8, 8), True),
        (lambda x: x.mean((2, 3)), (8, 8), False),
        (lambda x: torch.mean(x, dim=(-1, -2), keepdim=True), (8, 8), True),
    ],
)
def test_every_form_of_a_power_of_two_average_has_one_canonical_window(pool: object, kernel: tuple, keep: bool) -> None:
    found = _pool(pool)
    assert not isinstance(found, str), found
    assert found.kernel == kernel and found.keep_dims is keep and found.window == kernel[0] * kernel[1]
    x = torch.randn(3, 4, 8, 8)
    expected = pool(x)  # type: ignore[operator]
    torch.testing.assert_close(found.module()(x), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("pool", "size", "reason"),
    [
        (nn.AvgPool2d(3), 9, "3x3 = 9 values: 9 is not a power of two"),
        (nn.AdaptiveAvgPool2d(1), 6, "6x6 = 36 values"),
        (nn.AvgPool2d(2, padding=1), 8, "padding"),
        (nn.AvgPool2d(2, ceil_mode=True), 7, "ceil_mode"),
        (nn.AdaptiveAvgPool2d(2), 8, "only output size 1"),
        (lambda x: x.mean(1), 8, "a mean over axes 1"),
        (lambda x: x.mean(3), 8, "a mean over axes 3"),
    ],
)
def test_an_average_with_no_exact_fixed_point_form_is_refused_with_the_reason(
    pool: object, size: int, reason: str
) -> None:
    found = _pool(pool, size)
    assert isinstance(found, str) and reason in found, found
    with pytest.raises(ConfigError, match="cannot quantize") as err:
        analyze(Pool(pool), (1, size, size))
    assert reason in err.value.message


class Reshaped(nn.Module):
    def __init__(self, how: str) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.fc = nn.Linear(2 * 4 * 4, 3)
        self.how = how

    def forward(self, x):  # type: ignore[no-untyped-def]
        x = F.relu(self.conv(x))
        if self.how == "size":
            x = x.view(x.size(0), -1)
        elif self.how == "shape":
            x = x.reshape(x.shape[0], -1)
        elif self.how == "torch.reshape":
            x = torch.reshape(x, (x.shape[0], -1))
        elif self.how == "tuple":
            x = x.view((x.size(0), 2 * 4 * 4))
        else:
            x = torch.flatten(x, 1)
        return self.fc(x)


HOWS = ["size", "shape", "torch.reshape", "tuple", "flatten"]


@pytest.mark.parametrize("how", HOWS)
def test_the_batch_sized_reshape_idioms_are_quantizable(how: str) -> None:
    layers = analyze(Reshaped(how), (1, 4, 4)).layers
    assert [kind for _, kind in layers] == ["input", "conv2d", "relu", "linear"]


@pytest.mark.parametrize("how", HOWS)
def test_the_quantized_twin_reshapes_with_the_batch_left_free(how: str) -> None:
    pytest.importorskip("brevitas", reason="the quantized twin needs the quant extra: pip install 'edgekit[quant]'")

    from edgekit.core.config import QuantSettings
    from edgekit.core.precision import plan_quantization
    from edgekit.model.brevitas_model import build_quant_model

    model = Reshaped(how)
    info = analyze(model, (1, 4, 4))
    twin = build_quant_model(model, plan_quantization(QuantSettings(), "fixed", info.layers), (1, 4, 4))
    for node in twin.graph.nodes:  # no size computed from a tensor is left to be folded into a batch of 1
        assert node.op != "call_method" or node.target != "size", node
        assert not (node.op == "call_function" and node.target is getattr), node
    assert twin.eval()(torch.randn(3, 1, 4, 4)).shape == (3, 3)


class Activations(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.act = nn.Sigmoid()

    def forward(self, x):  # type: ignore[no-untyped-def]
        return F.tanh(torch.tanh(self.act(self.fc(x))).sigmoid())


def test_every_form_of_sigmoid_and_tanh_is_a_table_activation_with_the_right_sign() -> None:
    from edgekit.core.config import QuantSettings
    from edgekit.core.precision import plan_quantization

    info = analyze(Activations(), (4,))
    assert [kind for _, kind in info.layers] == ["input", "linear", "sigmoid", "tanh", "sigmoid", "tanh"]
    assert info.tables == {"act", "tanh", "sigmoid", "tanh_1"}
    plan = plan_quantization(QuantSettings(), "fixed", info.layers)
    # In the fixed family activations are unsigned unless they can be negative: tanh's output can.
    assert {layer.kind: layer.activation_signed for layer in plan.layers[2:]} == {"sigmoid": False, "tanh": True}


@pytest.mark.parametrize(
    ("softmax", "head"),
    [
        (nn.Softmax(dim=1), "softmax"),
        (nn.LogSoftmax(dim=-1), "log_softmax"),
        (lambda x: F.softmax(x, dim=1), "softmax"),
    ],
)
def test_a_softmax_head_is_left_to_the_host(softmax: object, head: str) -> None:
    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 3)
            self.softmax = softmax

        def forward(self, x):  # type: ignore[no-untyped-def]
            return self.softmax(self.fc(x))  # type: ignore[operator]

    info = analyze(Head(), (4,))
    assert info.softmax_head == head and [kind for _, kind in info.layers] == ["input", "linear"]


@pytest.mark.parametrize(
    "forward",
    [
        lambda self, x: self.fc(F.softmax(self.fc(x), dim=1)),  # inside the model
        lambda self, x: F.softmax(self.fc(x), dim=0),  # over the batch
        lambda self, x: F.softmax(self.fc(x), dim=1) + 1,  # not the last step
    ],
)
def test_any_other_softmax_is_refused_with_the_reason(forward: object) -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 3)

    Net.forward = forward  # type: ignore[assignment,method-assign]
    with pytest.raises(ConfigError, match=r"no exact quantized softmax yet .* left to the host"):
        analyze(Net(), (3,))


def test_an_unknown_layer_is_still_refused_by_name() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.GELU())
    with pytest.raises(ConfigError, match=r"1 \(GELU\)"):
        analyze(model, (4,))


def _model_folder(folder, model_source: str, input_shape: str, extra: str = ""):  # type: ignore[no-untyped-def]
    """A user's model folder whose data loader planning must never call."""
    folder.mkdir()
    (folder / "model.py").write_text(model_source)
    (folder / "recipe.toml").write_text(
        f'schema_version = 1\nname = "{folder.name}"\ndescription = "a user model"\nmodel = "model.py:build"\n'
        f'data = "data.py:load"\ninput_shape = {input_shape}\nmetric = "accuracy"\n'
        f'default_targets = ["cpu-onnxruntime"]\n{extra}'
    )
    (folder / "data.py").write_text("def load():\n    raise AssertionError('planning must not load data')\n")
    return folder


def test_grouped_convolutions_hls4ml_cannot_build_are_refused_before_any_work(tmp_path) -> None:  # type: ignore[no-untyped-def]
    dscnn = (
        "from torch import nn\n"
        "def build(groups=4):\n"
        "    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(),\n"
        "                         nn.Conv2d(4, 4, 3, padding=1, groups=groups), nn.ReLU(), nn.Conv2d(4, 4, 1),\n"
        "                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))\n"
    )
    folder = _model_folder(tmp_path / "dscnn", dscnn, "[1, 8, 8]")
    from edgekit.pipeline.plan import plan_build
    from edgekit.pipeline.request import CompileRequest

    def plan(*targets: str):  # type: ignore[no-untyped-def]
        return plan_build(CompileRequest(str(folder), targets, out=tmp_path / "b", quant="w8a8"))

    # A depthwise convolution (groups == in == out) goes to hls4ml; the RTL path has no grouped convolution.
    assert "fixed" in plan("fpga-xczu7ev-stream", "fpga-xcvu13p").quant_plans
    with pytest.raises(ConfigError, match=r"fpga-xcvu13p-rtl: 2: a grouped \(depthwise\) convolution: the RTL path"):
        plan("fpga-xcvu13p-rtl")
    # Two groups of two channels: hls4ml builds no such layer, so every FPGA target refuses it.
    folder = _model_folder(tmp_path / "dscnn2", dscnn, "[1, 8, 8]", "[model_options]\ngroups = 2\n")
    with pytest.raises(ConfigError, match=r"fpga-xcvu13p: 2: a grouped convolution that is not depthwise"):
        plan("fpga-xcvu13p")
    planned = plan("cpu-onnxruntime-int8")
    assert "int8" in planned.quant_plans  # the INT8 export is checked against brevitas when it is built


def test_the_rtl_path_refuses_a_table_activation_before_any_work(tmp_path) -> None:  # type: ignore[no-untyped-def]
    tagger = (
        "from torch import nn\ndef build():\n    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))\n"
    )
    folder = _model_folder(tmp_path / "tagger", tagger, "[4]")
    from edgekit.pipeline.plan import plan_build
    from edgekit.pipeline.request import CompileRequest

    table = r"fpga-xcvu13p-rtl: 1: a sigmoid, tanh, LeakyReLU, hard sigmoid or clamp \(a table activation\)"
    with pytest.raises(ConfigError, match=table):
        plan_build(CompileRequest(str(folder), ("fpga-xcvu13p-rtl",), out=tmp_path / "b", quant="w8a8"))
    assert (
        "fixed"
        in plan_build(CompileRequest(str(folder), ("fpga-xcvu13p",), out=tmp_path / "b", quant="w8a8")).quant_plans
    )


def test_decoder_layers_transposed_convolutions_and_nearest_upsampling_are_quantizable() -> None:
    decoder = nn.Sequential(
        nn.ConvTranspose2d(2, 2, 2, stride=2), nn.ReLU(), nn.Upsample(scale_factor=2), nn.Conv2d(2, 1, 3, padding=1)
    )
    info = analyze(decoder, (2, 4, 4))
    assert [kind for _, kind in info.layers] == ["input", "conv_transpose2d", "relu", "conv2d"]
    assert info.upsamples == {"2"}
    assert [kind for _, kind in analyze(nn.Sequential(nn.ConvTranspose1d(2, 2, 3)), (2, 8)).layers][1:] == [
        "conv_transpose1d"
    ]
    with pytest.raises(ConfigError, match=r"1 \(Upsample\): only mode='nearest' by whole scale factors"):
        analyze(nn.Sequential(nn.Conv2d(1, 1, 1), nn.Upsample(scale_factor=2, mode="bilinear")), (1, 4, 4))


@pytest.mark.parametrize(
    ("target", "reader"),
    [("fpga-xczu7ev-stream", "hls4ml 1.3.0's ONNX reader"), ("fpga-xcvu13p-rtl", "edgekit's RTL path")],
)
def test_fpga_targets_refuse_a_transposed_convolution_with_what_to_use_instead(target: str, reader: str) -> None:
    """The format's rules pass it; the backend's own rule (its quant_problems hook) names the layer."""
    from edgekit.backends import get_backend
    from edgekit.backends.base import ModelFacts
    from edgekit.core.config import QuantSettings
    from edgekit.core.precision import legality_problems, plan_quantization
    from edgekit.core.targets import load_target

    info = analyze(nn.Sequential(nn.ConvTranspose2d(2, 2, 2, stride=2)), (2, 4, 4))
    plan = plan_quantization(QuantSettings(), "fixed", info.layers)
    profile = load_target(target)
    assert legality_problems(plan, profile) == []
    (problem,) = get_backend(profile.backend).quant_problems(plan, ModelFacts(info, (2, 4, 4)), profile)
    assert problem.startswith(f"0: a transposed convolution: {reader} has no ConvTranspose")
    assert "Upsample(scale_factor=2, mode='nearest') and a Conv" in problem


class Recurrent(nn.Module):
    def __init__(self, cell: type[nn.RNNBase] = nn.LSTM) -> None:
        super().__init__()
        self.rnn = cell(4, 8, batch_first=True)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):  # type: ignore[no-untyped-def]
        out, _ = self.rnn(x)
        return self.fc(out[:, -1])


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU])
def test_a_recurrent_layer_is_refused_for_quant_by_name_alone(cell: type[nn.RNNBase]) -> None:
    with pytest.raises(ConfigError) as err:
        analyze(Recurrent(cell), (6, 4))
    message = str(err.value)
    assert f"rnn ({cell.__name__}): recurrent layers have no quantized form in edgekit yet" in message
    assert "getitem" not in message  # the tuple it returns and out[:, -1] are not listed as layers


def test_the_fpga_float_path_refuses_recurrent_layers_before_any_work(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rnn = (
        "from torch import nn\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.gru = nn.GRU(4, 8, batch_first=True)\n"
        "        self.fc = nn.Linear(8, 2)\n"
        "    def forward(self, x):\n"
        "        return self.fc(self.gru(x)[0][:, -1])\n"
        "def build():\n"
        "    return Net()\n"
    )
    folder = _model_folder(tmp_path / "rnn", rnn, "[6, 4]")
    from edgekit.pipeline.plan import plan_build
    from edgekit.pipeline.request import CompileRequest

    with pytest.raises(ConfigError, match=r"fpga-xcvu13p: gru \(GRU\): hls4ml 1.3.0's recurrent kernels"):
        plan_build(CompileRequest(str(folder), ("cpu-onnxruntime", "fpga-xcvu13p"), out=tmp_path / "b"))
    assert plan_build(CompileRequest(str(folder), ("cpu-onnxruntime",), out=tmp_path / "b")).plans


def test_the_rtl_path_refuses_a_model_too_large_to_unroll_before_any_work(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    from edgekit.core.targets import targets_dir
    from edgekit.pipeline.plan import plan_build
    from edgekit.pipeline.request import CompileRequest

    tagger = (
        "from torch import nn\ndef build():\n    return nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 5))"
    )
    folder = _model_folder(tmp_path / "tagger", tagger, "[16]")
    profile = tmp_path / "small-rtl.toml"  # 16 x 64 + 64 x 5 = 1,344 multiplications dense
    shipped = (targets_dir() / "fpga-xcvu13p-rtl.toml").read_text()
    profile.write_text(shipped.replace("[backend_options]\n", "[backend_options]\nmax_multiplies = 1000\n"))

    def plan(prune: str | None, *overrides: str):  # type: ignore[no-untyped-def]
        request = CompileRequest(str(folder), (str(profile),), tmp_path / "b", quant="w6a8", prune=prune)
        return plan_build(dataclasses.replace(request, overrides=overrides))

    with pytest.raises(
        ConfigError, match=r"about 1,344 of them .*layer 0: 1,024\); the target builds up to 1,000"
    ) as err:
        plan(None)
    assert "fpga-xczu7ev-stream" in err.value.hint and "max_multiplies" in err.value.hint
    assert "fixed" in plan("0.5").quant_plans  # 512 + 160 after the planned pruning
    with pytest.raises(ConfigError, match=r"about 1,184 of them"):  # layer 0 left dense: 1,024 + 160
        plan("0.5", 'prune.exclude=["0"]')


def test_hls4ml_io_parallel_refuses_convolutions_too_large_to_compile_before_any_work(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    from edgekit.core.targets import targets_dir
    from edgekit.pipeline.plan import plan_build
    from edgekit.pipeline.planning import window_copies
    from edgekit.pipeline.request import CompileRequest

    # A CIFAR-sized stem at full resolution: 32x32 positions x 3x3 kernel x (3 + 16 + 16) input channels.
    cnn = (
        "from torch import nn\n"
        "def build():\n"
        "    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1),\n"
        "        nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1),\n"
        "        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4))\n"
    )
    folder = _model_folder(tmp_path / "cnn", cnn, "[3, 32, 32]")
    request = CompileRequest(str(folder), ("cpu-onnxruntime", "fpga-xcvu13p"), out=tmp_path / "b")
    from edgekit.model.zoo import resolve_model

    copies = window_copies(resolve_model(str(folder)).source, (3, 32, 32))
    assert copies == [("0", 1024 * 9 * 3), ("2", 1024 * 9 * 16), ("4", 1024 * 9 * 16), ("6", 1024 * 9 * 16)]
    for quant in (None, "w6a8"):  # the float path to hls4ml and the quantized one build the same convolutions
        expected = r"fpga-xcvu13p: .* make 470,016 of them \(the most in layer 2: 147,456\); .* builds up to 250,000"
        with pytest.raises(ConfigError, match=expected) as err:
            plan_build(dataclasses.replace(request, quant=quant))
        assert "fpga-xczu7ev-stream" in err.value.hint and "max_window_copies" in err.value.hint
    assert plan_build(dataclasses.replace(request, targets=("fpga-xczu7ev-stream",), quant="w6a8")).plans
    profile = tmp_path / "big-fpga.toml"  # a copy of the profile with a higher limit takes it
    shipped = (targets_dir() / "fpga-xcvu13p.toml").read_text()
    assert "[backend_options]" not in shipped
    profile.write_text(shipped.replace('name = "fpga-xcvu13p"', 'name = "big-fpga"')
                       + "\n[backend_options]\nmax_window_copies = 500000\nbuild_timeout_s = 3600\n")  # fmt: skip
    assert plan_build(dataclasses.replace(request, targets=(str(profile),), quant="w6a8")).plans


def test_element_wise_products_are_planned_per_target_before_any_work(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    from edgekit.pipeline.plan import plan_build
    from edgekit.pipeline.request import CompileRequest

    # A squeeze-and-excitation block: the feature map times a per-channel gate of shape (N, C, 1, 1).
    se = (
        "import torch\nfrom torch import nn\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2d(1, 4, 3, padding=1)\n"
        "        self.squeeze = nn.Conv2d(4, 4, 1)\n"
        "        self.fc = nn.Linear(64, 3)\n"
        "    def forward(self, x):\n"
        "        x = torch.relu(self.conv(x))\n"
        "        x = x * torch.sigmoid(self.squeeze(x.mean((2, 3), keepdim=True)))\n"
        "        return self.fc(torch.flatten(x, 1))\n"
        "def build():\n"
        "    return Net()\n"
    )
    folder = _model_folder(tmp_path / "se", se, "[1, 4, 4]")
    request = CompileRequest(str(folder), ("cpu-onnxruntime-int8",), out=tmp_path / "b", quant="w8a8")
    assert plan_build(request).quant_plans["int8"].layer("mul").kind == "mul"
    with pytest.raises(ConfigError, match=r"fpga-xcvu13p: mul: a product of feature maps"):
        plan_build(dataclasses.replace(request, targets=("fpga-xcvu13p",)))
    with pytest.raises(ConfigError, match=r"fpga-xcvu13p-rtl: mul: an element-wise product \(a \* b\): the RTL"):
        plan_build(dataclasses.replace(request, targets=("fpga-xcvu13p-rtl",), quant="w6a8"))
    with pytest.raises(ConfigError, match=r"mul: a product of 16-bit operands: .* up to 12 bits"):
        plan_build(dataclasses.replace(request, targets=("fpga-xczu7ev-stream",), quant="w8a16"))
    scaled = _model_folder(tmp_path / "scaled", "from torch import nn\nclass Net(nn.Module):\n    def __init__(self):\n"
                           "        super().__init__()\n        self.fc = nn.Linear(4, 2)\n    def forward(self, x):\n"
                           "        return self.fc(x) * 0.5\ndef build():\n    return Net()\n", "[4]")  # fmt: skip
    with pytest.raises(ConfigError, match=r"cannot quantize: mul \(call_function mul\)"):
        plan_build(dataclasses.replace(request, model=str(scaled)))


def test_an_image_input_that_feeds_two_branches_is_refused_for_hls4ml_before_any_work(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    from edgekit.pipeline.plan import plan_build
    from edgekit.pipeline.request import CompileRequest

    two = (
        "import torch\nfrom torch import nn\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.a = nn.Conv2d(1, 4, 3, padding=1)\n"
        "        self.b = nn.Conv2d(1, 4, 5, padding=2)\n"
        "        self.fc = nn.Linear(4, 2)\n"
        "    def forward(self, x):\n"
        "        n = x.size(0)\n"
        "        return self.fc((torch.relu(self.a(x)) + torch.relu(self.b(x))).mean((2, 3)).view(n, -1))\n"
        "def build():\n"
        "    return Net()\n"
    )
    folder = _model_folder(tmp_path / "two", two, "[1, 8, 8]")
    request = CompileRequest(str(folder), ("fpga-xczu7ev-stream",), out=tmp_path / "b", quant="w8a8")
    with pytest.raises(ConfigError, match=r"fpga-xczu7ev-stream: the model's input feeds 2 layers \(a, b\)"):
        plan_build(request)
    assert plan_build(dataclasses.replace(request, targets=("cpu-onnxruntime-int8",))).quant_plans
    assert analyze(nn.Sequential(nn.Conv2d(1, 2, 3)), (1, 4, 4)).input_users == ()


AUTOENCODER = """from torch import nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self, skip=False):
        super().__init__()
        self.skip = skip
        self.enc = nn.Linear(8, 4)
        self.enc_relu = nn.ReLU()
        self.dec = nn.ConvTranspose1d(1, 1, 2, stride=2)

    def forward(self, x):
        z = self.enc_relu(self.enc(x))
        y = self.dec(z.view(z.size(0), 1, 4)).flatten(1)
        return y + x if self.skip else y


def build(skip=False):
    return Net(skip)
"""


def test_deploy_until_cuts_the_quantized_model_at_a_relu_before_any_work(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from edgekit.pipeline.plan import plan_build
    from edgekit.pipeline.request import CompileRequest

    folder = _model_folder(tmp_path / "ae", AUTOENCODER, "[8]")

    def plan(*overrides: str, target: str = "fpga-xcvu13p"):  # type: ignore[no-untyped-def]
        return plan_build(CompileRequest(str(folder), (target,), tmp_path / "b", quant="w6a8", overrides=overrides))

    # the whole model: hls4ml has no transposed convolution
    with pytest.raises(ConfigError, match=r"fpga-xcvu13p: dec: a transposed convolution"):
        plan()
    # the encoder alone: the decoder runs on the host, so only the deployed layers meet the target's rules
    planned = plan("quant.deploy_until=enc_relu")
    fixed = planned.quant_plans["fixed"]
    assert fixed.host_tail == "enc_relu" and [layer.name for layer in fixed.deployed()][-1] == "enc_relu"
    assert "dec" in {layer.name for layer in fixed.layers} - {layer.name for layer in fixed.deployed()}
    assert plan("quant.deploy_until=enc_relu", target="fpga-xcvu13p-rtl").quant_plans["fixed"].host_tail
    with pytest.raises(ConfigError, match=r"quant.deploy_until = 'enc' is not a ReLU of the model") as err:
        plan("quant.deploy_until=enc")
    assert "enc_relu" in err.value.hint
    skip = _model_folder(tmp_path / "skip", AUTOENCODER, "[8]", "[model_options]\nskip = true\n")
    with pytest.raises(ConfigError, match=r"the layers after it also read .*input_quant.*cannot be cut there"):
        plan_build(CompileRequest(str(skip), ("cpu-onnxruntime-int8",), tmp_path / "c", quant="int8",
                                  overrides=("quant.deploy_until=enc_relu",)))  # fmt: skip


def test_a_latent_layer_the_model_lacks_is_refused_before_any_work(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from edgekit.pipeline.plan import plan_build
    from edgekit.pipeline.request import CompileRequest

    folder = tmp_path / "ae"
    folder.mkdir()
    (folder / "model.py").write_text(AUTOENCODER)
    (folder / "data.py").write_text("def load():\n    raise AssertionError('planning must not load data')\n")
    (folder / "recipe.toml").write_text(
        'schema_version = 1\nname = "ae"\ndescription = "a user autoencoder"\nmodel = "model.py:build"\n'
        'data = "data.py:load"\ninput_shape = [8]\ntask = "reconstruction"\nmetric = "psnr"\n'
        'latent_layer = "latent_relu"\ndefault_targets = ["cpu-onnxruntime"]\n'
    )
    with pytest.raises(ConfigError, match="the recipe's latent_layer 'latent_relu' is not a layer") as err:
        plan_build(CompileRequest(str(folder), out=tmp_path / "b"))
    assert "enc_relu" in err.value.hint
    assert not (tmp_path / "b").exists()


def test_a_model_that_does_not_run_on_the_recipes_input_shape_is_a_config_error_naming_the_layer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from edgekit.core.errors import ConfigError
    from edgekit.model.quant_graph import analyze

    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(200, 10))  # sized for 9x9 maps
    with pytest.raises(ConfigError, match=r"does not run on an input of shape \(1, 1, 8, 8\) at 2: RuntimeError: mat1"):
        analyze(model, (1, 8, 8))
    assert "Traceback" not in capsys.readouterr().err  # said once, by the error


class Clamps(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.relu6 = nn.ReLU6()
        self.hardtanh = nn.Hardtanh(-2.0, 3.0)

    def forward(self, x):  # type: ignore[no-untyped-def]
        x = self.fc(x)
        a = self.hardtanh(self.relu6(x)) + F.hardtanh(x)
        b = F.relu6(x) + torch.clamp(x, -1, 1) + x.clamp(min=0.5, max=4) + torch.clip(x, 0, 1)
        return a + b + F.hardtanh(x, min_val=0.0, max_val=0.25)


def test_every_form_of_a_clamp_with_constant_bounds_is_a_table_activation_signed_where_it_can_be_negative() -> None:
    from edgekit.core.config import QuantSettings
    from edgekit.core.precision import plan_quantization

    info = analyze(Clamps(), (4,))
    bounds = {name: (low, high) for name, low, high in info.clamps}
    assert bounds == {
        "relu6": (0.0, 6.0), "hardtanh": (-2.0, 3.0), "hardtanh_1": (-1.0, 1.0), "relu6_1": (0.0, 6.0),
        "clamp": (-1.0, 1.0), "clamp_1": (0.5, 4.0), "clip": (0.0, 1.0), "hardtanh_2": (0.0, 0.25),
    }  # fmt: skip
    assert info.tables >= set(bounds)
    plan = plan_quantization(QuantSettings(), "fixed", info.layers, info.nonnegative)
    signed = {layer.name: layer.activation_signed for layer in plan.layers if layer.kind == "clamp"}
    assert signed == {name: low < 0 for name, (low, _) in bounds.items()}


@pytest.mark.parametrize(
    "forward",
    [lambda x: torch.clamp(x, min=0.0), lambda x: x.clamp(x.mean(), 1.0), lambda x: torch.clamp(x, 1.0, -1.0)],
    ids=["one bound", "a tensor bound", "bounds reversed"],
)
def test_a_clamp_without_two_increasing_constant_bounds_is_refused_with_the_reason(forward: object) -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):  # type: ignore[no-untyped-def]
            return forward(self.fc(x))  # type: ignore[operator]

    with pytest.raises(ConfigError, match="a clamp needs two constant bounds, lower < upper"):
        analyze(Net(), (4,))


def test_hls4ml_refuses_a_clamp_it_has_no_kernel_for_before_any_work(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from edgekit.pipeline.plan import plan_build
    from edgekit.pipeline.request import CompileRequest

    def plan(model: str, *targets: str):  # type: ignore[no-untyped-def]
        tagger = f"import torch\nfrom torch import nn\ndef build():\n    return {model}\n"
        folder = _model_folder(tmp_path / str(len(list(tmp_path.iterdir()))), tagger, "[4]")
        return plan_build(CompileRequest(str(folder), targets, out=tmp_path / "b", quant="w8a8"))

    relu6 = "nn.Sequential(nn.Linear(4, 8), nn.ReLU6(), nn.Linear(8, 2))"
    assert "fixed" in plan(relu6, "fpga-xcvu13p").quant_plans
    with pytest.raises(ConfigError, match=r"fpga-xczu7ev-stream: 1: a clamp to \[0, 6\]: hls4ml has no io_stream"):
        plan(relu6, "fpga-xczu7ev-stream")
    hardtanh = "nn.Sequential(nn.Linear(4, 8), nn.Hardtanh(), nn.Linear(8, 2))"
    assert "fixed" in plan(hardtanh, "fpga-xczu7ev-stream", "fpga-xcvu13p").quant_plans
    wide = "nn.Sequential(nn.Linear(4, 8), nn.Hardtanh(-3, 3), nn.Linear(8, 2))"
    with pytest.raises(ConfigError, match=r"fpga-xcvu13p: 1: a clamp to \[-3, 3\]: hls4ml has no kernel for it"):
        plan(wide, "fpga-xcvu13p")
    assert "int8" in plan(wide, "cpu-onnxruntime-int8").quant_plans
