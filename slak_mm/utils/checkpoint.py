"""Safe loading of mmengine checkpoints on torch >= 2.6, in a scope.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``, and
mmengine 0.10.7 calls it without the argument (``load_from_local``), so
resuming fails on the message hub's :class:`~mmengine.logging.HistoryBuffer`
and the numpy arrays inside (open-mmlab/mmengine#1655); since every
checkpoint the Runner writes holds a message hub, testing a Runner
checkpoint fails too. :func:`checkpoint_safe_globals` allows exactly those
objects for the loads inside a ``with`` block, instead of disabling the
safe loader (``weights_only=False`` executes arbitrary pickled code) or
changing torch's process-wide allow-list.
"""
import contextlib
import pickle
from typing import Iterator, Optional

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader


class CheckpointUnpicklingError(pickle.UnpicklingError, ValueError):
    """The safe loader refused an object of a checkpoint (also a
    ``ValueError``: the file is not a loadable checkpoint)."""


#: Appended to the safe loader's refusals inside checkpoint_safe_globals.
UNPICKLING_HINT = (
    'Only tensors, plain containers and mmengine checkpoint objects '
    '(HistoryBuffer, numpy arrays) are allowed. An official SLaK or '
    'ShiftWise file (weights under `model`, the training `args` pickled) '
    'must be converted first: tools/model_converters/slak_to_mmpretrain.py '
    '(slak_to_mmseg.py, slak_to_mmdet.py) or sw_to_mmpretrain.py.')


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


def mmengine_safe_globals() -> list:
    """The allow-list entries that mmengine checkpoints need:
    :class:`~mmengine.logging.HistoryBuffer`, the numpy array / dtype
    classes (numpy 1.x and 2.x module names) and a ``getattr`` restricted
    to HistoryBuffer's statistics methods (:func:`_history_buffer_getattr`,
    under the names ``builtins.getattr`` / ``__builtin__.getattr``), in the
    format of ``torch.serialization.safe_globals``."""
    restricted_getattr = [(_history_buffer_getattr, f'{module}.getattr')
                          for module in ('builtins', '__builtin__')]
    return [HistoryBuffer] + _numpy_globals() + restricted_getattr


@contextlib.contextmanager
def checkpoint_safe_globals() -> Iterator[None]:
    """Allow mmengine checkpoints in ``torch.load(weights_only=True)``
    inside a ``with`` block.

    Adds :func:`mmengine_safe_globals` to torch's allow-list with
    ``torch.serialization.safe_globals`` and removes them again on exit;
    entries that were on the list before stay there, and nesting is safe.
    Any other object in a file still makes the load fail: a
    ``pickle.UnpicklingError`` raised in the block is re-raised as
    :class:`CheckpointUnpicklingError` with :data:`UNPICKLING_HINT`
    appended. Used by ``tools/train.py`` /
    ``tools/test.py`` around ``runner.train()`` / ``runner.test()`` (which
    makes ``--resume`` work), by :func:`load_checkpoint_file` and by the
    ``CheckedPretrained`` initializer.

    Example:
        >>> with checkpoint_safe_globals():
        ...     ckpt = torch.load('work_dirs/x/iter_100.pth')

    Raises:
        CheckpointUnpicklingError: When the safe loader refuses an object.
    """
    present = torch.serialization.get_safe_globals()
    added = [g for g in mmengine_safe_globals() if g not in present]
    try:
        with torch.serialization.safe_globals(added):
            yield
    except pickle.UnpicklingError as err:
        raise CheckpointUnpicklingError(f'{err}\n{UNPICKLING_HINT}') from err


def load_checkpoint_file(filename: str,
                         map_location: Optional[str] = 'cpu',
                         logger=None) -> dict:
    """Read a checkpoint with mmengine's ``CheckpointLoader`` (local path,
    URL, ``open-mmlab://`` ...) inside :func:`checkpoint_safe_globals`.

    Args:
        filename (str): Where the checkpoint is.
        map_location (str, optional): As for ``torch.load``. Defaults to
            ``'cpu'``.
        logger (optional): Passed to ``CheckpointLoader``.

    Returns:
        dict: The checkpoint.

    Raises:
        CheckpointUnpicklingError: When the safe loader refuses an object.
        FileNotFoundError: For a missing local file.
    """
    with checkpoint_safe_globals():
        return CheckpointLoader.load_checkpoint(filename, map_location, logger)
