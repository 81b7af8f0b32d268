"""slak_mm: sparse large-kernel ConvNets (SLaK) for OpenMMLab 2.x.

Importing the package registers its modules in the ``slak_mm`` registry
scope (see :mod:`slak_mm.registry`) and allows mmengine's own checkpoint
classes to be unpickled by ``torch.load(weights_only=True)`` (see
:func:`slak_mm.utils.register_checkpoint_safe_globals`), which makes
``--resume`` work on torch >= 2.6 without disabling the safe loader.
"""
from . import engine, models  # noqa: F401,E402  (register modules)
from .utils import register_checkpoint_safe_globals
from .version import __version__

register_checkpoint_safe_globals()

__all__ = ['__version__']
