"""SLaK backbone (ConvNeXt skeleton with decomposed sparse large kernels)."""
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn

from slak_mm.registry import MODELS
from .large_kernel_block import LargeKernelBlock
from .large_kernel_convnext import LargeKernelConvNeXt


class SLaKBlock(LargeKernelBlock):
    """One SLaK block.

    ``x + DropPath(gamma * Linear(GELU(Linear(LN(LK(x))))))``: a large-kernel
    token mixer (``large_kernel``, a
    :class:`~slak_mm.models.layers.DecomposedLargeKernelConv` in SLaK),
    then, channels last, a LayerNorm (eps 1e-6), the inverted-bottleneck MLP
    (``pointwise_conv1`` ``C -> 4C``, GELU, ``pointwise_conv2``
    ``4C -> C``) and the layer scale ``gamma`` (paper Sec. 5; the ConvNeXt
    block with the 7x7 depthwise conv replaced). Maps ``(N, C, H, W)`` to
    ``(N, C, H, W)``.

    Args:
        channels (int): Number of channels ``C``.
        mixer_cfg (dict): Config of the token mixer, e.g.
            ``dict(type='DecomposedLargeKernelConv', kernel_size=51,
            small_kernel_size=5)``; ``channels`` is set by the block.
        mlp_ratio (float): Hidden width of the MLP over ``C``.
            Defaults to 4.
        **kwargs: ``drop_path_rate``, ``layer_scale_init_value``,
            ``with_cp`` and ``init_cfg`` of :class:`LargeKernelBlock`.
    """

    def __init__(self,
                 channels: int,
                 mixer_cfg: dict,
                 mlp_ratio: float = 4.,
                 **kwargs) -> None:
        super().__init__(channels, mixer_cfg, **kwargs)
        self.norm = nn.LayerNorm(channels, eps=1e-6)
        hidden = int(mlp_ratio * channels)
        self.pointwise_conv1 = nn.Linear(channels, hidden)
        self.act = nn.GELU()
        self.pointwise_conv2 = nn.Linear(hidden, channels)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        x = self.large_kernel(x).permute(0, 2, 3, 1)  # (N, H, W, C)
        x = self.norm(x)
        x = self.pointwise_conv1(x)
        x = self.act(x)
        x = self.pointwise_conv2(x)
        if self.gamma is not None:
            x = x * self.gamma
        return x.permute(0, 3, 1, 2)  # (N, C, H, W)


@MODELS.register_module()
class SLaK(LargeKernelConvNeXt):
    """SLaK backbone.

    A PyTorch implementation of `More ConvNets in the 2020s: Scaling up
    Kernels Beyond 51x51 using Sparsity <https://arxiv.org/abs/2207.03620>`_
    (ICLR 2023), following the module layout of mmpretrain's ``ConvNeXt``
    (``downsample_layers``, ``stages``, ``norm{i}``) so that mmpretrain's
    classifier, mmseg's and mmdet's necks/heads, and layer-wise learning-rate
    decay apply unchanged. Architecture as in the official repository
    (VITA-Group/SLaK, ``SLaK.py``):

    - stem: ``Conv2d(3, C0, 4, stride 4)`` + LayerNorm;
      downsample ``i = 1..3``: LayerNorm + ``Conv2d(C_{i-1}, C_i, 2, 2)``;
    - stage ``i``: ``depths[i]`` :class:`SLaKBlock` whose mixer is a
      :class:`~slak_mm.models.layers.DecomposedLargeKernelConv` with large
      kernel ``kernel_size[i]`` and small kernel ``kernel_size[-1]``;
    - channels ``C_i = int(channels[i] * width_factor)``, e.g.
      ``[124, 249, 499, 998]`` for tiny/small and ``[166, 332, 665, 1331]``
      for base with the published width factor 1.3.

    Dense parameter counts of the classification network (this backbone with
    ``out_indices=-1``, whose ``norm3`` is the final norm, plus a 1000-way
    linear head): tiny 50,703,838; small 91,131,820; base 157,950,792.

    Args:
        arch (str | dict): ``'tiny'``, ``'small'``, ``'base'`` (or ``'t'``,
            ``'s'``, ``'b'``), or a dict with keys:

            - **depths** (list[int]): Number of blocks per stage.
            - **channels** (list[int]): Channels per stage before
              ``width_factor``.

            Defaults to ``'tiny'``.
        in_channels (int): Input image channels. Defaults to 3.
        kernel_size (Sequence[int]): Large kernel size of each stage followed
            by the small kernel size ``s``, all odd, ``len == num_stages + 1``
            and each large size ``>= s``. Defaults to
            ``(51, 49, 47, 13, 5)``.
        width_factor (float): Channel multiplier, truncated with ``int``.
            Defaults to 1.3.
        mixer_cfg (dict, optional): Merged over ``default_mixer_cfg``,
            ``dict(type='DecomposedLargeKernelConv', norm_cfg=dict(type='BN'),
            fast_path=True, decompose=True)``:

            - **norm_cfg** (dict): Norm after each large-kernel branch
              (``BN`` or ``SyncBN``; the published configs use ``SyncBN``,
              as the official code hard-codes, and a run without
              distributed training reverts it to ``BN``).
            - **fast_path** (bool): The large kernels' CPU fast path
              (orientation choice, faster weight gradient, branches merged
              in eval mode; exact up to float rounding, see
              ``docs/speed.md``). False runs the official structure (three
              ``nn.Conv2d`` + BN per block).
            - **decompose** (bool): Decompose each ``K x K`` kernel into
              ``(K, s)`` + ``(s, K)`` strips (SLaK). False builds dense
              ``K x K`` kernels (+ the ``s x s`` branch), the undecomposed
              ablation of the paper's Table 2 (official ``--Decom False``,
              ``lkb_origin``).

            ``channels``, ``kernel_size``, ``small_kernel_size`` and
            ``deploy`` are set by the backbone. Defaults to None.
        deploy (bool): Build every large kernel directly in its
            re-parameterized deploy form (BN folded, small kernel merged;
            see :class:`~slak_mm.models.layers.DecomposedLargeKernelConv`),
            to load a checkpoint converted by
            ``tools/model_converters/slak_reparameterize.py``. Use
            :meth:`switch_to_deploy` to convert a trained model in place.
            Defaults to False.
        **kwargs: Keyword only: ``norm_cfg`` (the network norms: stem,
            downsampling, output ``norm{i}``; default
            ``dict(type='LN2d', eps=1e-6)``), ``drop_path_rate``,
            ``layer_scale_init_value``, ``out_indices``, ``frozen_stages``,
            ``norm_eval``, ``gap_before_final_norm``,
            ``pretrained_out_norms``, ``with_cp``, ``block_cfg``,
            ``init_cfg`` (e.g. ``dict(type='Pretrained', checkpoint=...,
            prefix='backbone.')`` to load the backbone of a classification
            checkpoint) and the deprecated ``fast_path`` / ``decompose`` /
            BatchNorm ``norm_cfg`` (moved into ``mixer_cfg`` with a
            ``DeprecationWarning``); see :class:`LargeKernelConvNeXt`.

    Raises:
        ValueError: For an unknown ``arch``, a malformed ``arch`` dict, a
            ``kernel_size`` list of the wrong length or with even / too small
            sizes, ``out_indices`` / ``frozen_stages`` out of range, or a
            ``mixer_cfg`` that sets ``channels``, ``kernel_size``,
            ``small_kernel_size`` or ``deploy``.
        TypeError: From the mixer, for a ``mixer_cfg`` key it does not take.

    Shape:
        - Input: ``(N, in_channels, H, W)``, any ``H, W >= 32``.
        - Output: a tuple with one tensor per ``out_indices`` entry, of shape
          ``(N, C_i)`` if ``gap_before_final_norm`` else
          ``(N, C_i, H_i, W_i)`` with ``H_0 = floor((H - 4) / 4) + 1`` and
          ``H_{i+1} = floor((H_i - 2) / 2) + 1``.
    """
    arch_settings = {
        'tiny': {
            'depths': [3, 3, 9, 3],
            'channels': [96, 192, 384, 768]
        },
        'small': {
            'depths': [3, 3, 27, 3],
            'channels': [96, 192, 384, 768]
        },
        'base': {
            'depths': [3, 3, 27, 3],
            'channels': [128, 256, 512, 1024]
        },
    }
    default_mixer_cfg = dict(
        type='DecomposedLargeKernelConv',
        norm_cfg=dict(type='BN'),
        fast_path=True,
        decompose=True)
    block_cls = SLaKBlock

    def __init__(self,
                 arch: Union[str, dict] = 'tiny',
                 in_channels: int = 3,
                 kernel_size: Sequence[int] = (51, 49, 47, 13, 5),
                 width_factor: float = 1.3,
                 mixer_cfg: Optional[dict] = None,
                 *,
                 deploy: bool = False,
                 **kwargs) -> None:
        if 'deploy' in (mixer_cfg or {}):
            raise ValueError('`mixer_cfg` must not set "deploy": use '
                             'SLaK(deploy=...).')
        super().__init__(arch, in_channels, kernel_size, width_factor,
                         dict(mixer_cfg or {}, deploy=bool(deploy)), **kwargs)
