"""ShiftWise backbones (SW-v1 and SW-v2) built on :class:`ShiftwiseConv`.

`ShiftwiseConv: Small Convolutional Kernel with Large Kernel Effect
<https://arxiv.org/abs/2401.12736>`_. Architectures as in the official
repository (lidc54/shift-wiseConv, ``backbones/SW_v1_slak.py`` and
``backbones/SW_v2_unirep.py``); the module layout (``downsample_layers``,
``stages``, ``norm{i}``) and the interface are those of :class:`SLaK`, whose
argument parsing, forward, freezing and layer-decay rules are reused.
"""
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule, Sequential
from mmpretrain.models.utils import GRN, LayerNorm2d

from slak_mm.registry import MODELS
from ..layers.shiftwise_conv import ShiftwiseConv
from .slak import DEFAULT_INIT_CFG, SLaK, SLaKBlock


def _sw_kwargs(sw_cfg: Optional[dict]) -> dict:
    """Validate the extra :class:`ShiftwiseConv` arguments of a backbone."""
    sw_cfg = dict(sw_cfg or {})
    allowed = {'ghost_ratio', 'num_paths', 'num_reps', 'ghost_split', 'seed'}
    unknown = set(sw_cfg) - allowed
    if unknown:
        raise ValueError(f'`sw_cfg` keys must be in {sorted(allowed)}, got '
                         f'{sorted(unknown)}.')
    return sw_cfg


class ShiftWiseV1Block(SLaKBlock):
    """SW-v1 block: the SLaK block with a :class:`ShiftwiseConv`.

    ``x + DropPath(gamma * Linear(GELU(Linear(LN(SW(x))))))``, the official
    ``Block`` of ``SW_v1_slak.py`` (with ``use_se=False``); the forward is
    :class:`SLaKBlock`'s.

    Args:
        channels (int): Number of channels ``C``.
        kernel_size (int): Emulated large kernel size ``K``.
        small_kernel_size (int): Piece size ``k``.
        sw_cfg (dict, optional): Extra :class:`ShiftwiseConv` arguments
            (``ghost_ratio``, ``num_paths``, ``num_reps``, ``ghost_split``,
            ``seed``).
        mlp_ratio (float): Hidden width over ``C``. Defaults to 4.
        norm_cfg (dict): Norm of the SW branches. Defaults to BN.
        drop_path_rate (float): Stochastic depth rate. Defaults to 0.
        layer_scale_init_value (float): Initial ``gamma``; none if
            ``<= 0``. Defaults to 1e-6.
        with_cp (bool): Gradient checkpointing. Defaults to False.
        fast_path (bool): :class:`ShiftwiseConv`'s ``fast_path``.
            Defaults to True.
        init_cfg (dict, optional): Initialization config.

    Shape:
        ``(N, C, H, W) -> (N, C, H, W)``.
    """

    def __init__(self,
                 channels: int,
                 kernel_size: int,
                 small_kernel_size: int,
                 sw_cfg: Optional[dict] = None,
                 mlp_ratio: float = 4.,
                 norm_cfg: dict = dict(type='BN'),
                 drop_path_rate: float = 0.,
                 layer_scale_init_value: float = 1e-6,
                 with_cp: bool = False,
                 fast_path: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        # SLaKBlock.__init__ would build a DecomposedLargeKernelConv; the
        # attributes its forward uses are set here instead.
        BaseModule.__init__(self, init_cfg=init_cfg)
        self.with_cp = with_cp
        self.large_kernel = ShiftwiseConv(
            channels,
            kernel_size,
            small_kernel_size,
            norm_cfg=norm_cfg,
            fast_path=fast_path,
            **_sw_kwargs(sw_cfg))
        self.norm = nn.LayerNorm(channels, eps=1e-6)
        hidden = int(mlp_ratio * channels)
        self.pointwise_conv1 = nn.Linear(channels, hidden)
        self.act = nn.GELU()
        self.pointwise_conv2 = nn.Linear(hidden, channels)
        self.gamma = nn.Parameter(
            layer_scale_init_value * torch.ones(channels),
            requires_grad=True) if layer_scale_init_value > 0 else None
        self.drop_path = DropPath(
            drop_path_rate) if drop_path_rate > 0. else nn.Identity()


class SEBlock(nn.Module):
    """Squeeze-and-excitation (SENet, arXiv 1709.01507) as in UniRepLKNet
    and SW-v2: ``x * sigmoid(up(relu(down(avgpool(x)))))`` with 1x1 convs
    with bias.

    Args:
        channels (int): Channels ``C``.
        internal_channels (int): Bottleneck channels (SW-v2: ``C // 4``).

    Shape:
        ``(N, C, H, W) -> (N, C, H, W)``.
    """

    def __init__(self, channels: int, internal_channels: int) -> None:
        super().__init__()
        self.down = nn.Conv2d(channels, internal_channels, 1, bias=True)
        self.up = nn.Conv2d(internal_channels, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = F.adaptive_avg_pool2d(x, 1)
        scale = torch.sigmoid(self.up(F.relu(self.down(scale))))
        return x * scale


class ShiftWiseV2Block(BaseModule):
    """SW-v2 block (UniRepLKNet-style), the official ``Block`` of
    ``SW_v2_unirep.py`` (``use_se=True``).

    ``x + DropPath(gamma * BN(Linear(GRN(GELU(Linear(SE(BN(SW(x)))))))))``,
    with ``Linear(C, 4C)`` (bias), GRN with bias over channels last, and
    ``Linear(4C, C, bias=False)`` followed by a BN.

    Args:
        channels (int): Number of channels ``C``.
        kernel_size (int): Emulated large kernel size ``K``.
        small_kernel_size (int): Piece size ``k``.
        sw_cfg (dict, optional): Extra :class:`ShiftwiseConv` arguments.
        mlp_ratio (float): Hidden width over ``C``. Defaults to 4.
        norm_cfg (dict): Norm of the SW branches and of the block (official:
            SyncBN). Defaults to ``dict(type='BN')``.
        drop_path_rate (float): Stochastic depth rate. Defaults to 0.
        layer_scale_init_value (float): Initial ``gamma``; none if
            ``<= 0``. Defaults to 1e-6.
        with_cp (bool): Gradient checkpointing. Defaults to False.
        fast_path (bool): :class:`ShiftwiseConv`'s ``fast_path``.
            Defaults to True.
        init_cfg (dict, optional): Initialization config.

    Shape:
        ``(N, C, H, W) -> (N, C, H, W)``.
    """

    def __init__(self,
                 channels: int,
                 kernel_size: int,
                 small_kernel_size: int,
                 sw_cfg: Optional[dict] = None,
                 mlp_ratio: float = 4.,
                 norm_cfg: dict = dict(type='BN'),
                 drop_path_rate: float = 0.,
                 layer_scale_init_value: float = 1e-6,
                 with_cp: bool = False,
                 fast_path: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.with_cp = with_cp
        sw_cfg = _sw_kwargs(sw_cfg)
        sw_cfg.setdefault('ghost_split', 'v2')
        self.large_kernel = ShiftwiseConv(
            channels,
            kernel_size,
            small_kernel_size,
            norm_cfg=norm_cfg,
            fast_path=fast_path,
            **sw_cfg)
        self.norm = build_norm_layer(norm_cfg, channels)[1]
        self.se = SEBlock(channels, channels // 4)
        hidden = int(mlp_ratio * channels)
        self.pointwise_conv1 = nn.Linear(channels, hidden)
        self.act = nn.GELU()
        self.grn = GRN(hidden)
        self.pointwise_conv2 = nn.Linear(hidden, channels, bias=False)
        self.norm2 = build_norm_layer(norm_cfg, channels)[1]
        self.gamma = nn.Parameter(
            layer_scale_init_value * torch.ones(channels),
            requires_grad=True) if layer_scale_init_value > 0 else None
        self.drop_path = DropPath(
            drop_path_rate) if drop_path_rate > 0. else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:

        def _inner_forward(x):
            shortcut = x
            x = self.se(self.norm(self.large_kernel(x)))
            x = x.permute(0, 2, 3, 1)  # (N, H, W, C)
            x = self.act(self.pointwise_conv1(x))
            x = self.grn(x, data_format='channel_last')
            x = self.pointwise_conv2(x).permute(0, 3, 1, 2)  # (N, C, H, W)
            x = self.norm2(x)
            if self.gamma is not None:
                x = x * self.gamma.view(1, -1, 1, 1)
            return shortcut + self.drop_path(x)

        if self.with_cp and x.requires_grad:
            return cp.checkpoint(_inner_forward, x, use_reentrant=False)
        return _inner_forward(x)


class _ShiftWiseBase(SLaK):
    """Shared construction of the SW backbones (SLaK's interface).

    Subclasses define ``arch_settings`` and ``block_cls`` (SW-v2 also its
    own ``_build_downsample_layers``; SW-v1 keeps SLaK's). Construction,
    ``forward``, ``train`` / ``_freeze_stages``, ``get_layer_depth`` and
    ``get_stage_depth`` are :class:`SLaK`'s.
    """
    block_cls = ShiftWiseV1Block

    def __init__(
            self,
            arch: Union[str, dict] = 'tiny',
            in_channels: int = 3,
            kernel_size: Sequence[int] = (51, 49, 45, 13, 5),
            width_factor: float = 1.0,
            sw_cfg: Optional[dict] = None,
            norm_cfg: dict = dict(type='BN'),
            drop_path_rate: float = 0.,
            layer_scale_init_value: float = 1e-6,
            out_indices: Union[int, Sequence[int]] = -1,
            frozen_stages: int = 0,
            norm_eval: bool = False,
            gap_before_final_norm: bool = True,
            pretrained_out_norms: bool = True,
            with_cp: bool = False,
            fast_path: bool = True,
            init_cfg: Optional[Union[dict, list]] = DEFAULT_INIT_CFG) -> None:
        # read by _block_kwargs() while SLaK.__init__ builds the stages
        self.sw_cfg = _sw_kwargs(sw_cfg)
        super().__init__(
            arch=arch,
            in_channels=in_channels,
            kernel_size=kernel_size,
            width_factor=width_factor,
            norm_cfg=norm_cfg,
            drop_path_rate=drop_path_rate,
            layer_scale_init_value=layer_scale_init_value,
            out_indices=out_indices,
            frozen_stages=frozen_stages,
            norm_eval=norm_eval,
            gap_before_final_norm=gap_before_final_norm,
            pretrained_out_norms=pretrained_out_norms,
            with_cp=with_cp,
            deploy=False,
            fast_path=fast_path,
            init_cfg=init_cfg)

    def _block_kwargs(self) -> dict:
        return dict(sw_cfg=self.sw_cfg, fast_path=self.fast_path)

    def switch_to_deploy(self) -> None:
        """Merge the ``num_paths`` convs of every :class:`ShiftwiseConv`
        into one (the official ``reparameterize``); outputs unchanged."""
        for module in self.modules():
            if isinstance(module, ShiftwiseConv):
                module.merge_paths()
        self.deploy = True


@MODELS.register_module()
class ShiftWiseV1(_ShiftWiseBase):
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
            ``[51, 49, 45, 13, 5]``.
        width_factor (float): Channel multiplier. Defaults to 1.0.
        sw_cfg (dict, optional): Extra :class:`ShiftwiseConv` arguments:
            ``ghost_ratio`` (0.23), ``num_paths`` (2), ``num_reps`` (4),
            ``ghost_split`` (``'v1'``), ``seed`` (123).
        norm_cfg (dict): Norm of the SW branches. Defaults to BN.
        drop_path_rate (float): Maximum stochastic depth rate.
            Defaults to 0.
        layer_scale_init_value (float): Initial layer scale.
            Defaults to 1e-6.
        out_indices (int | Sequence[int]): Output stages. Defaults to -1.
        frozen_stages (int): Stages to freeze. Defaults to 0.
        norm_eval (bool): Keep BN layers in eval mode. Defaults to False.
        gap_before_final_norm (bool): Return ``(N, C)`` pooled vectors;
            False for ``(N, C, H, W)`` maps. Defaults to True.
        pretrained_out_norms (bool): Whether a ``Pretrained`` ``init_cfg``
            may set the output norms; False keeps them at 1 / 0 (official
            downstream behaviour, see :class:`SLaK`). Defaults to True.
        with_cp (bool): Gradient checkpointing. Defaults to False.
        fast_path (bool): The CPU fast path of the SW strip convs
            (:class:`ShiftwiseConv`); same outputs. Defaults to True.
        init_cfg (dict | list[dict], optional): Initialization config.

    Raises:
        ValueError: For a bad ``arch``, ``kernel_size``, ``sw_cfg``,
            ``out_indices`` or ``frozen_stages``.

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
    block_cls = ShiftWiseV1Block


@MODELS.register_module()
class ShiftWiseV2(_ShiftWiseBase):
    """SW-v2 backbone: UniRepLKNet-style stem, downsampling and blocks.

    Official ``ShiftWise_v2`` (``backbones/SW_v2_unirep.py``):

    - stem: ``Conv2d(3, C0/2, 3, s2, p1)`` + LN + GELU +
      ``Conv2d(C0/2, C0, 3, s2, p1)`` + LN;
      downsample ``i = 1..3``: ``Conv2d(C_{i-1}, C_i, 3, s2, p1)`` + LN
      (LayerNorm over channels, eps 1e-6);
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
        kernel_size (Sequence[int]): Defaults to ``[51, 49, 47, 13, 3]``.
        **kwargs: The other arguments of :class:`ShiftWiseV1`;
            ``sw_cfg['ghost_split']`` defaults to ``'v2'``.

    Shape:
        - Input: ``(N, in_channels, H, W)``.
        - Output: tuple of ``(N, C_i)`` or ``(N, C_i, H_i, W_i)`` with
          ``H_0 = ceil(ceil(H / 2) / 2)`` and ``H_{i+1} = ceil(H_i / 2)``.
    """
    arch_settings = {
        'tiny': {
            'depths': [3, 3, 18, 3],
            'channels': [80, 160, 320, 640]
        },
        'small': {
            'depths': [3, 3, 27, 3],
            'channels': [96, 192, 384, 768]
        },
        'base': {
            'depths': [3, 3, 27, 3],
            'channels': [128, 256, 512, 1024]
        },
        'large': {
            'depths': [3, 3, 27, 3],
            'channels': [192, 384, 768, 1536]
        },
    }
    arch_aliases = {'t': 'tiny', 's': 'small', 'b': 'base', 'l': 'large'}
    block_cls = ShiftWiseV2Block

    def __init__(self,
                 arch: Union[str, dict] = 'tiny',
                 kernel_size: Sequence[int] = (51, 49, 47, 13, 3),
                 **kwargs) -> None:
        super().__init__(arch=arch, kernel_size=kernel_size, **kwargs)

    def _build_downsample_layers(self, in_channels: int) -> nn.ModuleList:
        c0 = self.channels[0]
        layers = nn.ModuleList([
            Sequential(
                nn.Conv2d(in_channels, c0 // 2, 3, stride=2, padding=1),
                LayerNorm2d(c0 // 2, eps=1e-6), nn.GELU(),
                nn.Conv2d(c0 // 2, c0, 3, stride=2, padding=1),
                LayerNorm2d(c0, eps=1e-6))
        ])
        for i in range(1, self.num_stages):
            layers.append(
                Sequential(
                    nn.Conv2d(
                        self.channels[i - 1],
                        self.channels[i],
                        3,
                        stride=2,
                        padding=1), LayerNorm2d(self.channels[i], eps=1e-6)))
        return layers
