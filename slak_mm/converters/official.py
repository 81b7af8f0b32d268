"""Reading official SLaK / ShiftwiseConv checkpoint files, and telling
their key layouts apart.

Both official repositories (VITA-Group/SLaK and lidc54/shift-wiseConv)
train classification models with a ConvNeXt ``main.py``, whose files hold
the weights under ``model`` (and ``model_ema`` when EMA was kept) next to
the pickled training ``args`` (an ``argparse.Namespace``); the SLaK
segmentation / detection files are mmseg 0.x / mmdet 2.x files with the
weights under ``state_dict``.
"""
import argparse
import re
from collections import OrderedDict
from typing import Dict, Iterable, Optional, Tuple

import torch


class OfficialCheckpointError(ValueError):
    """An official checkpoint that cannot be converted as asked."""


#: The official key layouts that slak_mm models do not load, how to
#: recognise them (regular expression searched in each key) and the
#: converter command line that turns them into slak_mm files. ShiftWise
#: comes first: its v1 blocks also have SLaK's ``pwconv1`` / ``pwconv2``.
OFFICIAL_LAYOUTS = OrderedDict([
    ('ShiftWise',
     (re.compile(r'\.large_kernel\.(LoRAs\.\d+\.weight|LoRA\.weight'
                 r'|bn_lora[12]\.|bn_small\.)'),
      'tools/model_converters/sw_to_mmpretrain.py')),
    ('SLaK',
     (re.compile(r'\.large_kernel\.(LoRA[12]|Decom[12]|lkb_origin'
                 r'|lkb_reparam|small_conv)\.|\.pwconv[12]\.'),
      'tools/model_converters/slak_to_mmpretrain.py, slak_to_mmseg.py or '
      'slak_to_mmdet.py')),
])


def detect_official_layout(
        keys: Iterable[str]) -> Optional[Tuple[str, str, str]]:
    """Whether state-dict keys use an official (unconverted) layout.

    Args:
        keys (Iterable[str]): State-dict keys.

    Returns:
        tuple[str, str, str] | None: ``(family, example key, converter)``
        with ``family`` ``'ShiftWise'`` or ``'SLaK'`` (see
        :data:`OFFICIAL_LAYOUTS`), or None when no key has an official
        name.
    """
    keys = list(keys)
    for family, (pattern, converter) in OFFICIAL_LAYOUTS.items():
        example = next((k for k in keys if pattern.search(k)), None)
        if example is not None:
            return family, example, converter
    return None


def load_official_checkpoint(path: str, unsafe_load: bool = False) -> dict:
    """Load an official SLaK / ShiftwiseConv checkpoint file on the CPU.

    By default the file is read with ``torch.load(weights_only=True)`` with
    ``argparse.Namespace`` (the pickled training ``args``) added to the
    allow-list for this call only; anything else that is not a tensor or a
    plain container still fails. ``unsafe_load=True`` uses
    ``weights_only=False``, which can execute arbitrary code from the file:
    only for files from a trusted source.

    Args:
        path (str): Checkpoint path.
        unsafe_load (bool): Unpickle everything (trusted files only).
            Defaults to False.

    Returns:
        dict: The checkpoint.

    Raises:
        OfficialCheckpointError: If the safe loader refuses the file (the
            message names the object and the ``--unsafe-load`` opt-in), or
            the file does not hold a dict.
    """
    if unsafe_load:
        checkpoint = torch.load(path, map_location='cpu', weights_only=False)
    else:
        try:
            with torch.serialization.safe_globals([argparse.Namespace]):
                checkpoint = torch.load(
                    path, map_location='cpu', weights_only=True)
        except Exception as err:  # UnpicklingError, RuntimeError
            raise OfficialCheckpointError(
                f'{path}: the safe loader (weights_only=True, allow-list: '
                f'argparse.Namespace) refused the file: {err}\nIf the file '
                'comes from a trusted source, pass --unsafe-load '
                '(torch.load weights_only=False).') from err
    if not isinstance(checkpoint, dict):
        raise OfficialCheckpointError(
            f'{path}: expected a dict checkpoint, got '
            f'{type(checkpoint).__name__}.')
    return checkpoint


def select_weights(checkpoint: dict,
                   key: str = 'auto') -> Tuple[str, Dict[str, torch.Tensor]]:
    """Pick the weight dict of an official checkpoint.

    Args:
        checkpoint (dict): As loaded by :func:`load_official_checkpoint`.
        key (str): ``'model'``, ``'model_ema'``, ``'state_dict'``, or
            ``'auto'``: the first of ``state_dict``, ``model`` present.
            Defaults to ``'auto'``.

    Returns:
        tuple[str, dict]: The key used and its ``{name: tensor}`` dict (a
        leading ``module.`` of DDP-saved files removed).

    Raises:
        OfficialCheckpointError: If the key is missing (the message lists
            the checkpoint's top-level keys) or holds no tensors.
    """
    if key == 'auto':
        key = next((k for k in ('state_dict', 'model') if k in checkpoint),
                   None)
        if key is None:
            raise OfficialCheckpointError(
                'found neither `state_dict` (segmentation / detection) nor '
                '`model` (classification) in the checkpoint; top-level '
                f'keys: {sorted(checkpoint)}.')
    if key not in checkpoint:
        raise OfficialCheckpointError(
            f'the checkpoint has no `{key}` entry; top-level keys: '
            f'{sorted(checkpoint)}.')
    weights = checkpoint[key]
    if not isinstance(weights, dict) or not any(
            isinstance(v, torch.Tensor) for v in weights.values()):
        raise OfficialCheckpointError(f'checkpoint[{key!r}] holds no tensors.')
    if all(k.startswith('module.') for k in weights):
        weights = OrderedDict(
            (k[len('module.'):], v) for k, v in weights.items())
    return key, weights
