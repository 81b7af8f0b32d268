"""Conversion of official SLaK state dicts (VITA-Group/SLaK) to slak_mm.

Three kinds of released files are handled (``DESIGN.md`` §1, checked
against the official ``models/SLaK.py``, ``segmentation/slak.py`` and
``detection/slak.py``):

- **classification** (``main.py`` of the official repository): a dict with
  the weights under ``model`` (and ``model_ema`` when EMA was kept), plus
  ``optimizer``, ``epoch``, ``args`` (an ``argparse.Namespace``) ...;
  network keys ``downsample_layers.*``, ``stages.i.j.*``, ``norm.*``
  (final LayerNorm after pooling) and ``head.*`` (linear classifier);
- **segmentation** (mmseg 0.x UperNet) and **detection** (mmdet 2.x
  Cascade Mask R-CNN): ``state_dict`` with ``backbone.*`` (output norms
  ``backbone.norm0..3``), ``decode_head.*`` / ``auxiliary_head.*`` or
  ``neck.*`` / ``rpn_head.*`` / ``roi_head.*``, and ``meta``.

Backbone renames (official -> slak_mm, see :class:`slak_mm.SLaK`):

================================  =======================================
official                          slak_mm
================================  =======================================
``large_kernel.LoRA1`` /          ``large_kernel.branch_kxs`` (``(K, s)``)
``large_kernel.Decom1``
``large_kernel.LoRA2`` /          ``large_kernel.branch_sxk`` (``(s, K)``)
``large_kernel.Decom2``
``large_kernel.lkb_origin``       ``large_kernel.branch_kxk`` (``K x K``,
                                  backbone ``mixer_cfg.decompose=False``)
``large_kernel.small_conv``       ``large_kernel.branch_sxs``
``large_kernel.lkb_reparam``      ``large_kernel.reparam_kxk`` (deploy,
                                  ``mixer_cfg.decompose=False``)
``pwconv1`` / ``pwconv2``         ``pointwise_conv1`` / ``pointwise_conv2``
``norm`` (classification, final)  ``backbone.norm3``
``head``                          ``head.fc``
================================  =======================================

The ``conv`` / ``bn`` children of a branch keep their names (slak_mm's
branches are mmcv ``ConvModule`` s whose BN is called ``bn``). The head and
neck keys of the mmseg 0.x ``UPerHead`` / ``FCNHead`` and of the mmdet 2.x
``FPN`` / ``RPNHead`` / ``ConvFCBBoxHead`` / ``FCNMaskHead`` are the same
in mmseg 1.x / mmdet 3.x (both toolboxes reuse their 0.x / 2.x model-zoo
files for these models), so those keys are copied as they are; the tests
check hand-written 0.x / 2.x key lists against the target models.

Sparsity is stored as exact zeros in the weights; the conversion copies
tensors unchanged (values, dtypes, zeros), so the zero pattern that
:class:`slak_mm.StaticSparseHook` keeps during fine-tuning survives.
"""
import re
from collections import OrderedDict
from typing import Dict, Tuple

import torch

from .official import OfficialCheckpointError

#: The official large-kernel branch names and their slak_mm names.
BRANCH_RENAMES = {
    'LoRA1': 'branch_kxs',
    'LoRA2': 'branch_sxk',
    'Decom1': 'branch_kxs',
    'Decom2': 'branch_sxk',
    'lkb_origin': 'branch_kxk',
    'small_conv': 'branch_sxs',
    'lkb_reparam': 'reparam_kxk',
}

#: Historical key variants of the official large kernel: the branch names
#: that identify each.
KERNEL_KEY_VARIANTS = {
    'LoRA': ('LoRA1', 'LoRA2'),
    'Decom': ('Decom1', 'Decom2'),
    'lkb_origin': ('lkb_origin', ),
    'lkb_reparam': ('lkb_reparam', ),
}

#: What the official files hold per task: (prefix of the backbone keys,
#: prefixes of the other keys that are kept; the classification ``head``
#: becomes ``head.fc``, its final ``norm`` ``backbone.norm3``).
TASKS = {
    'cls': ('', ('head.', )),
    'seg': ('backbone.', ('decode_head.', 'auxiliary_head.')),
    'det': ('backbone.', ('neck.', 'rpn_head.', 'roi_head.')),
}

#: The toolbox whose models each task's converted file loads into.
TASK_TOOLBOXES = {'cls': 'mmpretrain', 'seg': 'mmseg', 'det': 'mmdet'}

_BLOCK_KEY = re.compile(r'^(stages\.\d+\.\d+\.)(.+)$')
_BACKBONE_TOP = ('downsample_layers.', 'stages.')


def detect_kernel_variant(weights: Dict[str, torch.Tensor]) -> str:
    """Which historical key variant the large kernels use.

    Args:
        weights (dict): Official weights.

    Returns:
        str: One of :data:`KERNEL_KEY_VARIANTS` (``'LoRA'``, ``'Decom'``,
        ``'lkb_origin'``, ``'lkb_reparam'``).

    Raises:
        OfficialCheckpointError: If no large-kernel key is found, or the
            variants are mixed.
    """
    found = set()
    for name in weights:
        match = re.search(r'\.large_kernel\.([^.]+)\.', name)
        if match is None:
            continue
        for variant, branches in KERNEL_KEY_VARIANTS.items():
            if match.group(1) in branches:
                found.add(variant)
    if not found:
        raise OfficialCheckpointError(
            'no official large-kernel key found: expected keys like '
            '`stages.0.0.large_kernel.LoRA1.conv.weight` (also `Decom1`, '
            '`lkb_origin`, `lkb_reparam`; prefixed by `backbone.` in '
            'segmentation / detection files).')
    if len(found) > 1:
        raise OfficialCheckpointError(
            f'mixed large-kernel key variants {sorted(found)} in one file.')
    return found.pop()


def convert_backbone_key(name: str) -> str:
    """Rename one official backbone key (without any ``backbone.`` prefix).

    Raises:
        OfficialCheckpointError: For a key outside the official layout.
    """
    if name.startswith('downsample_layers.') or re.match(r'^norm\d+\.', name):
        return name
    match = _BLOCK_KEY.match(name)
    if match is None:
        raise OfficialCheckpointError(
            f'unexpected backbone key `{name}` (official keys start with '
            '`downsample_layers.`, `stages.` or `norm<i>.`).')
    block, rest = match.groups()
    parts = rest.split('.')
    if parts[0] == 'large_kernel' and len(parts) > 1:
        if parts[1] not in BRANCH_RENAMES:
            raise OfficialCheckpointError(
                f'unknown large-kernel branch `{parts[1]}` in `{name}`; '
                f'known: {sorted(BRANCH_RENAMES)}.')
        parts[1] = BRANCH_RENAMES[parts[1]]
    elif parts[0] in ('pwconv1', 'pwconv2'):
        parts[0] = 'pointwise_conv' + parts[0][-1]
    elif parts[0] not in ('norm', 'gamma'):
        raise OfficialCheckpointError(
            f'unexpected block key `{name}` (official block children: '
            'large_kernel, norm, pwconv1, pwconv2, gamma).')
    return block + '.'.join(parts)


def convert_slak_state_dict(
        weights: Dict[str, torch.Tensor],
        task: str) -> Tuple['OrderedDict[str, torch.Tensor]', dict]:
    """Convert official SLaK weights to a slak_mm model's state dict.

    Args:
        weights (dict): Official weights (see
            :func:`slak_mm.converters.select_weights`).
        task (str): ``'cls'`` (mmpretrain ``ImageClassifier``: output keys
            ``backbone.*`` and ``head.fc.*``), ``'seg'`` (mmseg
            ``EncoderDecoder``) or ``'det'`` (mmdet ``CascadeRCNN``).

    Returns:
        tuple[OrderedDict, dict]: The converted state dict, and a summary:
        ``variant`` (see :func:`detect_kernel_variant`), ``num_tensors``,
        ``num_backbone``, ``num_other``, ``dropped`` (official keys with no
        counterpart, e.g. ``num_batches_tracked`` never is; the official
        classification ``head`` is kept), ``density`` (non-zero fraction of
        the backbone's conv / linear weights, 2-D and 4-D),
        ``large_kernel_density`` (the same over the large-kernel convs)
        and ``backbone_cfg`` (see :func:`slak_backbone_cfg`).

    Raises:
        OfficialCheckpointError: For an unknown task, weights with no key
            of the expected layout (the message names the expected prefix
            and an example key), or keys outside the official layout.
    """
    if task not in TASKS:
        raise OfficialCheckpointError(
            f'unknown task {task!r}; choose from {sorted(TASKS)}.')
    prefix, other_prefixes = TASKS[task]
    backbone_top = _BACKBONE_TOP + ('norm', )
    backbone_keys = {
        k
        for k in weights
        if k.startswith(prefix) and k[len(prefix):].startswith(backbone_top)
    }
    if not any(k[len(prefix):].startswith('stages.') for k in backbone_keys):
        example = f'{prefix}stages.0.0.large_kernel.LoRA1.conv.weight'
        raise OfficialCheckpointError(
            f'no official SLaK {task} key found: expected keys starting '
            f'with `{prefix}stages.` (e.g. `{example}`); the first keys '
            f'are {list(weights)[:5]}. Weights nested under another entry '
            '(e.g. `model`) must be selected with --key.')
    variant = detect_kernel_variant(weights)

    converted = OrderedDict()
    dropped = []
    nonzero = total = lk_nonzero = lk_total = 0
    for name, tensor in weights.items():
        if name in backbone_keys:
            inner = name[len(prefix):]
            if task == 'cls' and inner.startswith('norm.'):
                new = 'backbone.norm3.' + inner[len('norm.'):]
            else:
                new = 'backbone.' + convert_backbone_key(inner)
            if tensor.dim() in (2, 4) and tensor.is_floating_point():
                count = int(torch.count_nonzero(tensor))
                nonzero += count
                total += tensor.numel()
                if '.large_kernel.' in new:
                    lk_nonzero += count
                    lk_total += tensor.numel()
        elif task == 'cls' and name.startswith('head.'):
            new = 'head.fc.' + name[len('head.'):]
        elif name.startswith(other_prefixes):
            new = name  # same names in mmseg 1.x / mmdet 3.x
        else:
            dropped.append(name)
            continue
        converted[new] = tensor
    summary = dict(
        task=task,
        variant=variant,
        num_tensors=len(converted),
        num_backbone=sum(k.startswith('backbone.') for k in converted),
        num_other=sum(not k.startswith('backbone.') for k in converted),
        dropped=dropped,
        density=nonzero / total if total else float('nan'),
        large_kernel_density=lk_nonzero /
        lk_total if lk_total else float('nan'))
    summary['backbone_cfg'] = slak_backbone_cfg(summary)
    return converted, summary


def slak_backbone_cfg(summary: dict) -> Dict[str, object]:
    """The ``model.backbone`` settings a converted file needs beyond the
    configs' defaults (``mixer_cfg.decompose=False`` for ``lkb_origin``,
    plus ``deploy=True`` for ``lkb_reparam``)."""
    if summary['variant'] == 'lkb_origin':
        return dict(mixer_cfg=dict(decompose=False))
    if summary['variant'] == 'lkb_reparam':
        return dict(mixer_cfg=dict(decompose=False), deploy=True)
    return {}
