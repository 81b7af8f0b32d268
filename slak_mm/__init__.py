"""slak_mm: sparse large-kernel ConvNets (SLaK) for OpenMMLab 2.x.

Importing the package registers its modules in the ``slak_mm`` registry
scope (see :mod:`slak_mm.registry`) and the ``CheckedPretrained`` weight
initializer in mmengine's ``WEIGHT_INITIALIZERS``. It changes nothing in
torch: safe loading of mmengine checkpoints on torch >= 2.6 is scoped to
:func:`slak_mm.utils.checkpoint_safe_globals`.
"""
from . import engine, models, utils  # noqa: F401  (register modules)
from .version import __version__

__all__ = ['__version__']
