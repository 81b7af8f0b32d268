"""Loading pretrained weights that fail loudly: the ``CheckedPretrained``
initializer and the key check of ``tools/test.py``.

mmengine's ``PretrainedInit`` and ``Runner.load_checkpoint`` load with
``strict=False`` and only warn when keys do not match, so a file whose
weights are nested elsewhere (e.g. under ``model`` in the official SLaK
files), carry another prefix or use the official key names "loads" and
leaves the model at its initialization. :func:`check_checkpoint_keys`
makes that an error and logs the missing / unexpected keys otherwise; it
works on the checkpoint that is being loaded, so each file is read once.
"""
from typing import Dict, List, Optional, Tuple, Union

import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.logging import MMLogger, print_log
from mmengine.model import (BaseModule, BaseTTAModel, PretrainedInit,
                            is_model_wrapper, update_init_info)
from mmengine.registry import WEIGHT_INITIALIZERS
from mmengine.runner.checkpoint import load_state_dict

from slak_mm.converters.official import detect_official_layout
from .checkpoint import load_checkpoint_file


def checkpoint_weights(checkpoint: dict,
                       prefix: Optional[str] = None) -> Dict[str, object]:
    """The weights that mmengine loads from a checkpoint.

    ``checkpoint['state_dict']`` if present, else the dict itself; a
    leading ``module.`` removed (``Runner.load_checkpoint``'s
    ``revise_keys``); with ``prefix``, only the keys starting with it, the
    prefix removed (``PretrainedInit``'s ``prefix``).

    Args:
        checkpoint (dict): A loaded checkpoint.
        prefix (str, optional): E.g. ``'backbone.'`` (a missing final dot
            is added). Defaults to None.

    Returns:
        dict: ``{key: tensor}`` in the file's order.

    Raises:
        ValueError: If the weights are not a dict.
    """
    weights = checkpoint.get('state_dict', checkpoint) \
        if isinstance(checkpoint, dict) else checkpoint
    if not isinstance(weights, dict):
        raise ValueError('expected a dict of weights, got '
                         f'{type(weights).__name__}.')
    weights = {
        k[len('module.'):] if k.startswith('module.') else k: v
        for k, v in weights.items()
    }
    if prefix:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        weights = {
            k[len(prefix):]: v
            for k, v in weights.items() if k.startswith(prefix)
        }
    return weights


def _official_hint(checkpoint: dict) -> str:
    """Advice for weights nested under ``model`` in an official layout
    (or '')."""
    nested = checkpoint.get('model')
    found = detect_official_layout(nested) if isinstance(nested,
                                                         dict) else None
    if found is None:
        return ''
    family, _, converter = found
    return (f' The weights under `model` are an official {family} file: '
            f'convert it first with {converter}.')


def check_checkpoint_keys(
        model: nn.Module,
        checkpoint: Union[str, dict],
        prefix: Optional[str] = None,
        logger=None,
        source: Optional[str] = None) -> Tuple[List[str], List[str]]:
    """Check that a checkpoint's keys fit a model.

    Args:
        model (nn.Module): The model to load into (a model wrapper or a
            ``BaseTTAModel`` is unwrapped).
        checkpoint (str | dict): A loaded checkpoint, or a path / URL read
            with :func:`~slak_mm.utils.load_checkpoint_file`. Its weights
            are taken as mmengine does (:func:`checkpoint_weights`).
        prefix (str, optional): Only keys starting with it, with it
            removed, are compared (mmengine ``Pretrained``'s ``prefix``).
        logger (optional): Where the key lists go. Defaults to mmengine's
            current logger.
        source (str, optional): The file's name in messages. Defaults to
            ``checkpoint`` when it is a path, else ``'checkpoint'``.

    Returns:
        tuple[list[str], list[str]]: Missing keys (model keys absent from
        the file) and unexpected keys (file keys the model lacks).

    Raises:
        ValueError: If the file holds official SLaK / ShiftWise key names
            (the message names the converter), or no key of the file
            matches a model key (the message names the expected keys /
            prefix and the file's first keys).
    """
    if is_model_wrapper(model):
        model = model.module
    if isinstance(model, BaseTTAModel):
        model = model.module
    if isinstance(checkpoint, str):
        source = source or checkpoint
        checkpoint = load_checkpoint_file(checkpoint)
    source = source or 'checkpoint'
    try:
        all_weights = checkpoint_weights(checkpoint)
    except ValueError as err:
        raise ValueError(f'{source}: {err}') from None
    official = detect_official_layout(all_weights)
    if official is not None:
        family, example, converter = official
        raise ValueError(
            f'{source}: refusing to load official {family} keys. Keys such '
            f'as `{example}` are those of an official {family} file: '
            f'convert it first with {converter}.')
    keys = list(checkpoint_weights(checkpoint, prefix))
    model_keys = set(model.state_dict())
    matched = [k for k in keys if k in model_keys]
    if not matched:
        where = f'with prefix `{prefix}` ' if prefix else ''
        raise ValueError(
            f'{source}: no key {where}matches the model '
            f'({type(model).__name__}, whose keys look like '
            f'{sorted(model_keys)[:3]}); the file\'s first keys are '
            f'{list(all_weights)[:5]}. Weights nested under another entry '
            '(e.g. `model`) or saved with another prefix do not load.' +
            _official_hint(checkpoint))
    missing = sorted(model_keys.difference(keys))
    unexpected = sorted(set(keys).difference(model_keys))
    print_log(
        f'{source}: {len(matched)} of {len(model_keys)} model keys found; '
        f'missing keys: {missing}; unexpected keys: {unexpected}',
        logger=logger or MMLogger.get_current_instance())
    return missing, unexpected


def _init_children_first(module: nn.Module) -> None:
    """Run the children's ``init_weights`` now and mark them initialized.

    mmengine's ``BaseModule.init_weights`` applies an ``init_cfg`` of type
    ``'Pretrained'`` after its children's ``init_weights`` (which, e.g. for
    mmcv's ``ConvModule``, re-initialize their weights) and any other type
    before them. Doing the children's part first, as that method would,
    and marking them (``BaseModule`` sets ``_is_init``; other modules get
    ``is_init``, the flag it checks) gives ``CheckedPretrained`` the
    priority of ``Pretrained``.
    """
    if not isinstance(module, BaseModule) or module.is_init:
        return
    for child in module.children():
        done = getattr(child, 'is_init', False)
        if hasattr(child, 'init_weights') and not done:
            child.init_weights()
            if not isinstance(child, BaseModule):
                child.is_init = True


@WEIGHT_INITIALIZERS.register_module(name='CheckedPretrained')
class CheckedPretrainedInit(PretrainedInit):
    """mmengine's ``Pretrained`` initializer that reads the file once and
    raises instead of loading nothing.

    Use it as ``init_cfg=dict(type='CheckedPretrained', checkpoint=...,
    prefix='backbone.')``; registered in mmengine's root
    ``WEIGHT_INITIALIZERS`` when slak_mm is imported, so it is found under
    the ``mmpretrain``, ``mmseg`` and ``mmdet`` default scopes. Compared
    with ``PretrainedInit`` (same arguments), the loaded checkpoint is
    checked with :func:`check_checkpoint_keys` before its weights are
    loaded (``strict=False``, a leading ``module.`` removed), and the
    children of the module are initialized first, so that the loaded
    weights win as with ``'Pretrained'`` (see
    :func:`_init_children_first`). In an ``init_cfg`` list, put it last.

    Args:
        checkpoint (str): Path / URL of the checkpoint (read with
            :func:`~slak_mm.utils.load_checkpoint_file`: safe loading of
            mmengine checkpoints).
        prefix (str, optional): Load only the keys with this prefix, the
            prefix removed, e.g. ``'backbone.'``. Defaults to None.
        map_location (str): As for ``torch.load``. Defaults to ``'cpu'``.

    Raises:
        ValueError: See :func:`check_checkpoint_keys`.
        CheckpointUnpicklingError: If the safe loader refuses the file
            (a ``ValueError`` too).
    """

    def __call__(self, module: nn.Module) -> None:
        _init_children_first(module)
        where = f'{self.prefix} in model' if self.prefix else 'model'
        print_log(f'load {where} from: {self.checkpoint}', logger='current')
        checkpoint = load_checkpoint_file(self.checkpoint, self.map_location)
        check_checkpoint_keys(
            module, checkpoint, self.prefix, source=self.checkpoint)
        load_state_dict(
            module,
            checkpoint_weights(checkpoint, self.prefix),
            strict=False,
            logger='current')
        if hasattr(module, '_params_init_info'):
            update_init_info(module, init_info=self._get_init_info())


class CheckpointKeysHook(Hook):
    """Check the checkpoint that ``Runner.load_checkpoint`` loads.

    mmengine calls ``after_load_checkpoint`` with the loaded checkpoint
    before loading it into the model, so the check adds no read of the
    file. ``tools/test.py`` registers it for the tested checkpoint.

    Args:
        source (str, optional): The file's name in messages. Defaults to
            None (``'checkpoint'``).

    Raises:
        ValueError: See :func:`check_checkpoint_keys`.
    """

    priority = 'VERY_HIGH'

    def __init__(self, source: Optional[str] = None) -> None:
        self.source = source

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        check_checkpoint_keys(
            runner.model, checkpoint, logger=runner.logger, source=self.source)
