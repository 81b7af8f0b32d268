"""ShiftWise backbones (SW-v1 and SW-v2) built on :class:`ShiftwiseConv`.

`ShiftwiseConv: Small Convolutional Kernel with Large Kernel Effect
<https://arxiv.org/abs/2401.12736>`_. Architectures as in the official
repository (lidc54/shift-wiseConv, ``backbones/SW_v1_slak.py`` and
``backbones/SW_v2_unirep.py``); module layout (``downsample_layers``,
``stages``, ``norm{i}``), interface, forward, freezing and layer-decay rules
are those of :class:`LargeKernelConvNeXt`, shared with :class:`SLaK`.
"""
from typing import Sequence, Union

import torch
import torch.nn as nn
from mmengine.model import Sequential
from mmpretrain.models.utils import GRN, SELayer, build_norm_layer

from slak_mm.registry import MODELS
from .backbone_args import is_batch_norm_cfg
from .large_kernel_block import LargeKernelBlock
from .large_kernel_convnext import LargeKernelConvNeXt
from .slak import SLaK, SLaKBlock


class ShiftWiseV1Block(SLaKBlock):
    """SW-v1 block: :class:`SLaKBlock` with a
    :class:`~slak_mm.models.layers.ShiftwiseConv` mixer.

    ``x + DropPath(gamma * Linear(GELU(Linear(LN(SW(x))))))``, the official
    ``Block`` of ``SW_v1_slak.py`` (with ``use_se=False``). Same arguments
    as :class:`SLaKBlock`; ``mixer_cfg`` is e.g.
    ``dict(type='ShiftwiseConv', kernel_size=51, small_kernel_size=5)``.

    Shape:
        ``(N, C, H, W) -> (N, C, H, W)``.
    """


class ShiftWiseV2Block(LargeKernelBlock):
    """SW-v2 block (UniRepLKNet-style), the official ``Block`` of
    ``SW_v2_unirep.py`` (``use_se=True``).

    ``x + DropPath(gamma * BN(Linear(GRN(GELU(Linear(SE(BN(SW(x)))))))))``,
    with ``Linear(C, 4C)`` (bias), GRN with bias over channels last, and
    ``Linear(4C, C, bias=False)`` followed by a BN. The SE is mmpretrain's
    ``SELayer`` with ``C // 4`` squeeze channels, ReLU then Sigmoid and
    biased 1x1 convs (``se.conv1.conv`` / ``se.conv2.conv``; official
    ``se.down`` / ``se.up``). Maps ``(N, C, H, W)`` to ``(N, C, H, W)``.

    Args:
        channels (int): Number of channels ``C``.
        mixer_cfg (dict): Config of the token mixer (a
            :class:`~slak_mm.models.layers.ShiftwiseConv`).
        mlp_ratio (float): Hidden width over ``C``. Defaults to 4.
        norm_cfg (dict): The two block norms ``norm`` and ``norm2``
            (official: SyncBN). Defaults to ``dict(type='BN')``.
        **kwargs: ``drop_path_rate``, ``layer_scale_init_value``,
            ``with_cp`` and ``init_cfg`` of :class:`LargeKernelBlock`.
    """

    def __init__(self,
                 channels: int,
                 mixer_cfg: dict,
                 mlp_ratio: float = 4.,
                 norm_cfg: dict = dict(type='BN'),
                 **kwargs) -> None:
        super().__init__(channels, mixer_cfg, **kwargs)
        self.norm = build_norm_layer(norm_cfg, channels)
        self.se = SELayer(channels, squeeze_channels=channels // 4)
        hidden = int(mlp_ratio * channels)
        self.pointwise_conv1 = nn.Linear(channels, hidden)
        self.act = nn.GELU()
        self.grn = GRN(hidden)
        self.pointwise_conv2 = nn.Linear(hidden, channels, bias=False)
        self.norm2 = build_norm_layer(norm_cfg, channels)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        x = self.se(self.norm(self.large_kernel(x)))
        x = x.permute(0, 2, 3, 1)  # (N, H, W, C)
        x = self.act(self.pointwise_conv1(x))
        x = self.grn(x, data_format='channel_last')
        x = self.pointwise_conv2(x).permute(0, 3, 1, 2)  # (N, C, H, W)
        x = self.norm2(x)
        if self.gamma is not None:
            x = x * self.gamma.view(1, -1, 1, 1)
        return x


@MODELS.register_module()
class ShiftWiseV1(LargeKernelConvNeXt):
    """SW-v1 backbone: the SLaK skeleton with shift-wise convs.

    Official ``ShiftWise_v1`` (``backbones/SW_v1_slak.py``): ConvNeXt /
    SLaK stem (``Conv2d(3, C0, 4, 4)`` + LayerNorm) and downsampling
    (LayerNorm + ``Conv2d(2, 2)``), :class:`ShiftWiseV1Block` stages,
    kernels ``[51, 49, 45, 13, 5]``, width factor 1.0, ``ghost_ratio``
    0.23, ``N_path`` 2, ``N_rep`` 4.

    Args:
        arch (str | dict): ``'tiny'`` (depths ``[3, 3, 9, 3]``), ``'small'``
            or ``'base'`` (``[3, 3, 27, 3]``; channels ``96..768`` or
            ``128..1024``), ``'large'`` (``192..1536``), aliases
            ``t/s/b/l``, or a dict with ``depths`` and ``channels``.
            Defaults to ``'tiny'``.
        in_channels (int): Input image channels. Defaults to 3.
        kernel_size (Sequence[int]): Emulated large kernel per stage, then
            the piece size ``k`` (all odd). Defaults to
            ``(51, 49, 45, 13, 5)``.
        width_factor (float): Channel multiplier. Defaults to 1.0.
        mixer_cfg (dict, optional): Merged over ``default_mixer_cfg``,
            ``dict(type='ShiftwiseConv', norm_cfg=dict(type='BN'),
            fast_path=True, ghost_ratio=0.23, num_paths=2, num_reps=4,
            ghost_split='v1', seed=123)`` (see
            :class:`~slak_mm.models.layers.ShiftwiseConv`; ``fast_path``
            is the CPU fast path of its strip convs, same outputs).
            ``channels``, ``kernel_size`` and ``small_kernel_size`` are set
            by the backbone. Defaults to None.
        **kwargs: The other arguments of :class:`LargeKernelConvNeXt`
            (keyword only): ``norm_cfg`` (the network norms, default
            ``dict(type='LN2d', eps=1e-6)``), ``drop_path_rate``,
            ``layer_scale_init_value``, ``out_indices``, ``frozen_stages``,
            ``norm_eval``, ``gap_before_final_norm``,
            ``pretrained_out_norms`` (see :class:`SLaK`), ``with_cp``,
            ``block_cfg``, ``init_cfg``, and the deprecated ``sw_cfg``,
            ``fast_path`` and BatchNorm ``norm_cfg`` (moved into
            ``mixer_cfg`` with a ``DeprecationWarning``).

    Raises:
        ValueError: For a bad ``arch``, ``kernel_size``, ``sw_cfg`` keys,
            ``out_indices``, ``frozen_stages`` or a ``mixer_cfg`` setting
            an injected key.
        TypeError: From the mixer, for a ``mixer_cfg`` key it does not take.

    Shape:
        - Input: ``(N, in_channels, H, W)``.
        - Output: tuple of ``(N, C_i)`` or ``(N, C_i, H / 2^(i+2),
          W / 2^(i+2))`` per ``out_indices`` entry.
    """
    # SLaK's table (ConvNeXt depths / channels) plus the large variant
    arch_settings = {
        **SLaK.arch_settings, 'large': {
            'depths': [3, 3, 27, 3],
            'channels': [192, 384, 768, 1536]
        }
    }
    arch_aliases = {'t': 'tiny', 's': 'small', 'b': 'base', 'l': 'large'}
    default_mixer_cfg = dict(
        type='ShiftwiseConv',
        norm_cfg=dict(type='BN'),
        fast_path=True,
        ghost_ratio=0.23,
        num_paths=2,
        num_reps=4,
        ghost_split='v1',
        seed=123)
    block_cls = ShiftWiseV1Block

    def __init__(self,
                 arch: Union[str, dict] = 'tiny',
                 in_channels: int = 3,
                 kernel_size: Sequence[int] = (51, 49, 45, 13, 5),
                 **kwargs) -> None:
        super().__init__(arch, in_channels, kernel_size, **kwargs)


@MODELS.register_module()
class ShiftWiseV2(LargeKernelConvNeXt):
    """SW-v2 backbone: UniRepLKNet-style stem, downsampling and blocks.

    Official ``ShiftWise_v2`` (``backbones/SW_v2_unirep.py``):

    - stem: ``Conv2d(3, C0/2, 3, s2, p1)`` + LN + GELU +
      ``Conv2d(C0/2, C0, 3, s2, p1)`` + LN;
      downsample ``i = 1..3``: ``Conv2d(C_{i-1}, C_i, 3, s2, p1)`` + LN
      (LayerNorm over channels, eps 1e-6; ``norm_cfg``);
    - :class:`ShiftWiseV2Block` stages (SW -> BN -> SE -> Linear 4C ->
      GELU -> GRN -> Linear -> BN -> gamma), SW with the ``'v2'`` ghost
      split (even number of rep channels);
    - published SW-T recipe (README): kernels ``[51, 49, 47, 13, 3]``,
      ghost ratio 0.23, ``N_path`` 2, ``N_rep`` 4, drop path 0.2, sparse
      training at sparsity 0.3 over the SW pieces; 83.39 top-1 (300 ep).

    Args:
        arch (str | dict): ``'tiny'`` (depths ``[3, 3, 18, 3]``, channels
            ``[80, 160, 320, 640]``), ``'small'`` (``[3, 3, 27, 3]``,
            ``96..768``), ``'base'`` (``128..1024``), ``'large'``
            (``192..1536``), aliases ``t/s/b/l``, or a dict with ``depths``
            and ``channels``. Defaults to ``'tiny'``.
        in_channels (int): Input image channels. Defaults to 3.
        kernel_size (Sequence[int]): Defaults to ``(51, 49, 47, 13, 3)``.
        block_norm_cfg (dict): The two BatchNorms of every block (official:
            SyncBN); ``block_cfg['norm_cfg']`` overrides it. A deprecated
            BatchNorm ``norm_cfg`` sets it too. Defaults to
            ``dict(type='BN')``.
        **kwargs: The other arguments of :class:`ShiftWiseV1`;
            ``mixer_cfg['ghost_split']`` defaults to ``'v2'``.

    Shape:
        - Input: ``(N, in_channels, H, W)``.
        - Output: tuple of ``(N, C_i)`` or ``(N, C_i, H_i, W_i)`` with
          ``H_0 = ceil(ceil(H / 2) / 2)`` and ``H_{i+1} = ceil(H_i / 2)``.
    """
    arch_settings = {
        **ShiftWiseV1.arch_settings, 'tiny': {
            'depths': [3, 3, 18, 3],
            'channels': [80, 160, 320, 640]
        }
    }
    arch_aliases = ShiftWiseV1.arch_aliases
    default_mixer_cfg = dict(ShiftWiseV1.default_mixer_cfg, ghost_split='v2')
    block_cls = ShiftWiseV2Block
    legacy_norm_targets = ("mixer_cfg['norm_cfg']", 'block_norm_cfg')

    def __init__(self,
                 arch: Union[str, dict] = 'tiny',
                 in_channels: int = 3,
                 kernel_size: Sequence[int] = (51, 49, 47, 13, 3),
                 *,
                 block_norm_cfg: dict = dict(type='BN'),
                 **kwargs) -> None:
        if is_batch_norm_cfg(kwargs.get('norm_cfg')):
            # the former meaning of `norm_cfg` (warned about by the base)
            block_norm_cfg = kwargs['norm_cfg']
        block_cfg = dict(norm_cfg=block_norm_cfg)
        block_cfg.update(kwargs.pop('block_cfg', None) or {})
        super().__init__(
            arch, in_channels, kernel_size, block_cfg=block_cfg, **kwargs)

    def _build_downsample_layers(self, in_channels: int,
                                 norm_cfg: dict) -> nn.ModuleList:
        c0 = self.channels[0]
        layers = nn.ModuleList([
            Sequential(
                nn.Conv2d(in_channels, c0 // 2, 3, stride=2, padding=1),
                build_norm_layer(norm_cfg, c0 // 2), nn.GELU(),
                nn.Conv2d(c0 // 2, c0, 3, stride=2, padding=1),
                build_norm_layer(norm_cfg, c0))
        ])
        for i in range(1, self.num_stages):
            layers.append(
                Sequential(
                    nn.Conv2d(
                        self.channels[i - 1],
                        self.channels[i],
                        3,
                        stride=2,
                        padding=1), build_norm_layer(norm_cfg,
                                                     self.channels[i])))
        return layers
