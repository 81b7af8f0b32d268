"""Registries of slak_mm.

Every registry is a child of the corresponding mmengine root registry with
the explicit scope ``slak_mm``. Configs of any OpenMMLab 2.x toolbox keep
their own ``default_scope`` (``mmseg``, ``mmdet`` or ``mmpretrain``) and reach
slak_mm modules with the scope prefix, e.g. ``type='slak_mm.SLaK'`` or
``constructor='slak_mm.LearningRateDecayOptimizerConstructor'``. The prefix
imports this file and then the ``locations`` below, so a config works even
without ``custom_imports``; configs still list it for explicitness.
"""
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import Registry

#: Backbones and layers, e.g. ``slak_mm.SLaK``, and the mask-aware model
#: EMA ``slak_mm.MaskedExponentialMovingAverage``.
MODELS = Registry(
    'model',
    parent=MMENGINE_MODELS,
    scope='slak_mm',
    locations=['slak_mm.models', 'slak_mm.engine'])

#: Layer-wise learning-rate decay constructors.
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
    scope='slak_mm',
    locations=['slak_mm.engine'])

#: Training hooks.
HOOKS = Registry(
    'hook', parent=MMENGINE_HOOKS, scope='slak_mm',
    locations=['slak_mm.engine'])

#: Model wrappers (CPU-capable distributed data parallel).
MODEL_WRAPPERS = Registry(
    'model_wrapper',
    parent=MMENGINE_MODEL_WRAPPERS,
    scope='slak_mm',
    locations=['slak_mm.engine'])
