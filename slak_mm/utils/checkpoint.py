"""Safe loading of mmengine checkpoints on torch >= 2.6."""
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


def register_checkpoint_safe_globals() -> None:
    """Allow the non-tensor objects of mmengine checkpoints in the safe
    unpickler of ``torch.load``.

    Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``, and
    mmengine 0.10.7 calls it without the argument, so ``--resume`` fails on
    the message hub's :class:`~mmengine.logging.HistoryBuffer` and the numpy
    arrays inside (open-mmlab/mmengine#1655). Instead of disabling the safe
    loader (``weights_only=False`` executes arbitrary pickled code), this
    adds exactly those classes to its allow-list with
    ``torch.serialization.add_safe_globals``; any other object in a file
    still makes the load fail. Idempotent; called when slak_mm is imported.
    """
    torch.serialization.add_safe_globals([HistoryBuffer] + _numpy_globals())
