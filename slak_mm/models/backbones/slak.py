"""SLaK backbone (ConvNeXt skeleton with decomposed sparse large kernels)."""
from itertools import chain
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn.bricks import DropPath
from mmengine.logging import print_log
from mmengine.model import BaseModule, Sequential
from mmpretrain.models.utils import LayerNorm2d
from torch.nn.modules.batchnorm import _BatchNorm

from slak_mm.registry import MODELS
from slak_mm.utils.checkpoint import check_checkpoint_keys
from ..layers import DecomposedLargeKernelConv

#: Initialisation of the official code: trunc-normal (std .02) conv / linear
#: weights, zero biases; LayerNorms at 1 / 0.
DEFAULT_INIT_CFG = [
    dict(type='TruncNormal', layer=['Conv2d', 'Linear'], std=.02, bias=0.),
    dict(type='Constant', layer=['LayerNorm', 'LayerNorm2d'], val=1., bias=0.),
]


class SLaKBlock(BaseModule):
    """One SLaK block.

    ``x + DropPath(gamma * Linear(GELU(Linear(LN(LK(x))))))``: a decomposed
    large-kernel depthwise conv (``large_kernel``), then, channels last, a
    LayerNorm, the inverted-bottleneck MLP (``pointwise_conv1`` ``C -> 4C``,
    GELU, ``pointwise_conv2`` ``4C -> C``) and the layer scale ``gamma``
    (paper Sec. 5; the ConvNeXt block with the 7x7 depthwise conv replaced).

    Args:
        channels (int): Number of channels ``C``.
        kernel_size (int): Large kernel size ``K`` (odd).
        small_kernel_size (int): Small kernel size ``s`` (odd, ``<= K``).
        mlp_ratio (float): Hidden width of the MLP over ``C``.
            Defaults to 4.
        norm_cfg (dict): Norm of the large-kernel branches.
            Defaults to ``dict(type='BN')``.
        drop_path_rate (float): Stochastic depth rate. Defaults to 0.
        layer_scale_init_value (float): Initial value of ``gamma``; no layer
            scale when ``<= 0``. Defaults to 1e-6.
        with_cp (bool): Use gradient checkpointing. Defaults to False.
        deploy (bool): Build the large kernel in deploy form (see
            :class:`DecomposedLargeKernelConv`). Defaults to False.
        fast_path (bool): Use the large kernel's fast path. Defaults to
            True.
        decompose (bool): Strip decomposition of the large kernel; False
            builds the dense ``K x K`` ablation. Defaults to True.
        init_cfg (dict, optional): Initialization config.

    Shape:
        ``(N, C, H, W) -> (N, C, H, W)``.
    """

    def __init__(self,
                 channels: int,
                 kernel_size: int,
                 small_kernel_size: int,
                 mlp_ratio: float = 4.,
                 norm_cfg: dict = dict(type='BN'),
                 drop_path_rate: float = 0.,
                 layer_scale_init_value: float = 1e-6,
                 with_cp: bool = False,
                 deploy: bool = False,
                 fast_path: bool = True,
                 decompose: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.with_cp = with_cp
        self.large_kernel = DecomposedLargeKernelConv(
            channels,
            kernel_size,
            small_kernel_size,
            norm_cfg=norm_cfg,
            deploy=deploy,
            fast_path=fast_path,
            decompose=decompose)
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:

        def _inner_forward(x):
            shortcut = x
            x = self.large_kernel(x)
            x = x.permute(0, 2, 3, 1)  # (N, H, W, C)
            x = self.norm(x)
            x = self.pointwise_conv1(x)
            x = self.act(x)
            x = self.pointwise_conv2(x)
            if self.gamma is not None:
                x = x * self.gamma
            x = x.permute(0, 3, 1, 2)  # (N, C, H, W)
            return shortcut + self.drop_path(x)

        if self.with_cp and x.requires_grad:
            return cp.checkpoint(_inner_forward, x, use_reentrant=False)
        return _inner_forward(x)


@MODELS.register_module()
class SLaK(BaseModule):
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
    - stage ``i``: ``depths[i]`` :class:`SLaKBlock` with large kernel
      ``kernel_size[i]`` and small kernel ``kernel_size[-1]``;
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
            ``[51, 49, 47, 13, 5]``.
        width_factor (float): Channel multiplier, truncated with ``int``.
            Defaults to 1.3.
        norm_cfg (dict): Norm after each large-kernel branch (``BN`` or
            ``SyncBN``; the published configs use ``SyncBN``, as the
            official code hard-codes, and a run without distributed
            training reverts it to ``BN``). Defaults to
            ``dict(type='BN')``.
        drop_path_rate (float): Maximum stochastic depth rate, increasing
            linearly over all blocks. Defaults to 0.
        layer_scale_init_value (float): Initial layer scale. Defaults to
            1e-6.
        out_indices (int | Sequence[int]): Stages whose (normed) output is
            returned; negative values count from the end. Defaults to -1.
        frozen_stages (int): Stages (with their downsample layer) to freeze,
            ``0`` for none. Defaults to 0.
        norm_eval (bool): Keep the BN layers of the large kernels in eval
            mode during training. Defaults to False.
        gap_before_final_norm (bool): Global-average-pool before the output
            norms and return ``(N, C)`` vectors (classification). Set False
            for ``(N, C, H, W)`` maps (dense prediction). Defaults to True.
        pretrained_out_norms (bool): Whether a ``Pretrained`` ``init_cfg``
            may set the output norms ``norm{i}``. If False they keep
            weight 1 / bias 0 after loading: the final norm of a
            classification checkpoint (``backbone.norm3`` in mmpretrain
            format) is then not loaded into the ``norm3`` of a
            segmentation / detection backbone, as in the official SLaK
            code (VITA-Group/SLaK ``segmentation/slak.py:260-264,303-315``,
            ``detection/slak.py:256-260``: ``norm0..3`` created at 1 / 0,
            and the classification ``norm`` matches no key of theirs when
            loaded with ``strict=False``). The published dense-prediction
            configs set False; keep True for classification (``norm3`` is
            the final norm) and for a checkpoint whose ``norm0..3`` were
            trained for dense prediction. Only the ``init_cfg`` is
            affected, not ``load_from`` / ``--resume``. Defaults to True.
        with_cp (bool): Gradient checkpointing in the blocks.
            Defaults to False.
        deploy (bool): Build every large kernel directly in its
            re-parameterized deploy form (BN folded, small kernel merged;
            see :class:`DecomposedLargeKernelConv`), to load a checkpoint
            converted by ``tools/model_converters/slak_reparameterize.py``.
            Use :meth:`switch_to_deploy` to convert a trained model in
            place. Defaults to False.
        fast_path (bool): Use the large kernels' CPU fast path (orientation
            choice, faster weight gradient, branches merged in eval mode;
            exact up to float rounding, see ``docs/speed.md``). False runs
            the official structure (three ``nn.Conv2d`` + BN per block).
            Defaults to True.
        decompose (bool): Decompose each ``K x K`` kernel into ``(K, s)`` +
            ``(s, K)`` strips (SLaK). False builds dense ``K x K`` kernels
            (+ the ``s x s`` branch), the undecomposed ablation of the
            paper's Table 2 (official ``--Decom False``, ``lkb_origin``).
            Defaults to True.
        init_cfg (dict | list[dict], optional): Initialization config. Use
            ``dict(type='Pretrained', checkpoint=..., prefix='backbone.')``
            to load the backbone of a classification checkpoint.

    Raises:
        ValueError: For an unknown ``arch``, a malformed ``arch`` dict, a
            ``kernel_size`` list of the wrong length or with even / too small
            sizes, or ``out_indices`` / ``frozen_stages`` out of range.

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
    arch_aliases = {'t': 'tiny', 's': 'small', 'b': 'base'}
    block_cls = SLaKBlock

    def __init__(
            self,
            arch: Union[str, dict] = 'tiny',
            in_channels: int = 3,
            kernel_size: Sequence[int] = (51, 49, 47, 13, 5),
            width_factor: float = 1.3,
            norm_cfg: dict = dict(type='BN'),
            drop_path_rate: float = 0.,
            layer_scale_init_value: float = 1e-6,
            out_indices: Union[int, Sequence[int]] = -1,
            frozen_stages: int = 0,
            norm_eval: bool = False,
            gap_before_final_norm: bool = True,
            pretrained_out_norms: bool = True,
            with_cp: bool = False,
            deploy: bool = False,
            fast_path: bool = True,
            decompose: bool = True,
            init_cfg: Optional[Union[dict, list]] = DEFAULT_INIT_CFG) -> None:
        super().__init__(init_cfg=init_cfg)
        self.arch = self._parse_arch(arch)
        self.depths = list(self.arch['depths'])
        self.num_stages = len(self.depths)
        self.width_factor = width_factor
        self.channels = [int(c * width_factor) for c in self.arch['channels']]
        self.kernel_size = self._parse_kernel_size(kernel_size,
                                                   self.num_stages)
        self.out_indices = self._parse_out_indices(out_indices,
                                                   self.num_stages)
        if isinstance(frozen_stages, bool) or not isinstance(
                frozen_stages, int) or \
                not 0 <= frozen_stages <= self.num_stages:
            raise ValueError(f'`frozen_stages` must be an int in [0, '
                             f'{self.num_stages}], got {frozen_stages!r}.')
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.gap_before_final_norm = gap_before_final_norm
        self.pretrained_out_norms = bool(pretrained_out_norms)
        self.deploy = bool(deploy)
        self.fast_path = bool(fast_path)
        self.decompose = bool(decompose)

        self.downsample_layers = self._build_downsample_layers(in_channels)

        dpr = torch.linspace(0, drop_path_rate, sum(self.depths)).tolist()
        small = self.kernel_size[-1]
        self.stages = nn.ModuleList()
        block_idx = 0
        for i, depth in enumerate(self.depths):
            self.stages.append(
                Sequential(*[
                    self.block_cls(
                        self.channels[i],
                        self.kernel_size[i],
                        small,
                        norm_cfg=norm_cfg,
                        drop_path_rate=dpr[block_idx + j],
                        layer_scale_init_value=layer_scale_init_value,
                        with_cp=with_cp,
                        **self._block_kwargs()) for j in range(depth)
                ]))
            block_idx += depth

        for i in self.out_indices:
            self.add_module(f'norm{i}',
                            LayerNorm2d(self.channels[i], eps=1e-6))

        self._freeze_stages()

    def init_weights(self) -> None:
        """Initialize, after checking a ``Pretrained`` init_cfg's file.

        mmengine's ``PretrainedInit`` loads with ``strict=False`` and only
        warns; here a file whose keys (after ``prefix``) match none of the
        backbone's, or that holds official SLaK key names, raises instead
        (:func:`slak_mm.utils.check_checkpoint_keys`, which also logs the
        missing / unexpected keys). With ``pretrained_out_norms=False`` the
        output norms are set back to weight 1 / bias 0 after loading.

        Raises:
            ValueError: See :func:`slak_mm.utils.check_checkpoint_keys`.
        """
        init_cfg = self.init_cfg
        pretrained = isinstance(init_cfg, dict) and \
            init_cfg.get('type') == 'Pretrained' and \
            not getattr(self, '_is_init', False)
        if pretrained:
            check_checkpoint_keys(
                self, init_cfg['checkpoint'], prefix=init_cfg.get('prefix'))
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

    # ------------------------------------------------------------------
    # construction hooks (overridden by the ShiftWise backbones)
    # ------------------------------------------------------------------
    def _build_downsample_layers(self, in_channels: int) -> nn.ModuleList:
        """ConvNeXt stem (4x4 conv, stride 4, + LN) and downsample layers
        (LN + 2x2 conv, stride 2)."""
        layers = nn.ModuleList([
            Sequential(
                nn.Conv2d(
                    in_channels, self.channels[0], kernel_size=4, stride=4),
                LayerNorm2d(self.channels[0], eps=1e-6))
        ])
        for i in range(1, self.num_stages):
            layers.append(
                Sequential(
                    LayerNorm2d(self.channels[i - 1], eps=1e-6),
                    nn.Conv2d(
                        self.channels[i - 1],
                        self.channels[i],
                        kernel_size=2,
                        stride=2)))
        return layers

    def _block_kwargs(self) -> dict:
        """Block arguments beyond the common ones."""
        return dict(
            deploy=self.deploy,
            fast_path=self.fast_path,
            decompose=self.decompose)

    # ------------------------------------------------------------------
    # argument parsing
    # ------------------------------------------------------------------
    def _parse_arch(self, arch: Union[str, dict]) -> dict:
        if isinstance(arch, str):
            name = self.arch_aliases.get(arch.lower(), arch.lower())
            if name not in self.arch_settings:
                raise ValueError(
                    f'Unknown `arch` {arch!r}; choose from '
                    f'{sorted(self.arch_settings)} (aliases '
                    f'{sorted(self.arch_aliases)}) or pass a dict with '
                    f'"depths" and "channels".')
            return dict(self.arch_settings[name])
        if not isinstance(arch, dict) or \
                not {'depths', 'channels'} <= set(arch):
            raise ValueError('A custom `arch` must be a dict with keys '
                             f'"depths" and "channels", got {arch!r}.')
        if len(arch['depths']) != len(arch['channels']) or \
                len(arch['depths']) == 0:
            raise ValueError(
                '`arch["depths"]` and `arch["channels"]` must be non-empty '
                f'lists of equal length, got {arch!r}.')
        return dict(arch)

    @staticmethod
    def _parse_kernel_size(kernel_size: Sequence[int],
                           num_stages: int) -> list:
        sizes = list(kernel_size) if isinstance(kernel_size,
                                                (list, tuple)) else None
        if sizes is None or len(sizes) != num_stages + 1:
            raise ValueError(
                f'`kernel_size` must list one large kernel per stage and the '
                f'small kernel last ({num_stages + 1} odd ints, e.g. '
                f'[51, 49, 47, 13, 5]), got {kernel_size!r}.')
        for i, k in enumerate(sizes):
            if isinstance(k, bool) or not isinstance(k, int) or k < 1 \
                    or k % 2 == 0:
                raise ValueError(
                    f'`kernel_size[{i}]` must be a positive odd int, got '
                    f'{k!r} (in {kernel_size!r}).')
        small = sizes[-1]
        for i, k in enumerate(sizes[:-1]):
            if k < small:
                raise ValueError(
                    f'`kernel_size[{i}]` ({k}) is smaller than the small '
                    f'kernel size kernel_size[-1] ({small}).')
        return sizes

    @staticmethod
    def _parse_out_indices(out_indices: Union[int, Sequence[int]],
                           num_stages: int) -> list:
        if isinstance(out_indices, int):
            out_indices = [out_indices]
        if not isinstance(out_indices, (list, tuple)) or not out_indices:
            raise ValueError('`out_indices` must be an int or a non-empty '
                             f'sequence of ints, got {out_indices!r}.')
        parsed = []
        for index in out_indices:
            if not -num_stages <= index < num_stages:
                raise ValueError(
                    f'`out_indices` entries must be in [{-num_stages}, '
                    f'{num_stages - 1}], got {out_indices!r}.')
            parsed.append(index % num_stages)
        return parsed

    # ------------------------------------------------------------------
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

    def train(self, mode: bool = True) -> 'SLaK':
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
        """Re-parameterize every large kernel into its deploy form, in place
        (mmpretrain RepLKNet's convention).

        Folds each branch's BN (running statistics) into its kernel and the
        small kernel into the ``(K, s)`` kernel; the outputs in eval mode
        are unchanged (up to float rounding). Idempotent.

        Raises:
            TypeError: If the large kernels use a norm other than BatchNorm
                (``BN``/``SyncBN``), which cannot be folded.
        """
        large_kernels = [
            m for m in self.modules()
            if isinstance(m, DecomposedLargeKernelConv)
        ]
        for module in large_kernels:
            module.switch_to_deploy()
        self.deploy = True

    # ------------------------------------------------------------------
    # layer-wise learning-rate decay
    # ------------------------------------------------------------------
    def _default_max_layer_id(self) -> int:
        # The convention of ConvNeXt/SLaK: 12 "layers" for the deep
        # variants (27 blocks in stage 3), 6 otherwise.
        return 12 if self.depths[-2] > 9 else 6

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
            max_layer_id = self._default_max_layer_id()
        if not param_name.startswith(prefix):
            return max_layer_id + 1, max_layer_id + 2
        name = param_name[len(prefix):]
        parts = name.split('.')
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
