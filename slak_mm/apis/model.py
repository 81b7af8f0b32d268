"""Build the model of an mmpretrain / mmseg / mmdet config with slak_mm."""
import copy
from typing import Optional, Union

import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope
from mmengine.runner import load_checkpoint

from slak_mm.utils import checkpoint_safe_globals, get_config_scope


def build_model(cfg: Union[str, Config],
                checkpoint: Optional[str] = None,
                device: Optional[str] = None,
                **backbone) -> nn.Module:
    """Build ``cfg.model`` as mmengine's ``Runner`` does, without
    initialising its weights.

    The model is built in the registry scope of the config's toolbox
    (``default_scope``, through ``DefaultScope.overwrite_default_scope``,
    so the previous default scope is current again afterwards) and gets
    the config's top-level ``data_preprocessor`` unless ``cfg.model`` has
    its own (``Runner.__init__``). ``init_weights()`` is not called, so a
    ``Pretrained`` ``init_cfg`` reads nothing; call it yourself when
    wanted (mmdet's ``init_detector`` and mmpretrain's ``get_model``
    follow the same steps, but each for its own toolbox only).

    Args:
        cfg (str | Config): A config or the path of a config file.
        checkpoint (str, optional): Weights loaded with mmengine's
            ``load_checkpoint`` (non-strict, onto the CPU, ``state_dict``
            key or a bare state dict), inside
            :func:`slak_mm.utils.checkpoint_safe_globals` (torch's safe
            loader, mmengine's checkpoint objects allowed). Defaults to
            None.
        device (str, optional): Move the model there, e.g. ``'cuda:0'``.
            Defaults to None (left on the CPU).
        **backbone: Fields of ``cfg.model.backbone`` to override, e.g.
            ``init_cfg=None`` or ``deploy=True``.

    Returns:
        nn.Module: The model (in training mode, as built).

    Raises:
        ValueError: If ``default_scope`` is not ``'mmpretrain'``,
            ``'mmseg'`` or ``'mmdet'``, or if backbone fields are given
            for a model without ``backbone``.
        CheckpointUnpicklingError: If the safe loader refuses an object
            of ``checkpoint`` (e.g. an unconverted official file).
    """
    if isinstance(cfg, str):
        cfg = Config.fromfile(cfg)
    scope = get_config_scope(cfg)
    model_cfg = copy.deepcopy(cfg.model)
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    if backbone:
        if model_cfg.get('backbone') is None:
            raise ValueError(f'backbone fields {sorted(backbone)} given, but '
                             'the config\'s model has no `backbone`.')
        model_cfg.backbone.update(backbone)
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(model_cfg)
    if checkpoint is not None:
        with checkpoint_safe_globals():
            load_checkpoint(model, checkpoint, map_location='cpu')
    if device is not None:
        model.to(device)
    return model
