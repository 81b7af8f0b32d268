"""Conversion of official ShiftwiseConv (SW) classification state dicts.

The official repository (lidc54/shift-wiseConv) trains with a SLaK /
ConvNeXt ``main.py``: a classification file holds the weights under
``model`` (and ``model_ema`` when EMA was kept) next to the pickled
training ``args``. The network is ``ShiftWise_v1``
(``backbones/SW_v1_slak.py``) or ``ShiftWise_v2``
(``backbones/SW_v2_unirep.py``, the published SW-T). Their keys map to
:class:`slak_mm.ShiftWiseV1` / :class:`slak_mm.ShiftWiseV2` (inside an
mmpretrain ``ImageClassifier``: ``backbone.*`` and ``head.fc.*``) as
follows, ``stages.i.j.`` kept:

====================================  ====================================
official                              slak_mm
====================================  ====================================
``downsample_layers.*``               ``backbone.downsample_layers.*``
                                      (same indices, v1 and v2)
``large_kernel.LoRAs.{p}.weight``     ``large_kernel.paths.{p}.weight``
``large_kernel.LoRA.weight``          ``large_kernel.paths.0.weight``
(after ``merge_branches``)            (``mixer_cfg.num_paths=1``)
``large_kernel.bn_lora1`` /           ``large_kernel.norm_h`` /
``bn_lora2`` / ``bn_small``           ``norm_v`` / ``norm_small``
v1: ``norm``, ``pwconv1``,            ``norm``, ``pointwise_conv1``,
``pwconv2``, ``gamma``                ``pointwise_conv2``, ``gamma``
v2: ``norm`` (BN), ``se.down`` /      ``norm``, ``se.conv1.conv`` /
``se.up``, ``pwconv1.1``,             ``se.conv2.conv`` (mmpretrain
                                      ``SELayer``), ``pointwise_conv1``,
``act.1.gamma`` / ``beta``            ``grn.gamma`` / ``beta`` (reshaped
(``(1, 1, 1, 4C)``),                  to ``(4C,)``),
``pwconv2.0``, ``pwconv2.2`` (BN),    ``pointwise_conv2``, ``norm2``,
``gamma``                             ``gamma``
``norm`` (final, after pooling)       ``backbone.norm3``
``head``                              ``head.fc``
====================================  ====================================

The official SW layer keeps its random indices (ghost / rep channels and
the shift orders) as plain attributes, so they are not in the file; they
are drawn again from the fixed official seed 123 (numpy for the channel
split, torch for the orders, the draw order of the official code), which
:class:`~slak_mm.models.layers.ShiftwiseConv` with ``seed=123``
reproduces; the converter stores them as the layer's buffers
(``rep_index``, ``ghost_index``, ``order_h``, ``order_v``,
``small_index``), so the converted file loads strictly whatever ``seed``
the target model was built with. The channel split needs the ghost ratio
(default 0.23; checked against the stored shapes) and the orders the
number of groups ``N_rep`` (default 4; not recoverable from the weights).
The emulated kernel ``K`` is not stored either: only ``nk = ceil(K / k)``
is, which the summary lists per stage for checking against the config's
``kernel_size``.

Tensors are copied unchanged (values, dtypes, the zeros of a sparse
model); the SW-v2 GRN parameters are only reshaped.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch

from .official import OfficialCheckpointError

#: The seed of the official SW layers (``np.random.seed(123)`` and
#: ``torch.manual_seed(123)`` in every layer).
OFFICIAL_SEED = 123

#: Official backbone versions and the slak_mm classes / ghost splits.
SW_VERSIONS = {
    'v1': dict(backbone='slak_mm.ShiftWiseV1', ghost_split='v1'),
    'v2': dict(backbone='slak_mm.ShiftWiseV2', ghost_split='v2'),
}

#: Renames inside ``stages.i.j.large_kernel.`` (regular expression on the
#: rest of the key, replacement).
LARGE_KERNEL_RENAMES = [
    (r'^LoRAs\.(\d+)\.weight$', r'paths.\1.weight'),
    (r'^LoRA\.weight$', 'paths.0.weight'),
    (r'^bn_lora1\.(.+)$', r'norm_h.\1'),
    (r'^bn_lora2\.(.+)$', r'norm_v.\1'),
    (r'^bn_small\.(.+)$', r'norm_small.\1'),
]

#: Renames of the other block children per version (same convention).
BLOCK_RENAMES = {
    'v1': [
        (r'^norm\.(weight|bias)$', r'norm.\1'),
        (r'^pwconv1\.(weight|bias)$', r'pointwise_conv1.\1'),
        (r'^pwconv2\.(weight|bias)$', r'pointwise_conv2.\1'),
        (r'^gamma$', 'gamma'),
    ],
    'v2': [
        (r'^norm\.(.+)$', r'norm.\1'),
        (r'^se\.down\.(weight|bias)$', r'se.conv1.conv.\1'),
        (r'^se\.up\.(weight|bias)$', r'se.conv2.conv.\1'),
        (r'^pwconv1\.1\.(weight|bias)$', r'pointwise_conv1.\1'),
        (r'^act\.1\.(gamma|beta)$', r'grn.\1'),
        (r'^pwconv2\.0\.weight$', 'pointwise_conv2.weight'),
        (r'^pwconv2\.2\.(.+)$', r'norm2.\1'),
        (r'^gamma$', 'gamma'),
    ],
}

#: The block children of :data:`BLOCK_RENAMES`, for error messages.
BLOCK_CHILDREN = {
    'v1': 'norm, pwconv1, pwconv2, gamma',
    'v2': 'norm, se, pwconv1.1, act.1, pwconv2.0, pwconv2.2, gamma',
}

_BLOCK_KEY = re.compile(r'^stages\.(\d+)\.(\d+)\.(.+)$')
_PIECES_KEY = re.compile(r'^large_kernel\.LoRAs?\.(?:\d+\.)?weight$')


def _is_pieces_key(name: str) -> bool:
    """``stages.i.j.large_kernel.LoRAs.{p}.weight`` or ``...LoRA.weight``"""
    match = _BLOCK_KEY.match(name)
    return match is not None and _PIECES_KEY.match(match.group(3)) is not None


def detect_sw_version(weights: Dict[str, torch.Tensor]) -> str:
    """Tell ``ShiftWise_v1`` from ``ShiftWise_v2`` weights.

    v2 has the UniRepLKNet-style stem (``downsample_layers.0.3``) and SE
    blocks; v1 the ConvNeXt stem and downsampling.

    Args:
        weights (dict): Official weights (no ``module.`` prefix).

    Returns:
        str: ``'v1'`` or ``'v2'``.

    Raises:
        OfficialCheckpointError: If no SW piece key
            (``stages.i.j.large_kernel.LoRAs.{p}.weight`` or ``.LoRA.``) is
            found; the message says when the keys look like SLaK's
            (``LoRA1`` / ``LoRA2``) or carry a ``backbone.`` prefix
            (downstream files, not supported).
    """
    if not any(map(_is_pieces_key, weights)):
        hint = ''
        if any('.large_kernel.LoRA1.' in k for k in weights):
            hint = (' These look like SLaK keys (`LoRA1` / `LoRA2`): use '
                    'tools/model_converters/slak_to_mmpretrain.py.')
        elif any(k.startswith('backbone.') for k in weights):
            hint = (' Keys with a `backbone.` prefix (segmentation / '
                    'detection files) are not supported; only the '
                    'classification files of main.py are.')
        raise OfficialCheckpointError(
            'no official ShiftwiseConv key found: expected keys like '
            '`stages.0.0.large_kernel.LoRAs.0.weight` (or `.LoRA.weight` '
            f'after merge_branches); the first keys are {list(weights)[:5]}.' +
            hint)
    if 'downsample_layers.0.3.weight' in weights or any(
            k.endswith('.se.down.weight') for k in weights):
        return 'v2'
    return 'v1'


def _rename(rules: List[Tuple[str, str]], name: str) -> Optional[str]:
    """Apply the first matching ``(pattern, replacement)``; None if no
    pattern matches."""
    for pattern, replacement in rules:
        if re.match(pattern, name):
            return re.sub(pattern, replacement, name)
    return None


def _sw_buffers(weights: Dict[str, torch.Tensor], block: str, split: str,
                ghost_ratio: float, num_reps: int,
                seed: int) -> Tuple[Dict[str, torch.Tensor], dict]:
    """Redraw the index buffers of the SW layer of one official block
    (``block`` = ``'stages.i.j.'``) and describe the layer."""
    # imported here: slak_mm.utils imports slak_mm.converters, and the
    # models / engine may import slak_mm.utils (no import cycle)
    from slak_mm.models.layers.shiftwise_conv import (draw_shift_indices,
                                                      split_ghost_channels)
    lk = block + 'large_kernel.'
    pieces = sorted(
        k for k in weights if k.startswith(lk) and _is_pieces_key(k))
    norm_key = block + 'norm.weight'
    if not pieces or norm_key not in weights:
        raise OfficialCheckpointError(
            f'block `{block}` lacks its SW pieces (`{lk}LoRAs.<p>.weight`) '
            f'or `{norm_key}`.')
    channels = int(weights[norm_key].shape[0])
    try:
        rep, ghost = split_ghost_channels(channels, ghost_ratio, split, seed)
    except ValueError as err:
        raise OfficialCheckpointError(f'block `{block}`: {err}') from err
    rep_channels = int(rep.numel())
    shape = tuple(weights[pieces[0]].shape)
    bn_key = lk + 'bn_lora1.weight'
    if bn_key not in weights:
        raise OfficialCheckpointError(
            f'block `{block}` has no `{bn_key}`: SW layers without BN '
            '(official bn=False) are not supported.')
    if len(shape) != 4 or shape[1] != 1 or shape[2] != shape[3] or \
            shape[0] % rep_channels or \
            weights[bn_key].shape[0] != rep_channels:
        raise OfficialCheckpointError(
            f'block `{block}`: {channels} channels with ghost_ratio='
            f'{ghost_ratio} ({split} split) give {rep_channels} rep '
            f'channels, but the pieces `{pieces[0]}` have shape {shape} and '
            f'`{bn_key}` {tuple(weights[bn_key].shape)} rep channels; pass '
            'the ghost ratio the model was trained with (--ghost-ratio).')
    num_pieces = shape[0] // rep_channels
    generator = torch.Generator(device='cpu').manual_seed(seed)
    order_h, order_v, small_index = draw_shift_indices(rep_channels,
                                                       num_pieces, num_reps,
                                                       generator)
    buffers = dict(
        rep_index=rep,
        ghost_index=ghost,
        order_h=order_h,
        order_v=order_v,
        small_index=small_index)
    info = dict(
        channels=channels,
        rep_channels=rep_channels,
        small_kernel_size=shape[2],
        num_pieces=num_pieces,
        num_paths=len(pieces))
    return buffers, info


def convert_sw_state_dict(
    weights: Dict[str, torch.Tensor],
    version: str = 'auto',
    ghost_ratio: float = 0.23,
    num_reps: int = 4,
    seed: int = OFFICIAL_SEED
) -> Tuple['OrderedDict[str, torch.Tensor]', dict]:
    """Convert official SW classification weights to an mmpretrain
    ``ImageClassifier`` state dict (``backbone.*``, ``head.fc.*``).

    Args:
        weights (dict): Official weights (see
            :func:`slak_mm.converters.select_weights`).
        version (str): ``'v1'``, ``'v2'`` or ``'auto'``
            (:func:`detect_sw_version`). Defaults to ``'auto'``.
        ghost_ratio (float): The model's ghost ratio. Defaults to 0.23.
        num_reps (int): The model's ``N_rep``. Defaults to 4.
        seed (int): Seed of the redrawn indices; the official layers use
            123. Defaults to 123.

    Returns:
        tuple[OrderedDict, dict]: The converted state dict (official order,
        then the five index buffers of every SW layer) and a
        summary: ``version``, ``num_tensors``, ``num_backbone``,
        ``num_head``, ``dropped`` (official keys without a counterpart),
        ``stages`` (per stage: ``channels``, ``rep_channels``,
        ``small_kernel_size``, ``num_pieces``, ``num_paths``, ``depth``),
        ``backbone_cfg`` (the settings a config needs, see
        :func:`sw_backbone_cfg`).

    Raises:
        OfficialCheckpointError: For an unknown version, weights without
            SW keys, block keys outside the official layout, SW layers
            without BN, layers of one stage that differ, or shapes that do
            not fit ``ghost_ratio``.
    """
    if version == 'auto':
        version = detect_sw_version(weights)
    elif version not in SW_VERSIONS:
        raise OfficialCheckpointError(
            f'unknown SW version {version!r}; choose from '
            f"{sorted(SW_VERSIONS)} or 'auto'.")
    else:
        detect_sw_version(weights)  # at least one SW key
    split = SW_VERSIONS[version]['ghost_split']
    # the final norm is the norm of the last stage (out_indices=-1)
    num_stages = 1 + max(
        int(m.group(1)) for m in map(_BLOCK_KEY.match, weights) if m)
    last_norm = f'backbone.norm{num_stages - 1}.'

    converted = OrderedDict()
    dropped = []
    blocks: Dict[str, int] = {}  # 'stages.i.j.' -> i, in file order
    for name, tensor in weights.items():
        match = _BLOCK_KEY.match(name)
        if match is not None:
            stage, index, rest = match.groups()
            block = f'stages.{stage}.{index}.'
            blocks.setdefault(block, int(stage))
            if rest.startswith('large_kernel.'):
                new = _rename(LARGE_KERNEL_RENAMES,
                              rest[len('large_kernel.'):])
                new = None if new is None else 'large_kernel.' + new
            else:
                new = _rename(BLOCK_RENAMES[version], rest)
            if new is None:
                raise OfficialCheckpointError(
                    f'unexpected key `{name}` for an official ShiftWise_'
                    f'{version} block (known children: large_kernel.LoRAs / '
                    'LoRA / bn_lora1 / bn_lora2 / bn_small, '
                    f'{BLOCK_CHILDREN[version]}).')
            if new.startswith('grn.'):
                tensor = tensor.reshape(-1)
            converted['backbone.' + block + new] = tensor
        elif name.startswith('downsample_layers.'):
            converted['backbone.' + name] = tensor
        elif name.startswith('norm.'):
            converted[last_norm + name[len('norm.'):]] = tensor
        elif name.startswith('head.'):
            converted['head.fc.' + name[len('head.'):]] = tensor
        else:
            dropped.append(name)
    # the index buffers of every SW layer, after all keys were checked
    stages: Dict[int, dict] = {}
    for block, stage in blocks.items():
        buffers, info = _sw_buffers(weights, block, split, ghost_ratio,
                                    num_reps, seed)
        for key, buffer in buffers.items():
            converted[f'backbone.{block}large_kernel.{key}'] = buffer
        first = stages.setdefault(stage, dict(info, depth=0))
        if any(first[k] != v for k, v in info.items()):
            raise OfficialCheckpointError(
                f'block `{block}` ({info}) differs from the first block of '
                f'stage {stage} ({first}).')
        first['depth'] += 1
    summary = dict(
        version=version,
        num_tensors=len(converted),
        num_backbone=sum(k.startswith('backbone.') for k in converted),
        num_head=sum(k.startswith('head.') for k in converted),
        dropped=dropped,
        stages=[stages[i] for i in sorted(stages)],
        ghost_ratio=ghost_ratio,
        num_reps=num_reps)
    summary['backbone_cfg'] = sw_backbone_cfg(summary)
    return converted, summary


def sw_backbone_cfg(summary: dict) -> dict:
    """The ``model.backbone`` settings that a converted file needs: the
    class, ``arch`` (depths / channels), the small kernel ``k`` and the
    ``mixer_cfg`` values (``num_paths`` is 1 for a merged official
    model).
    The large kernels are not in the file: any odd ``K`` with
    ``ceil(K / k) == num_pieces`` per stage fits."""
    stages = summary['stages']
    return dict(
        type=SW_VERSIONS[summary['version']]['backbone'],
        arch=dict(
            depths=[s['depth'] for s in stages],
            channels=[s['channels'] for s in stages]),
        small_kernel_size=stages[0]['small_kernel_size'] if stages else None,
        mixer_cfg=dict(
            ghost_ratio=summary['ghost_ratio'],
            num_paths=stages[0]['num_paths'] if stages else None,
            num_reps=summary['num_reps']))
