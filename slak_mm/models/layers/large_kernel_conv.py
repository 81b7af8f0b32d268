"""The decomposed sparse large-kernel convolution of SLaK.

Besides the module, this file holds its two speed features (issue 7):

- a fast path for depthwise convolutions with "same" padding on CPU
  (:func:`depthwise_conv2d_same`), used in training and inference;
- the re-parameterized deploy form (:meth:`DecomposedLargeKernelConv.
  switch_to_deploy`), mmpretrain's RepLKNet convention.

``docs/speed.md`` gives the measurements behind every choice.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch.autograd.function import once_differentiable
from torch.nn.modules.batchnorm import _BatchNorm

from slak_mm.registry import MODELS


def _check_odd_size(name: str, value) -> None:
    """Raise a ValueError unless ``value`` is a positive odd int."""
    if isinstance(value, bool) or not isinstance(value, int) \
            or value < 1 or value % 2 == 0:
        raise ValueError(f'`{name}` must be a positive odd int (the '
                         f'"same" padding of a kernel is centred only for odd '
                         f'sizes), got {value!r}.')


# ----------------------------------------------------------------------
# fast path
# ----------------------------------------------------------------------
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
        if transpose:
            x, weight = x.transpose(2, 3), weight.transpose(2, 3)
        kh, kw = weight.shape[-2:]
        out = F.conv2d(x, weight, bias, stride, (kh // 2, kw // 2), 1,
                       x.shape[1])
        return out.transpose(2, 3) if transpose else out

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
    kh, kw = weight.shape[-2:]
    if not (fast_path and _fast_path_applies(x, weight)):
        return F.conv2d(x, weight, bias, stride, (kh // 2, kw // 2), 1,
                        x.shape[1])
    transpose = kw > kh
    needs_grad = torch.is_grad_enabled() and (
        x.requires_grad or weight.requires_grad or
        (bias is not None and bias.requires_grad))
    if needs_grad:
        return _DepthwiseConv2dSame.apply(x, weight, bias, stride, transpose)
    if not transpose:
        return F.conv2d(x, weight, bias, stride, (kh // 2, kw // 2), 1,
                        x.shape[1])
    return F.conv2d(
        x.transpose(2, 3), weight.transpose(2, 3), bias, stride,
        (kw // 2, kh // 2), 1, x.shape[1]).transpose(2, 3)


# ----------------------------------------------------------------------
# BN folding
# ----------------------------------------------------------------------
def fuse_conv_bn(
        weight: torch.Tensor,
        norm: Optional[nn.Module]) -> Tuple[torch.Tensor, torch.Tensor]:
    """Fold an eval-mode BatchNorm that follows a bias-free conv.

    ``BN(conv(x, W)) = conv(x, W * s) + (beta - mean * s)`` with
    ``s = gamma / sqrt(running_var + eps)`` per output channel, using the
    running statistics (what BN computes in eval mode). Differentiable:
    gradients reach ``weight``, ``gamma`` and ``beta``.

    Args:
        weight (torch.Tensor): Conv kernel ``(C, 1, kh, kw)``.
        norm (nn.Module, optional): A ``_BatchNorm`` (``BN``, ``SyncBN``)
            with running statistics, or None for no norm.

    Returns:
        tuple[torch.Tensor, torch.Tensor]: Kernel ``(C, 1, kh, kw)`` and
        bias ``(C,)``.

    Raises:
        TypeError: If ``norm`` is neither None nor a ``_BatchNorm`` with
            running statistics (e.g. GroupNorm cannot be folded).
    """
    if norm is None:
        return weight, weight.new_zeros(weight.shape[0])
    if not isinstance(norm, _BatchNorm) or norm.running_var is None:
        raise TypeError(
            'Only a BatchNorm with running statistics (BN, SyncBN) can be '
            f'folded into the kernel, got {type(norm).__name__}.')
    scale = torch.rsqrt(norm.running_var + norm.eps)
    if norm.weight is not None:
        scale = scale * norm.weight
    bias = -norm.running_mean * scale
    if norm.bias is not None:
        bias = bias + norm.bias
    return weight * scale.reshape(-1, 1, 1, 1), bias


@MODELS.register_module()
class DecomposedLargeKernelConv(BaseModule):
    """Depthwise large-kernel conv decomposed into strip and small kernels.

    A ``K x K`` depthwise kernel is replaced by the sum of three depthwise
    branches, each a convolution without bias followed by a norm layer:

    - ``branch_kxs``: kernel ``(K, s)`` (tall strip),
    - ``branch_sxk``: kernel ``(s, K)`` (wide strip),
    - ``branch_sxs``: kernel ``(s, s)``, only when ``s < K``.

    Every branch uses "same" padding ``(kh // 2, kw // 2)``, so all three
    outputs are aligned on the same centre and can be summed. This is the
    large-kernel block of SLaK, "More ConvNets in the 2020s: Scaling up
    Kernels Beyond 51x51 using Sparsity" (ICLR 2023), Sec. 4 (kernel
    decomposition), with branch ``(K, s)``/``(s, K)``/``(s, s)`` named
    ``LoRA1``/``LoRA2``/``small_conv`` in the official repository
    (VITA-Group/SLaK). The official code passes ``K // 2`` as padding for
    both dimensions and relies on a CUDA kernel that ignores it; here the
    padding is per dimension, which is what ``nn.Conv2d`` needs.

    The weights are dense tensors; sparsity (SLaK's dynamic sparse training)
    is expressed by exact zeros in them, maintained by the sparse-training
    hook.

    With ``decompose=False`` the module is the paper's undecomposed
    baseline (Table 2 ablations; official ``Decom=False``, parameter
    ``lkb_origin``): one dense ``K x K`` depthwise branch ``branch_kxk``
    plus ``branch_sxs``.

    **Deploy form** (mmpretrain RepLKNet's ``switch_to_deploy``
    convention): each branch's BN is folded into its kernel, and the
    ``(s, s)`` kernel, zero-padded to ``(K, s)`` (centred, all sizes odd),
    is added to the ``(K, s)`` kernel; the three biases are summed. The
    ``(K, s)`` and ``(s, K)`` kernels stay separate: only their ``K x K``
    sum would merge them, which is ``K / (2 s)`` times the work (5x for
    51/5) and measured 50-100x slower on CPU. State-dict keys of the two
    forms:

    - train form (``deploy=False``, these names never change):
      ``branch_kxs.conv.weight`` ``(C, 1, K, s)``, ``branch_kxs.bn.*``,
      and the same for ``branch_sxk`` ``(C, 1, s, K)`` and ``branch_sxs``
      ``(C, 1, s, s)``;
    - deploy form: ``reparam_kxs.weight`` ``(C, 1, K, s)`` (with the small
      kernel added), ``reparam_kxs.bias`` ``(C,)`` (the sum of the three
      folded biases) and ``reparam_sxk.weight`` ``(C, 1, s, K)`` (no bias);
    - without decomposition: ``branch_kxk.conv.weight`` ``(C, 1, K, K)``,
      ``branch_kxk.bn.*`` and ``branch_sxs``; deploy form
      ``reparam_kxk.weight`` ``(C, 1, K, K)`` and ``reparam_kxk.bias``.

    The deploy form computes, in any mode, what the train form computes in
    eval mode (running statistics); calling it in training mode works and
    trains the merged kernels, but there are no BN statistics any more.

    **Fast path** (``fast_path=True``, CPU float tensors): every conv runs
    through :func:`depthwise_conv2d_same` (orientation choice and a faster
    weight gradient), and in eval mode (all norms ``_BatchNorm`` with
    running statistics and not training, e.g. after ``model.eval()`` or
    with ``norm_eval``) the branches are merged on the fly exactly as in
    the deploy form, so two convs run instead of three convs and three BNs;
    this stays differentiable. The fast path reads the branch parameters
    directly, so forward hooks on the ``branch_*`` submodules (e.g.
    hook-based FLOP counters; tracing ones work) do not fire;
    ``fast_path=False`` restores the plain ``nn.Conv2d`` + norm modules of
    the official structure.

    Args:
        channels (int): Number of input and output channels ``C``.
        kernel_size (int): Large kernel size ``K``, odd.
        small_kernel_size (int): Small kernel size ``s``, odd and
            ``<= kernel_size``. Defaults to 5.
        stride (int): Stride of every branch. Defaults to 1.
        norm_cfg (dict, optional): Config of the norm layer after each
            branch, e.g. ``dict(type='SyncBN')`` for multi-GPU segmentation.
            Defaults to ``dict(type='BN')``.
        deploy (bool): Build the deploy form directly (to load a checkpoint
            converted by ``tools/model_converters/slak_reparameterize.py``).
            Defaults to False.
        fast_path (bool): Use the fast path. Defaults to True.
        decompose (bool): Decompose the ``K x K`` kernel into the two strips
            (SLaK). False builds the dense ``K x K`` branch of the
            undecomposed ablation. Defaults to True.
        init_cfg (dict, optional): Initialization config. Defaults to None.

    Raises:
        ValueError: If ``channels`` is not a positive int, a kernel size is
            not a positive odd int, ``small_kernel_size > kernel_size``, or
            ``stride`` is not a positive int.

    Shape:
        - Input: ``(N, C, H, W)``.
        - Output: ``(N, C, H_out, W_out)`` with ``H_out = (H - 1) // stride
          + 1`` (``H_out = H`` for the default stride 1).
    """

    def __init__(self,
                 channels: int,
                 kernel_size: int,
                 small_kernel_size: int = 5,
                 stride: int = 1,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 deploy: bool = False,
                 fast_path: bool = True,
                 decompose: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if isinstance(channels, bool) or not isinstance(channels, int) \
                or channels < 1:
            raise ValueError(
                f'`channels` must be a positive int, got {channels!r}.')
        _check_odd_size('kernel_size', kernel_size)
        _check_odd_size('small_kernel_size', small_kernel_size)
        if small_kernel_size > kernel_size:
            raise ValueError(
                f'`small_kernel_size` ({small_kernel_size}) must be <= '
                f'`kernel_size` ({kernel_size}).')
        if isinstance(stride, bool) or not isinstance(stride, int) \
                or stride < 1:
            raise ValueError(f'`stride` must be a positive int, got '
                             f'{stride!r}.')
        self.channels = channels
        self.kernel_size = kernel_size
        self.small_kernel_size = small_kernel_size
        self.stride = stride
        self.deploy = bool(deploy)
        self.fast_path = bool(fast_path)
        self.decompose = bool(decompose)

        k, s = kernel_size, small_kernel_size
        if self.deploy:
            self._build_deploy_convs()
            return

        def branch(kh: int, kw: int) -> ConvModule:
            return ConvModule(
                channels,
                channels,
                kernel_size=(kh, kw),
                stride=stride,
                padding=(kh // 2, kw // 2),
                groups=channels,
                bias=False,
                norm_cfg=norm_cfg,
                act_cfg=None)

        if self.decompose:
            self.branch_kxs = branch(k, s)
            self.branch_sxk = branch(s, k)
        else:
            self.branch_kxk = branch(k, k)
        self.branch_sxs = branch(s, s) if s < k else None

    def _build_deploy_convs(self) -> None:
        k, s = self.kernel_size, self.small_kernel_size
        if self.decompose:
            self.reparam_kxs = self._deploy_conv(k, s, bias=True)
            self.reparam_sxk = self._deploy_conv(s, k, bias=False)
        else:
            self.reparam_kxk = self._deploy_conv(k, k, bias=True)

    def _deploy_conv(self, kh: int, kw: int, bias: bool) -> nn.Conv2d:
        return nn.Conv2d(
            self.channels,
            self.channels,
            kernel_size=(kh, kw),
            stride=self.stride,
            padding=(kh // 2, kw // 2),
            groups=self.channels,
            bias=bias)

    def _branches(self) -> list:
        names = ('branch_kxs', 'branch_sxk') if self.decompose else \
            ('branch_kxk', )
        branches = [getattr(self, name) for name in names]
        if self.branch_sxs is not None:
            branches.append(self.branch_sxs)
        return branches

    def _norms_in_eval(self) -> bool:
        """Whether every branch norm computes with running statistics."""
        for branch in self._branches():
            norm = branch.norm if branch.with_norm else None
            if norm is None:
                continue
            if not isinstance(norm, _BatchNorm) or norm.training or \
                    norm.running_var is None:
                return False
        return True

    def merge_kernels(
            self) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """The deploy kernels of the train form (BN running statistics).

        Returns:
            tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]: The
            ``(K, s)`` kernel with the zero-padded ``(s, s)`` kernel added,
            ``(C, 1, K, s)``; the sum of the three folded biases, ``(C,)``;
            the ``(s, K)`` kernel, ``(C, 1, s, K)``. Differentiable.
            Without decomposition: the ``(K, K)`` kernel with the
            ``(s, s)`` kernel added at its centre, the summed bias, None.

        Raises:
            RuntimeError: If the module is already in deploy form.
            TypeError: If a branch norm is not a foldable BatchNorm
                (see :func:`fuse_conv_bn`).
        """
        if self.deploy:
            raise RuntimeError('merge_kernels() needs the train form; this '
                               'module is already in deploy form.')

        def fold(branch: ConvModule):
            return fuse_conv_bn(branch.conv.weight,
                                branch.norm if branch.with_norm else None)

        rows = (self.kernel_size - self.small_kernel_size) // 2
        if self.decompose:
            main_weight, bias = fold(self.branch_kxs)
            sxk_weight, sxk_bias = fold(self.branch_sxk)
            bias = bias + sxk_bias
            small_pad = (0, 0, rows, rows)
        else:
            main_weight, bias = fold(self.branch_kxk)
            sxk_weight = None
            small_pad = (rows, rows, rows, rows)
        if self.branch_sxs is not None:
            sxs_weight, sxs_bias = fold(self.branch_sxs)
            main_weight = main_weight + F.pad(sxs_weight, small_pad)
            bias = bias + sxs_bias
        return main_weight, bias, sxk_weight

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        """Replace the three branches by the two merged convs, in place.

        Uses the BN running statistics (eval-mode behaviour). Idempotent:
        does nothing in deploy form.

        Raises:
            TypeError: If a branch norm is not a foldable BatchNorm.
        """
        if self.deploy:
            return
        main_weight, bias, sxk_weight = self.merge_kernels()
        for name in ('branch_kxs', 'branch_sxk', 'branch_kxk', 'branch_sxs'):
            if hasattr(self, name):
                delattr(self, name)
        self._build_deploy_convs()
        main = self.reparam_kxs if self.decompose else self.reparam_kxk
        main.to(main_weight)
        main.weight.copy_(main_weight)
        main.bias.copy_(bias)
        if sxk_weight is not None:
            self.reparam_sxk.to(sxk_weight)
            self.reparam_sxk.weight.copy_(sxk_weight)
        self.deploy = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Sum the branch outputs.

        Args:
            x (torch.Tensor): Input of shape ``(N, C, H, W)``.

        Returns:
            torch.Tensor: Output of shape ``(N, C, H_out, W_out)``.
        """
        if self.deploy:
            main = self.reparam_kxs if self.decompose else self.reparam_kxk
            if not self.fast_path:
                out = main(x)
                return out + self.reparam_sxk(x) if self.decompose else out
            main_weight, bias = main.weight, main.bias
            sxk_weight = self.reparam_sxk.weight if self.decompose else None
        elif not self.fast_path:
            out = None
            for branch in self._branches():
                y = branch(x)
                out = y if out is None else out + y
            return out
        elif self._norms_in_eval():
            main_weight, bias, sxk_weight = self.merge_kernels()
        else:
            out = None
            for branch in self._branches():
                y = depthwise_conv2d_same(x, branch.conv.weight, None,
                                          self.stride)
                if branch.with_norm:
                    y = branch.norm(y)
                out = y if out is None else out + y
            return out
        out = depthwise_conv2d_same(x, main_weight, bias, self.stride)
        if sxk_weight is None:
            return out
        return out + depthwise_conv2d_same(x, sxk_weight, None, self.stride)

    def extra_repr(self) -> str:
        return (f'channels={self.channels}, kernel_size={self.kernel_size}, '
                f'small_kernel_size={self.small_kernel_size}, '
                f'stride={self.stride}, decompose={self.decompose}, '
                f'deploy={self.deploy}, '
                f'fast_path={self.fast_path}')
