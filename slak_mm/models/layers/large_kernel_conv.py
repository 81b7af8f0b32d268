"""The decomposed sparse large-kernel convolution of SLaK."""
from typing import Optional

import torch
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule

from slak_mm.registry import MODELS


def _check_odd_size(name: str, value) -> None:
    """Raise a ValueError unless ``value`` is a positive odd int."""
    if isinstance(value, bool) or not isinstance(value, int) \
            or value < 1 or value % 2 == 0:
        raise ValueError(f'`{name}` must be a positive odd int (the '
                         f'"same" padding of a kernel is centred only for odd '
                         f'sizes), got {value!r}.')


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

    Args:
        channels (int): Number of input and output channels ``C``.
        kernel_size (int): Large kernel size ``K``, odd.
        small_kernel_size (int): Small kernel size ``s``, odd and
            ``<= kernel_size``. Defaults to 5.
        stride (int): Stride of every branch. Defaults to 1.
        norm_cfg (dict): Config of the norm layer after each branch, e.g.
            ``dict(type='SyncBN')`` for multi-GPU segmentation. Defaults to
            ``dict(type='BN')``.
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
                 norm_cfg: dict = dict(type='BN'),
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

        k, s = kernel_size, small_kernel_size
        self.branch_kxs = branch(k, s)
        self.branch_sxk = branch(s, k)
        self.branch_sxs = branch(s, s) if s < k else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Sum the branch outputs.

        Args:
            x (torch.Tensor): Input of shape ``(N, C, H, W)``.

        Returns:
            torch.Tensor: Output of shape ``(N, C, H_out, W_out)``.
        """
        out = self.branch_kxs(x) + self.branch_sxk(x)
        if self.branch_sxs is not None:
            out = out + self.branch_sxs(x)
        return out

    def extra_repr(self) -> str:
        return (f'channels={self.channels}, kernel_size={self.kernel_size}, '
                f'small_kernel_size={self.small_kernel_size}, '
                f'stride={self.stride}')
