"""The block skeleton of the large-kernel backbones."""
from abc import abstractmethod
from typing import Optional

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule

from slak_mm.registry import MODELS


def build_mixer(cfg: dict, channels: int) -> nn.Module:
    """Build a token mixer from the slak_mm ``MODELS`` registry.

    The class is looked up with ``MODELS.get`` (as mmpretrain's
    ``build_norm_layer`` does), so the build does not depend on the default
    registry scope of the running toolbox.

    Args:
        cfg (dict): ``type`` (a registered name, e.g.
            ``'DecomposedLargeKernelConv'`` or ``'ShiftwiseConv'``, or a
            class) and the mixer's arguments except ``channels``.
        channels (int): Input and output channels of the mixer.

    Returns:
        nn.Module: The mixer, ``(N, C, H, W) -> (N, C, H, W)``.

    Raises:
        KeyError: If ``cfg`` has no ``type`` or the type is not registered.
        TypeError: From the mixer, for an argument it does not take.
    """
    cfg = dict(cfg)
    if 'type' not in cfg:
        raise KeyError(f'`mixer_cfg` needs a "type", got {cfg!r}.')
    mixer_type = cfg.pop('type')
    mixer_cls = MODELS.get(mixer_type) if isinstance(mixer_type,
                                                     str) else mixer_type
    if mixer_cls is None:
        raise KeyError(f'`mixer_cfg` type {mixer_type!r} is not in the '
                       'slak_mm MODELS registry.')
    return mixer_cls(channels=channels, **cfg)


class LargeKernelBlock(BaseModule):
    """Base of the blocks: ``x + DropPath(residual(x))``.

    Builds the token mixer ``large_kernel`` (:func:`build_mixer`), the layer
    scale ``gamma`` and the drop path; a subclass builds the rest and
    implements :meth:`residual` (which applies ``gamma``).

    Args:
        channels (int): Number of channels ``C``.
        mixer_cfg (dict): Config of the token mixer (``type`` and its
            arguments; ``channels`` is set here).
        drop_path_rate (float): Stochastic depth rate. Defaults to 0.
        layer_scale_init_value (float): Initial value of ``gamma``; no layer
            scale when ``<= 0``. Defaults to 1e-6.
        with_cp (bool): Use gradient checkpointing. Defaults to False.
        init_cfg (dict, optional): Initialization config.

    Shape:
        ``(N, C, H, W) -> (N, C, H, W)``.
    """

    def __init__(self,
                 channels: int,
                 mixer_cfg: dict,
                 drop_path_rate: float = 0.,
                 layer_scale_init_value: float = 1e-6,
                 with_cp: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.with_cp = with_cp
        self.large_kernel = build_mixer(mixer_cfg, channels)
        self.gamma = nn.Parameter(
            layer_scale_init_value * torch.ones(channels),
            requires_grad=True) if layer_scale_init_value > 0 else None
        self.drop_path = DropPath(
            drop_path_rate) if drop_path_rate > 0. else nn.Identity()

    @abstractmethod
    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """The residual branch, ``(N, C, H, W) -> (N, C, H, W)``; each
        block class defines it (mmengine's ``BaseModule`` is an ``ABC``, so
        this base cannot be instantiated)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W) -> (N, C, H, W)``; checkpointed with
        ``with_cp`` when ``x`` requires a gradient."""

        def _inner_forward(x):
            return x + self.drop_path(self.residual(x))

        if self.with_cp and x.requires_grad:
            return cp.checkpoint(_inner_forward, x, use_reentrant=False)
        return _inner_forward(x)
