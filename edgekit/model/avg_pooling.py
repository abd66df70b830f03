"""Average pooling in one canonical form (torch.fx; no brevitas here): a window or a global average, whichever
of torch's modules, functions or ``x.mean`` the model wrote, or why it has no exact quantized form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch.nn.functional as F
from torch import fx, nn

__all__ = ["AvgPool", "avg_pool_of"]


@dataclass(frozen=True)
class AvgPool:
    """An average pooling in one canonical form: a window (kernel, stride) or global (every position)."""

    dims: int  # spatial axes: 1 or 2
    kernel: tuple[int, ...]  # a global average: the whole input
    stride: tuple[int, ...]
    window: int  # how many values each output averages
    keep_dims: bool = True  # False: a mean that drops the spatial axes, (N, C, H, W) -> (N, C)

    def module(self) -> nn.Module:
        """The plain torch layer that computes it: a global average is one window over the whole input,
        so every target sees one operator (ONNX AveragePool) whatever form the user wrote."""
        pool: nn.Module
        if self.dims == 1:
            pool = nn.AvgPool1d(self.kernel[0], self.stride[0])
        else:
            pool = nn.AvgPool2d((self.kernel[0], self.kernel[1]), (self.stride[0], self.stride[1]))
        return pool if self.keep_dims else nn.Sequential(pool, nn.Flatten(1))


def _pair(value: object, dims: int) -> tuple[int, ...]:
    if isinstance(value, (tuple, list)):
        return tuple(int(v) for v in value)
    return (int(value),) * dims  # type: ignore[call-overload]


def _arguments(node: fx.Node, names: tuple[str, ...], defaults: dict[str, object]) -> dict[str, object]:
    """A call's arguments by name (torch's functional forms are builtins without a signature to bind)."""
    bound = dict(defaults)
    bound.update(zip(names, node.args[1:], strict=False))
    bound.update(node.kwargs)
    return bound


def avg_pool_of(node: fx.Node, modules: dict[str, nn.Module], input_shape: tuple[int, ...]) -> AvgPool | str:
    """The canonical form of an average-pooling node, or why it has no exact quantized form.

    ``input_shape`` is the node's input without the batch axis: (channels, spatial...). The mean of
    integers over a power-of-two window is exact in fixed point (a shift); over any other count it is
    not, and hls4ml, ONNX Runtime and the RTL path would each round it their own way.
    """
    dims = len(input_shape) - 1
    if dims not in (1, 2):
        return f"average pooling of a {len(input_shape) + 1}-D tensor (1-D and 2-D pooling only)"
    spatial = input_shape[1:]
    keep_dims = True
    kernel: tuple[int, ...] = ()
    stride: tuple[int, ...] = ()
    padding: object = 0
    ceil_mode: object = False
    divisor: object = None
    output_size: object = None
    if node.op == "call_module":
        module = modules[str(node.target)]
        if isinstance(module, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)):
            output_size = module.output_size
        else:
            assert isinstance(module, (nn.AvgPool1d, nn.AvgPool2d))
            kernel, stride = _pair(module.kernel_size, dims), _pair(module.stride or module.kernel_size, dims)
            padding, ceil_mode = module.padding, module.ceil_mode
            divisor = getattr(module, "divisor_override", None)
    elif node.target in (F.adaptive_avg_pool1d, F.adaptive_avg_pool2d):
        output_size = _arguments(node, ("output_size",), {})["output_size"]
    elif node.target in (F.avg_pool1d, F.avg_pool2d):
        names = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")
        args = _arguments(node, names, {"stride": None, "padding": 0, "ceil_mode": False, "divisor_override": None})
        kernel = _pair(args["kernel_size"], dims)
        stride = _pair(args["stride"], dims) if args["stride"] else kernel
        padding, ceil_mode, divisor = args["padding"], args["ceil_mode"], args["divisor_override"]
    else:  # torch.mean / x.mean
        args = _arguments(node, ("dim", "keepdim"), {"dim": None, "keepdim": False})
        axes = args["dim"]
        axes = tuple(axes) if isinstance(axes, (tuple, list)) else (axes,)
        rank = len(input_shape) + 1
        if None in axes or sorted(int(a) % rank for a in axes) != list(range(2, rank)):
            return (
                f"a mean over axes {args['dim']}: only the mean over every spatial axis (a global average) is pooling"
            )
        keep_dims = bool(args["keepdim"])
        output_size = 1
    if output_size is not None and any(s not in (1, None) for s in _pair(output_size, dims)):
        return f"adaptive average pooling to {output_size}: only output size 1 (a global average) has a fixed window"
    if any(_pair(padding, dims)):
        return "average pooling with padding (padded zeros count differently on each target): use padding 0"
    if ceil_mode:
        return "average pooling with ceil_mode (partial windows at the edge): use ceil_mode=False"
    if divisor is not None:
        return "average pooling with divisor_override"
    if not kernel:  # global
        kernel = stride = tuple(spatial)
    window = math.prod(kernel)
    if window & (window - 1):
        shown = "x".join(str(k) for k in kernel)
        return (
            f"average pooling over {shown} = {window} values: {window} is not a power of two, so the mean has no "
            "exact fixed-point value (each target would round it its own way); use a power-of-two window "
            "(2x2, 4x4, a global average over 4x4 or 8x8)"
        )
    return AvgPool(dims, kernel, stride, window, keep_dims)
