"""Safe loading of mmengine checkpoints on torch >= 2.6, and a key check
before loading weights into a model."""
import pickle
import re
from typing import List, Optional, Tuple

import numpy as np
import torch
from mmengine.logging import HistoryBuffer


def _numpy_globals() -> list:
    """The numpy callables and classes that a pickled ndarray / scalar
    references, under the module names of numpy 1.x and 2.x."""
    try:
        multiarray = np._core.multiarray
    except AttributeError:  # numpy < 2
        multiarray = np.core.multiarray
    entries = []
    for func in (multiarray._reconstruct, multiarray.scalar):
        for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
            entries.append((func, f'{module}.{func.__name__}'))
    entries += [np.ndarray, np.dtype]
    dtype_classes = [
        type(np.dtype(t))
        for t in (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8,
                  np.uint16, np.uint32, np.uint64, np.float16, np.float32,
                  np.float64)
    ]
    entries += [c for c in dtype_classes if c is not np.dtype]
    return entries


def _history_buffer_getattr(obj, name: str):
    """``getattr`` restricted to the statistics methods of a HistoryBuffer.

    A pickled :class:`~mmengine.logging.HistoryBuffer` stores its
    ``statistics_methods`` (functions defined in the class) by qualified
    name, which unpickles as ``getattr(HistoryBuffer, 'min')``. Allowing the
    real ``getattr`` in the safe unpickler would expose every attribute of
    every allowed object; this stand-in resolves only those functions and
    raises otherwise.

    Raises:
        pickle.UnpicklingError: For any other object or attribute.
    """
    # the four defaults are registered lazily, by the first HistoryBuffer
    allowed = {'min', 'max', 'current', 'mean'}
    allowed.update(HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and name in allowed:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'getattr({obj!r}, {name!r}) is not allowed in a '
        'weights_only checkpoint (slak_mm allows only HistoryBuffer '
        'statistics methods).')


def register_checkpoint_safe_globals() -> None:
    """Allow the non-tensor objects of mmengine checkpoints in the safe
    unpickler of ``torch.load``.

    Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``, and
    mmengine 0.10.7 calls it without the argument, so ``--resume`` fails on
    the message hub's :class:`~mmengine.logging.HistoryBuffer` and the numpy
    arrays inside (open-mmlab/mmengine#1655); since every checkpoint the
    Runner writes holds a message hub, ``tools/test.py`` fails on them too.
    Instead of disabling the safe loader (``weights_only=False`` executes
    arbitrary pickled code), this adds exactly those classes to its
    allow-list with ``torch.serialization.add_safe_globals``, plus a
    ``getattr`` restricted to HistoryBuffer's statistics methods
    (:func:`_history_buffer_getattr`); any other object in a file still
    makes the load fail. Idempotent; called when slak_mm is imported.
    """
    restricted_getattr = [(_history_buffer_getattr, f'{module}.getattr')
                          for module in ('builtins', '__builtin__')]
    torch.serialization.add_safe_globals([HistoryBuffer] + _numpy_globals() +
                                         restricted_getattr)


def _official_hint(keys) -> str:
    """Advice for keys in the official SLaK layout (or '' for others)."""
    official = [
        k for k in keys if re.search(
            r'large_kernel\.(LoRA|Decom|lkb_origin|lkb_reparam|small_conv)'
            r'|\.pwconv[12]\.', k)
    ]
    if not official:
        return ''
    return (f' Keys such as `{official[0]}` are those of an official SLaK '
            'file: convert it first with tools/model_converters/'
            'slak_to_mmpretrain.py, slak_to_mmseg.py or slak_to_mmdet.py.')


def check_checkpoint_keys(model: torch.nn.Module,
                          checkpoint,
                          prefix: Optional[str] = None,
                          logger=None) -> Tuple[List[str], List[str]]:
    """Check that a checkpoint's keys fit a model before loading it.

    mmengine's ``load_checkpoint(strict=False)`` only warns when keys do not
    match, so a file whose weights are nested elsewhere (e.g. under
    ``model`` in the official SLaK files) or named in another layout
    "loads" and leaves the model at its initialization. This check makes
    that an error and logs the missing / unexpected key lists otherwise.

    Args:
        model (nn.Module): The model to load into (a model wrapper is
            unwrapped).
        checkpoint (str | dict): Path / URL (read with mmengine's
            ``CheckpointLoader``) or a loaded checkpoint. Its weights are
            ``checkpoint['state_dict']`` if present, else the dict itself;
            a leading ``module.`` is ignored.
        prefix (str, optional): Only keys starting with it, with it
            removed, are compared (mmengine ``Pretrained``'s ``prefix``).
        logger (optional): Where the key lists go. Defaults to mmengine's
            current logger.

    Returns:
        tuple[list[str], list[str]]: Missing keys (model keys absent from
        the file) and unexpected keys (file keys the model lacks).

    Raises:
        ValueError: If no key of the file matches a model key (the message
            names the expected keys / prefix and the file's first keys), or
            the file holds official SLaK key names.
    """
    from mmengine.logging import MMLogger, print_log
    from mmengine.model import BaseTTAModel, is_model_wrapper
    from mmengine.runner import CheckpointLoader

    if is_model_wrapper(model):
        model = model.module
    if isinstance(model, BaseTTAModel):
        model = model.module
    source = checkpoint if isinstance(checkpoint, str) else 'checkpoint'
    if isinstance(checkpoint, str):
        try:
            checkpoint = CheckpointLoader.load_checkpoint(
                checkpoint, map_location='cpu')
        except pickle.UnpicklingError as err:
            raise ValueError(
                f'{source}: torch.load(weights_only=True) refused the file '
                f'({str(err).splitlines()[0]}). Official SLaK files hold an '
                '`args` Namespace and their weights under `model`: convert '
                'them with tools/model_converters/slak_to_mmpretrain.py '
                '(or slak_to_mmseg.py / slak_to_mmdet.py).') from err
    weights = checkpoint.get('state_dict', checkpoint) \
        if isinstance(checkpoint, dict) else None
    if not isinstance(weights, dict):
        raise ValueError(f'{source}: expected a dict of weights, got '
                         f'{type(weights).__name__}.')
    keys = [
        k[len('module.'):] if k.startswith('module.') else k for k in weights
    ]
    if prefix:
        if not prefix.endswith('.'):
            prefix += '.'
        keys = [k[len(prefix):] for k in keys if k.startswith(prefix)]
    model_keys = set(model.state_dict())
    matched = [k for k in keys if k in model_keys]
    hint = _official_hint(keys)
    if hint:
        raise ValueError(f'{source}: refusing to load official SLaK keys.'
                         f'{hint}')
    if not matched:
        where = f'with prefix `{prefix}` ' if prefix else ''
        raise ValueError(
            f'{source}: no key {where}matches the model '
            f'({type(model).__name__}, whose keys look like '
            f'{sorted(model_keys)[:3]}); the file\'s first keys are '
            f'{list(weights)[:5]}. Weights nested under another entry '
            '(e.g. `model`) or saved with another prefix do not load.')
    missing = sorted(model_keys.difference(keys))
    unexpected = sorted(set(keys).difference(model_keys))
    print_log(
        f'{source}: {len(matched)} of {len(model_keys)} model keys found; '
        f'missing keys: {missing}; unexpected keys: {unexpected}',
        logger=logger or MMLogger.get_current_instance())
    return missing, unexpected
