"""The decomposed sparse large-kernel convolution of SLaK.

The module (train form: strip branches with BN; deploy form: BN folded,
mmpretrain RepLKNet's re-parameterization convention) and the BN folding
it uses. The depthwise convolution itself is :mod:`slak_mm.ops`.
"""
import operator
from functools import reduce
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from slak_mm.ops import depthwise_conv2d_same
from slak_mm.registry import MODELS
from .utils import check_mixer_sizes, check_positive_int


def fuse_bn(weight: torch.Tensor,
            norm: Optional[nn.Module]) -> Tuple[torch.Tensor, torch.Tensor]:
    """Fold an eval-mode BatchNorm that follows a bias-free conv.

    ``BN(conv(x, W)) = conv(x, W * s) + (beta - mean * s)`` with
    ``s = gamma / sqrt(running_var + eps)`` per output channel, using the
    running statistics (what BN computes in eval mode). The counterpart of
    mmpretrain RepLKNet's ``fuse_bn(conv, bn)``, taking the kernel tensor
    instead of the conv module (the on-the-fly merge of
    :class:`DecomposedLargeKernelConv` folds parameters, not modules).
    Differentiable: gradients reach ``weight``, ``gamma`` and ``beta``.
    Also exported as ``fuse_conv_bn`` (its former name).

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


#: Former name of :func:`fuse_bn` (it clashes with mmcv's
#: ``fuse_conv_bn(module)``, which folds the BNs of a whole model).
fuse_conv_bn = fuse_bn


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

    **Deploy form** (mmpretrain RepLKNet's ``switch_to_deploy`` /
    ``get_equivalent_kernel_bias`` convention): each branch's BN is folded
    into its kernel, and the ``(s, s)`` kernel, zero-padded to ``(K, s)``
    (centred, all sizes odd), is added to the ``(K, s)`` kernel; the three
    biases are summed. The ``(K, s)`` and ``(s, K)`` kernels stay separate:
    only their ``K x K`` sum would merge them, which is ``K / (2 s)`` times
    the work (5x for 51/5) and measured 50-100x slower on CPU. State-dict
    keys of the two forms:

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

    **Forward.** Two paths: the *deploy kernels* (the ``reparam_*``
    weights of the deploy form, or :meth:`get_equivalent_kernel_bias`
    computed on the fly) or the *train-form branches* (conv + norm each).

    - ``fast_path=True`` (default): every conv runs through
      :func:`~slak_mm.ops.depthwise_conv2d_same` (on CPU: orientation
      choice and a faster weight gradient), and in eval mode (all norms
      ``_BatchNorm`` with running statistics and not training, e.g. after
      ``model.eval()`` or with ``norm_eval``) the train form takes the
      deploy-kernel path, so two convs run instead of three convs and
      three BNs; this stays differentiable.
    - ``fast_path=False``: the train form always runs its branch modules
      (the official ``nn.Conv2d`` + norm structure) and the deploy form
      plain ``F.conv2d`` with its kernels.

    Except for the train form with ``fast_path=False``, the parameters are
    read directly, so forward hooks on the ``branch_*`` / ``reparam_*``
    submodules (e.g. hook-based FLOP counters; tracing ones work) do not
    fire.

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
        check_mixer_sizes(channels, kernel_size, small_kernel_size)
        check_positive_int('stride', stride)
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

    def _branches(self) -> List[ConvModule]:
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

    def get_equivalent_kernel_bias(
            self) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """The deploy kernels of the train form (BN running statistics).

        RepLKNet's method of this name returns one kernel and bias; here the
        two strips stay separate (see the class docstring), so there is a
        third item. Also available as ``merge_kernels()`` (former name).

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
                (see :func:`fuse_bn`).
        """
        if self.deploy:
            raise RuntimeError('get_equivalent_kernel_bias() needs the train '
                               'form; this module is already in deploy '
                               'form.')

        def fold(branch: ConvModule):
            return fuse_bn(branch.conv.weight,
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

    #: Former name of :meth:`get_equivalent_kernel_bias`.
    merge_kernels = get_equivalent_kernel_bias

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
        main_weight, bias, sxk_weight = self.get_equivalent_kernel_bias()
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

    def _deploy_kernels(
            self) -> List[Tuple[torch.Tensor, Optional[torch.Tensor]]]:
        """``(weight, bias)`` of each deploy conv: the ``reparam_*``
        parameters, or those of :meth:`get_equivalent_kernel_bias`."""
        if self.deploy:
            main = self.reparam_kxs if self.decompose else self.reparam_kxk
            main_weight, bias = main.weight, main.bias
            sxk_weight = self.reparam_sxk.weight if self.decompose else None
        else:
            main_weight, bias, sxk_weight = self.get_equivalent_kernel_bias()
        kernels = [(main_weight, bias)]
        if sxk_weight is not None:
            kernels.append((sxk_weight, None))
        return kernels

    def _forward_branch(self, branch: ConvModule,
                        x: torch.Tensor) -> torch.Tensor:
        if not self.fast_path:
            return branch(x)
        out = depthwise_conv2d_same(x, branch.conv.weight, None, self.stride)
        return branch.norm(out) if branch.with_norm else out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Sum the outputs of the deploy kernels or of the branches.

        Args:
            x (torch.Tensor): Input of shape ``(N, C, H, W)``.

        Returns:
            torch.Tensor: Output of shape ``(N, C, H_out, W_out)``.
        """
        if self.deploy or (self.fast_path and self._norms_in_eval()):
            outs = (depthwise_conv2d_same(x, weight, bias, self.stride,
                                          self.fast_path)
                    for weight, bias in self._deploy_kernels())
        else:
            outs = (
                self._forward_branch(branch, x) for branch in self._branches())
        return reduce(operator.add, outs)

    def extra_repr(self) -> str:
        return (f'channels={self.channels}, kernel_size={self.kernel_size}, '
                f'small_kernel_size={self.small_kernel_size}, '
                f'stride={self.stride}, decompose={self.decompose}, '
                f'deploy={self.deploy}, '
                f'fast_path={self.fast_path}')
