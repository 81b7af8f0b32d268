"""Safe loading of mmengine checkpoints on torch >= 2.6."""
import pickle

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
        type(np.dtype(t)) for t in (np.bool_, np.int8, np.int16, np.int32,
                                    np.int64, np.uint8, np.uint16, np.uint32,
                                    np.uint64, np.float16, np.float32,
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
