"""The ConvNeXt skeleton shared by the SLaK and ShiftWise backbones.

:class:`LargeKernelConvNeXt` follows mmpretrain's ``ConvNeXt`` (module
layout ``downsample_layers`` / ``stages`` / ``norm{i}``, ``arch_settings``,
``out_indices``, ``frozen_stages``, ``gap_before_final_norm``,
``get_layer_depth``) with a configurable token mixer in every block, as
mmpretrain's ``ConvNeXtBlock`` has ``dw_conv_cfg``. A backbone of the
family is a subclass that sets the arch table, the default mixer, the block
class and, if it differs, the stem.
"""
from itertools import chain
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import Sequential
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.models.utils import build_norm_layer
from torch.nn.modules.batchnorm import _BatchNorm

from .backbone_args import (DEFAULT_NORM_CFG, parse_arch, parse_kernel_size,
                            parse_out_indices, resolve_mixer_cfg)
from .large_kernel_block import LargeKernelBlock

#: Initialisation of the official code: trunc-normal (std .02) conv / linear
#: weights, zero biases; LayerNorms at 1 / 0.
DEFAULT_INIT_CFG = [
    dict(type='TruncNormal', layer=['Conv2d', 'Linear'], std=.02, bias=0.),
    dict(type='Constant', layer=['LayerNorm', 'LayerNorm2d'], val=1., bias=0.),
]

#: ``init_cfg`` types that load a checkpoint (mmengine's and slak_mm's).
PRETRAINED_INIT_TYPES = ('Pretrained', 'CheckedPretrained')


class LargeKernelConvNeXt(BaseBackbone):
    """A ConvNeXt with large-kernel token mixers: the base of
    :class:`~slak_mm.models.SLaK` and the ShiftWise backbones.

    - stem ``Conv2d(in_channels, C0, 4, stride 4)`` + norm, downsample
      ``i >= 1``: norm + ``Conv2d(C_{i-1}, C_i, 2, stride 2)``
      (:meth:`_build_downsample_layers`, which a subclass may replace);
    - stage ``i``: ``depths[i]`` blocks ``block_cls``, each with a mixer
      built from ``mixer_cfg`` with ``kernel_size=kernel_size[i]`` and
      ``small_kernel_size=kernel_size[-1]``;
    - output ``norm{i}`` for every stage in ``out_indices``.

    A subclass sets ``arch_settings`` (and ``arch_aliases``),
    ``default_mixer_cfg`` and ``block_cls``.

    Args:
        arch (str | dict): A name of ``arch_settings`` (or an alias), or a
            dict with ``depths`` and ``channels`` (before
            ``width_factor``).
        in_channels (int): Input image channels. Defaults to 3.
        kernel_size (Sequence[int]): One large kernel size per stage, then
            the small kernel size; all odd, each large size ``>=`` the
            small one.
        width_factor (float): Channel multiplier, truncated with ``int``.
            Defaults to 1.0.
        mixer_cfg (dict, optional): Merged over ``default_mixer_cfg``:
            the token mixer's ``type`` and arguments. ``channels``,
            ``kernel_size`` and ``small_kernel_size`` are set by the
            backbone; an argument the mixer does not take raises the
            mixer's own ``TypeError``. Defaults to None.
        norm_cfg (dict): The network's norms: stem, downsampling and
            output ``norm{i}`` (ConvNeXt's ``norm_cfg``). Defaults to
            ``dict(type='LN2d', eps=1e-6)``. A BatchNorm config here is the
            former meaning (the large-kernel branch norm): it is moved to
            ``mixer_cfg['norm_cfg']`` with a ``DeprecationWarning``, and
            the network keeps the default norm.
        drop_path_rate (float): Maximum stochastic depth rate, increasing
            linearly over all blocks. Defaults to 0.
        layer_scale_init_value (float): Initial layer scale. Defaults to
            1e-6.
        out_indices (int | Sequence[int]): Stages whose (normed) output is
            returned; negative values count from the end. Defaults to -1.
        frozen_stages (int): Stages (with their downsample layer) to freeze,
            ``0`` for none. Defaults to 0.
        norm_eval (bool): Keep every BatchNorm in eval mode during
            training. Defaults to False.
        gap_before_final_norm (bool): Global-average-pool before the output
            norms and return ``(N, C)`` vectors (classification). False
            returns ``(N, C, H, W)`` maps (dense prediction). Defaults to
            True.
        pretrained_out_norms (bool): Whether a ``Pretrained`` (or
            ``CheckedPretrained``) ``init_cfg`` may set the output norms
            ``norm{i}``. If False they keep weight 1 / bias 0 after
            loading: the final norm of a classification checkpoint
            (``backbone.norm3`` in mmpretrain format) is then not loaded into
            the ``norm3`` of a segmentation / detection backbone, as in the
            official SLaK code (VITA-Group/SLaK
            ``segmentation/slak.py:260-264,303-315``,
            ``detection/slak.py:256-260``: ``norm0..3`` created at 1 / 0,
            and the classification ``norm`` matches no key of theirs when
            loaded with ``strict=False``). The published dense-prediction
            configs set False; keep True for classification (``norm3`` is
            the final norm) and for a checkpoint whose ``norm0..3`` were
            trained for dense prediction. Only the ``init_cfg`` is
            affected, not ``load_from`` / ``--resume``. Defaults to True.
        with_cp (bool): Gradient checkpointing in the blocks. Defaults to
            False.
        block_cfg (dict, optional): Further arguments of ``block_cls``
            (e.g. ``mlp_ratio``). Defaults to None.
        init_cfg (dict | list[dict], optional): Initialization config.
            Defaults to trunc-normal convs / linears and unit LayerNorms.
        fast_path, decompose (bool, optional): Deprecated; moved to
            ``mixer_cfg`` with a ``DeprecationWarning``.
        sw_cfg (dict, optional): Deprecated; its keys (``ghost_ratio``,
            ``num_paths``, ``num_reps``, ``ghost_split``, ``seed``) are
            moved to ``mixer_cfg`` with a ``DeprecationWarning``.

    Precedence of the mixer arguments: ``default_mixer_cfg``, then the
    deprecated arguments, then ``mixer_cfg``.

    Raises:
        ValueError: For an unknown ``arch``, a malformed ``arch`` dict, a
            ``kernel_size`` list of the wrong length or with even / too small
            sizes, ``out_indices`` / ``frozen_stages`` out of range, a
            ``mixer_cfg`` that sets an injected key, or ``sw_cfg`` keys
            other than the five above.

    Shape:
        - Input: ``(N, in_channels, H, W)``.
        - Output: a tuple with one tensor per ``out_indices`` entry,
          ``(N, C_i)`` if ``gap_before_final_norm`` else
          ``(N, C_i, H_i, W_i)``.
    """
    arch_settings: Dict[str, dict] = {}
    arch_aliases = {'t': 'tiny', 's': 'small', 'b': 'base'}
    default_mixer_cfg: dict = {}
    block_cls = LargeKernelBlock
    #: Where a deprecated BatchNorm ``norm_cfg`` goes (for the warning).
    legacy_norm_targets = ("mixer_cfg['norm_cfg']", )

    def __init__(self,
                 arch: Union[str, dict],
                 in_channels: int = 3,
                 kernel_size: Sequence[int] = (51, 49, 47, 13, 5),
                 width_factor: float = 1.0,
                 mixer_cfg: Optional[dict] = None,
                 norm_cfg: dict = DEFAULT_NORM_CFG,
                 drop_path_rate: float = 0.,
                 layer_scale_init_value: float = 1e-6,
                 out_indices: Union[int, Sequence[int]] = -1,
                 frozen_stages: int = 0,
                 norm_eval: bool = False,
                 gap_before_final_norm: bool = True,
                 pretrained_out_norms: bool = True,
                 with_cp: bool = False,
                 block_cfg: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, list]] = DEFAULT_INIT_CFG,
                 *,
                 fast_path: Optional[bool] = None,
                 decompose: Optional[bool] = None,
                 sw_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.arch = parse_arch(arch, self.arch_settings, self.arch_aliases)
        self.depths = list(self.arch['depths'])
        self.num_stages = len(self.depths)
        self.width_factor = width_factor
        self.channels = [int(c * width_factor) for c in self.arch['channels']]
        self.kernel_size = parse_kernel_size(kernel_size, self.num_stages)
        self.out_indices = parse_out_indices(out_indices, self.num_stages)
        if isinstance(frozen_stages, bool) or not isinstance(
                frozen_stages, int) or \
                not 0 <= frozen_stages <= self.num_stages:
            raise ValueError(f'`frozen_stages` must be an int in [0, '
                             f'{self.num_stages}], got {frozen_stages!r}.')
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.gap_before_final_norm = gap_before_final_norm
        self.pretrained_out_norms = bool(pretrained_out_norms)
        norm_cfg, self.mixer_cfg = resolve_mixer_cfg(
            type(self).__name__,
            self.default_mixer_cfg,
            mixer_cfg,
            norm_cfg,
            dict(fast_path=fast_path, decompose=decompose, sw_cfg=sw_cfg),
            legacy_norm_targets=self.legacy_norm_targets)
        self.deploy = bool(self.mixer_cfg.get('deploy', False))

        self.downsample_layers = self._build_downsample_layers(
            in_channels, norm_cfg)
        dpr = torch.linspace(0, drop_path_rate, sum(self.depths)).tolist()
        self.stages = nn.ModuleList()
        for i, depth in enumerate(self.depths):
            stage_mixer_cfg = dict(
                self.mixer_cfg,
                kernel_size=self.kernel_size[i],
                small_kernel_size=self.kernel_size[-1])
            first = sum(self.depths[:i])
            self.stages.append(
                Sequential(*[
                    self.block_cls(
                        self.channels[i],
                        stage_mixer_cfg,
                        drop_path_rate=dpr[first + j],
                        layer_scale_init_value=layer_scale_init_value,
                        with_cp=with_cp,
                        **(block_cfg or {})) for j in range(depth)
                ]))
        for i in self.out_indices:
            self.add_module(f'norm{i}',
                            build_norm_layer(norm_cfg, self.channels[i]))
        self._freeze_stages()

    def _build_downsample_layers(self, in_channels: int,
                                 norm_cfg: dict) -> nn.ModuleList:
        """ConvNeXt stem (4x4 conv, stride 4, + norm) and downsample layers
        (norm + 2x2 conv, stride 2)."""
        layers = nn.ModuleList([
            Sequential(
                nn.Conv2d(
                    in_channels, self.channels[0], kernel_size=4, stride=4),
                build_norm_layer(norm_cfg, self.channels[0]))
        ])
        for i in range(1, self.num_stages):
            layers.append(
                Sequential(
                    build_norm_layer(norm_cfg, self.channels[i - 1]),
                    nn.Conv2d(
                        self.channels[i - 1],
                        self.channels[i],
                        kernel_size=2,
                        stride=2)))
        return layers

    def init_weights(self) -> None:
        """Initialize; with ``pretrained_out_norms=False`` and a checkpoint
        in ``init_cfg`` (types ``Pretrained`` / ``CheckedPretrained``), set
        the output norms back to weight 1 / bias 0 after loading."""
        init_cfgs = self.init_cfg if isinstance(self.init_cfg,
                                                list) else [self.init_cfg]
        pretrained = not self.is_init and any(
            isinstance(cfg, dict) and cfg.get('type') in PRETRAINED_INIT_TYPES
            for cfg in init_cfgs)
        super().init_weights()
        if pretrained and not self.pretrained_out_norms:
            self._reset_out_norms()

    def _reset_out_norms(self) -> None:
        """Set the output norms to weight 1 / bias 0 (their state before a
        checkpoint is loaded, and the official downstream one)."""
        names = [f'norm{i}' for i in self.out_indices]
        for name in names:
            norm = getattr(self, name)
            nn.init.ones_(norm.weight)
            nn.init.zeros_(norm.bias)
        print_log(
            f'{type(self).__name__}: {", ".join(names)} kept at weight 1 / '
            'bias 0, not loaded from the checkpoint '
            '(pretrained_out_norms=False).',
            logger='current')

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Forward the stages.

        Args:
            x (torch.Tensor): Images of shape ``(N, in_channels, H, W)``.

        Returns:
            Tuple[torch.Tensor]: The normed outputs of the stages in
            ``out_indices``: ``(N, C_i)`` or ``(N, C_i, H_i, W_i)``.
        """
        outs = []
        for i in range(self.num_stages):
            x = self.downsample_layers[i](x)
            x = self.stages[i](x)
            if i in self.out_indices:
                norm_layer = getattr(self, f'norm{i}')
                if self.gap_before_final_norm:
                    gap = x.mean([-2, -1], keepdim=True)
                    outs.append(norm_layer(gap).flatten(1))
                else:
                    outs.append(norm_layer(x))
        return tuple(outs)

    def _freeze_stages(self) -> None:
        for i in range(self.frozen_stages):
            downsample_layer = self.downsample_layers[i]
            stage = self.stages[i]
            downsample_layer.eval()
            stage.eval()
            for param in chain(downsample_layer.parameters(),
                               stage.parameters()):
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'LargeKernelConvNeXt':
        """Set train mode, keeping frozen stages (and BN if ``norm_eval``)
        in eval mode."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    def switch_to_deploy(self) -> None:
        """Call ``switch_to_deploy()`` of every mixer that has one, in place
        (mmpretrain RepLKNet's convention); outputs in eval mode are
        unchanged up to float rounding. Idempotent.

        Raises:
            TypeError: From a mixer whose norms cannot be folded (see
                :meth:`DecomposedLargeKernelConv.switch_to_deploy`).
        """
        mixers = [
            m for m in self.modules() if m is not self
            and callable(getattr(m, 'switch_to_deploy', None))
        ]
        for mixer in mixers:
            mixer.switch_to_deploy()
        self.deploy = True

    def get_layer_depth(self,
                        param_name: str,
                        prefix: str = '',
                        max_layer_id: Optional[int] = None) -> Tuple[int, int]:
        """Layer id of a parameter for layer-wise learning-rate decay.

        The ``layer_wise`` rule of ConvNeXt/BEiT that the official SLaK
        segmentation and detection code uses: downsample layers 0/1/2/3 ->
        0/2/3/``max``, stage 0 -> 1, stage 1 -> 2, stage 2 block ``j`` ->
        ``3 + j // 3``, stage 3 -> ``max``, everything else (output norms,
        and anything not under ``prefix``: necks, heads) -> ``max + 1``.
        Same signature and return value as mmpretrain's
        ``ConvNeXt.get_layer_depth``, so mmpretrain's
        ``LearningRateDecayOptimWrapperConstructor`` works with SLaK.

        Args:
            param_name (str): Parameter name, e.g.
                ``'backbone.stages.2.4.pointwise_conv1.weight'``.
            prefix (str): Prefix of the backbone parameters, e.g.
                ``'backbone.'``. Defaults to ''.
            max_layer_id (int, optional): ``max``; defaults to 12 when the
                third stage has more than 9 blocks, else 6 (the
                ``num_layers`` of the published configs).

        Returns:
            Tuple[int, int]: ``(layer_id, max_layer_id + 2)``, the latter
            being the total number of layer ids.
        """
        if max_layer_id is None:
            max_layer_id = 12 if self.depths[-2] > 9 else 6
        if not param_name.startswith(prefix):
            return max_layer_id + 1, max_layer_id + 2
        parts = param_name[len(prefix):].split('.')
        last = self.num_stages - 1
        if parts[0] == 'downsample_layers':
            stage_id = int(parts[1])
            layer_id = {0: 0, 1: 2, 2: 3}.get(stage_id, max_layer_id)
            if stage_id == last:
                layer_id = max_layer_id
        elif parts[0] == 'stages':
            stage_id, block_id = int(parts[1]), int(parts[2])
            if stage_id == last:
                layer_id = max_layer_id
            elif stage_id < 2:
                layer_id = stage_id + 1
            else:
                layer_id = 3 + block_id // 3
        else:
            layer_id = max_layer_id + 1
        return layer_id, max_layer_id + 2

    def get_stage_depth(self,
                        param_name: str,
                        prefix: str = '') -> Optional[int]:
        """Stage id of a parameter for ``stage_wise`` learning-rate decay.

        Every downsample layer -> 0, stage ``i`` -> ``i + 1``; parameters
        outside ``downsample_layers``/``stages`` (output norms, necks,
        heads) -> None, which
        :class:`slak_mm.engine.LearningRateDecayOptimizerConstructor` maps
        to ``num_layers + 1`` (lr scale 1), as the official SLaK and mmseg's
        ConvNeXt ``stage_wise`` rule does.

        Args:
            param_name (str): Parameter name.
            prefix (str): Prefix of the backbone parameters.

        Returns:
            int | None: The stage id.
        """
        if not param_name.startswith(prefix):
            return None
        parts = param_name[len(prefix):].split('.')
        if parts[0] == 'downsample_layers':
            return 0
        if parts[0] == 'stages':
            return int(parts[1]) + 1
        return None
