"""Depthwise convolution with centred ("same") padding and a CPU fast path.

:func:`depthwise_conv2d_same` is what the large-kernel layers of slak_mm
(:class:`~slak_mm.models.layers.DecomposedLargeKernelConv`,
:class:`~slak_mm.models.layers.ShiftwiseConv`) call for every depthwise
convolution. It equals ``F.conv2d`` with padding ``(kh // 2, kw // 2)`` and
``groups=C`` and is faster on CPU for long strip kernels; ``docs/speed.md``
gives the measurements behind each choice.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable


def _depthwise_weight_grad(x: torch.Tensor, grad_out: torch.Tensor,
                           kernel_size: Tuple[int, int]) -> torch.Tensor:
    """Weight gradient of a stride-1 depthwise conv with "same" padding.

    ``dW[c, i, j] = sum_{n, h, w} g[n, c, h, w] * x_pad[n, c, h + i, w + j]``
    is itself a depthwise correlation of the padded input with the output
    gradient, summed over the batch. The batch is folded into the width:
    the ``N`` padded images are laid side by side (width ``N * Wp``), and
    so are the ``N`` gradient maps, each followed by ``Wp - W`` zero
    columns (the last one without them). Shifting the resulting
    ``(H, N * Wp - (Wp - W))`` kernel by ``j <= Wp - W`` columns never
    reaches the next image, so one depthwise conv of the two strips
    (output ``(kh, kw)``) gives the sum over the batch exactly.

    oneDNN 3.x's direct depthwise kernel computes that conv (its left/right
    padding is 0), whereas PyTorch's own weight gradient of a large
    depthwise kernel runs oneDNN's im2col GEMM, 3-20x slower on CPU for
    SLaK's shapes (``docs/speed.md``).

    Args:
        x (torch.Tensor): Conv input, ``(N, C, H, W)``.
        grad_out (torch.Tensor): Gradient of the conv output,
            ``(N, C, H, W)``.
        kernel_size (tuple[int, int]): ``(kh, kw)``, both odd.

    Returns:
        torch.Tensor: The weight gradient, ``(C, 1, kh, kw)``.
    """
    kh, kw = kernel_size
    n, c, h, w = x.shape
    hp, wp = h + kh - 1, w + kw - 1
    # (C, Hp, N, Wp): the padded images side by side along the width
    strip = x.new_zeros(c, hp, n, wp)
    strip[:, kh // 2:kh // 2 + h, :, kw // 2:kw // 2 + w] = \
        x.permute(1, 2, 0, 3)
    strip = strip.view(1, c, hp, n * wp)
    # (C, H, N, Wp): the gradients side by side, Wp - W zero columns each
    kernel = grad_out.new_zeros(c, h, n, wp)
    kernel[..., :w] = grad_out.permute(1, 2, 0, 3)
    kernel = kernel.view(c, 1, h, n * wp)[..., :n * wp - (wp - w)]
    return F.conv2d(strip, kernel, groups=c).view(c, 1, kh, kw)


def _conv_same(x: torch.Tensor, weight: torch.Tensor,
               bias: Optional[torch.Tensor], stride: int) -> torch.Tensor:
    """Plain ``F.conv2d``: depthwise, padding ``(kh // 2, kw // 2)``."""
    kh, kw = weight.shape[-2:]
    return F.conv2d(x, weight, bias, stride, (kh // 2, kw // 2), 1, x.shape[1])


def _oriented_conv(x: torch.Tensor, weight: torch.Tensor,
                   bias: Optional[torch.Tensor], stride: int,
                   transpose: bool) -> torch.Tensor:
    """:func:`_conv_same`, run on the transposed problem if ``transpose``
    (the output is then a transposed, non-contiguous view)."""
    if not transpose:
        return _conv_same(x, weight, bias, stride)
    return _conv_same(x.transpose(2, 3), weight.transpose(2, 3), bias,
                      stride).transpose(2, 3)


class _DepthwiseConv2dSame(torch.autograd.Function):
    """``F.conv2d`` (depthwise, "same" padding) with a faster backward.

    With ``transpose`` the conv runs on ``x.transpose(2, 3)`` with
    ``weight.transpose(2, 3)`` and the output is transposed back (a view).
    Forward and input gradient are PyTorch's own convolution kernels; the
    weight gradient is :func:`_depthwise_weight_grad` for stride 1. The
    gradients are contiguous, as those of ``F.conv2d``. First-order
    gradients only.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor,
                bias: Optional[torch.Tensor], stride: int,
                transpose: bool) -> torch.Tensor:
        ctx.stride = stride
        ctx.transpose = transpose
        ctx.has_bias = bias is not None
        ctx.save_for_backward(x, weight)
        return _oriented_conv(x, weight, bias, stride, transpose)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: torch.Tensor):
        x, weight = ctx.saved_tensors
        if ctx.transpose:
            x, weight = x.transpose(2, 3), weight.transpose(2, 3)
            grad_out = grad_out.transpose(2, 3)
        kh, kw = weight.shape[-2:]
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        stride = ctx.stride
        fast_weight = need_w and stride == 1
        grad_x, grad_w, _ = torch.ops.aten.convolution_backward(
            grad_out, x, weight, None, [stride, stride], [kh // 2, kw // 2],
            [1, 1], False, [0, 0], x.shape[1],
            [need_x, need_w and not fast_weight, False])
        if fast_weight:
            grad_w = _depthwise_weight_grad(x, grad_out, (kh, kw))
        if ctx.transpose:
            grad_x = None if grad_x is None else \
                grad_x.transpose(2, 3).contiguous()
            grad_w = None if grad_w is None else \
                grad_w.transpose(2, 3).contiguous()
        grad_b = grad_out.sum((0, 2, 3)) if need_b and ctx.has_bias else None
        return grad_x, grad_w, grad_b, None, None


def _autocast_enabled() -> bool:
    try:
        return torch.is_autocast_enabled('cpu')
    except TypeError:  # torch < 2.4
        return torch.is_autocast_cpu_enabled()


def _fast_path_applies(x: torch.Tensor, weight: torch.Tensor) -> bool:
    # not under TorchScript tracing / scripting (ONNX export, FLOP
    # counters), which would record the custom Function as an opaque op,
    # nor under CPU autocast (mixed dtypes in the backward)
    if torch.jit.is_tracing() or torch.jit.is_scripting():
        return False
    return (x.device.type == 'cpu' and x.dim() == 4
            and x.dtype in (torch.float32, torch.float64)
            and weight.dtype == x.dtype and weight.shape[1] == 1
            and weight.shape[0] == x.shape[1] and not _autocast_enabled())


def depthwise_conv2d_same(x: torch.Tensor,
                          weight: torch.Tensor,
                          bias: Optional[torch.Tensor] = None,
                          stride: int = 1,
                          fast_path: bool = True) -> torch.Tensor:
    """Depthwise convolution with centred ("same") padding.

    Equals ``F.conv2d(x, weight, bias, stride, (kh // 2, kw // 2),
    groups=C)`` in forward and backward (within floating-point rounding);
    with ``fast_path`` it runs faster on CPU, where two choices were
    measured to pay off (``docs/speed.md``; torch 2.13, oneDNN 3.x):

    - **orientation**: a kernel wider than tall (``kw > kh``, e.g. SLaK's
      ``(5, 51)`` strip) is run as the transposed problem
      (``x.transpose(2, 3)`` with the ``(kw, kh)`` kernel, output
      transposed back, so the output is then a non-contiguous view).
      oneDNN's direct depthwise kernel accepts at most 6 columns of
      left/right padding and falls back to an im2col GEMM otherwise,
      10-80x slower than the tall strip;
    - **weight gradient** (stride 1): computed by
      :func:`_depthwise_weight_grad` instead of oneDNN's im2col GEMM.

    The fast path applies to 4-D float32/float64 CPU tensors with a
    depthwise weight ``(C, 1, kh, kw)``; anywhere else (CUDA, half
    precision, CPU autocast; also under ``torch.jit`` tracing or
    scripting, e.g. ONNX export and FLOP counters) this is plain
    ``F.conv2d``; GPUs were not timed. It supports first-order gradients
    only (no double backward).

    Args:
        x (torch.Tensor): Input, ``(N, C, H, W)``.
        weight (torch.Tensor): Depthwise kernel ``(C, 1, kh, kw)``, odd
            sizes.
        bias (torch.Tensor, optional): ``(C,)``. Defaults to None.
        stride (int): Stride in both dimensions. Defaults to 1.
        fast_path (bool): Use the fast path where it applies. Defaults to
            True.

    Returns:
        torch.Tensor: ``(N, C, (H - 1) // stride + 1,
        (W - 1) // stride + 1)``.
    """
    if not (fast_path and _fast_path_applies(x, weight)):
        return _conv_same(x, weight, bias, stride)
    kh, kw = weight.shape[-2:]
    transpose = kw > kh
    needs_grad = torch.is_grad_enabled() and (
        x.requires_grad or weight.requires_grad or
        (bias is not None and bias.requires_grad))
    if needs_grad:
        return _DepthwiseConv2dSame.apply(x, weight, bias, stride, transpose)
    return _oriented_conv(x, weight, bias, stride, transpose)
