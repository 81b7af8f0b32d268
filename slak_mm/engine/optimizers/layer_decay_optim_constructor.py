"""Layer-wise learning-rate decay for SLaK (and any backbone that
implements ``get_layer_depth``)."""
from typing import List

import torch.nn as nn
from mmengine.dist import get_dist_info
from mmengine.logging import MMLogger
from mmengine.optim import DefaultOptimWrapperConstructor
from mmpretrain.models.utils import GRN

from slak_mm.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LearningRateDecayOptimizerConstructor(DefaultOptimWrapperConstructor):
    """Layer-wise / stage-wise learning-rate decay for SLaK detectors,
    segmentors and classifiers.

    The drop-in replacement of the ``LearningRateDecayOptimizerConstructor``
    of mmseg 1.x and mmdet 3.x, which accept only ConvNeXt backbones. Here
    the layer id of each parameter comes from the backbone itself
    (``model.backbone.get_layer_depth`` / ``get_stage_depth``), so the same
    class serves mmseg, mmdet and mmpretrain models with a SLaK (or any
    compatible) backbone. The ids and scales reproduce the ConvNeXt rules
    that the official SLaK segmentation/detection code uses:

    - ``layer_wise``: see :meth:`slak_mm.SLaK.get_layer_depth` with
      ``max = num_layers``; parameters outside the backbone get
      ``num_layers + 1``.
    - ``stage_wise``: every downsample layer -> 0, stage ``i`` -> ``i + 1``,
      everything else (output norms, necks, heads) -> ``num_layers + 1``.

    Each parameter's learning rate is ``base_lr * decay_rate ** (num_layers
    + 1 - layer_id)``, so parameters outside the backbone train at
    ``base_lr`` with both decay types. This is the official rule (VITA-Group/
    SLaK ``segmentation/mmseg/core/optimizers/
    layer_decay_optimizer_constructor.py:125,152-161``, as in mmseg 1.x's
    ConvNeXt constructor): it counts ``num_layers + 2`` ids, gives the
    parameters outside the backbone the last one, and scales by
    ``decay_rate ** (num_layers + 2 - id - 1)``.

    Weight decay is 0 for 1-D parameters (norms, layer scales) and biases,
    ``base_wd`` otherwise, except that the ``gamma`` / ``beta`` of
    GRN layers (mmpretrain ``GRN``, in ShiftWise v2 blocks) are decayed
    although they are 1-D here: the official ShiftWise code stores them as
    ``(1, 1, 1, 4C)`` tensors (``backbones/SW_v2_unirep.py:44-46``),
    which its 1-D rule does not exempt (lidc54/shift-wiseConv
    ``downstream/detection/mmdet/core/optimizers/
    layer_decay_optimizer_constructor.py:107-113``, the segmentation copy
    ``:134-140``). Parameters with ``requires_grad=False`` (frozen stages)
    are left out.

    ``paramwise_cfg`` keys:

    - ``num_layers`` (int, required): 6 for SLaK-T, 12 for S/B.
    - ``decay_rate`` (float, required): e.g. 0.9 (ADE20K), 0.7 (COCO).
    - ``decay_type`` (str): ``'layer_wise'`` (default) or ``'stage_wise'``.
    - ``decay_grn`` (bool): Weight-decay GRN ``gamma`` / ``beta`` as the
      official code does. False exempts them like the other 1-D
      parameters. Defaults to True.

    Raises:
        ValueError: If a required key is missing or ``decay_type`` is
            unknown.
        TypeError: If the model has no ``backbone`` implementing the needed
            ``get_layer_depth`` / ``get_stage_depth``.
    """
    decay_types = ('layer_wise', 'stage_wise')

    def add_params(self, params: List[dict], module: nn.Module,
                   **kwargs) -> None:
        """Add one parameter group per (layer id, decay / no decay).

        Args:
            params (list[dict]): Parameter groups, extended in place.
            module (nn.Module): The (unwrapped) model, with a ``backbone``.
        """
        cfg = self.paramwise_cfg
        for key in ('num_layers', 'decay_rate'):
            if key not in cfg:
                raise ValueError(
                    f'paramwise_cfg of {type(self).__name__} needs '
                    f'`{key}`, got {dict(cfg)}.')
        num_layers = int(cfg['num_layers'])
        decay_rate = float(cfg['decay_rate'])
        decay_type = cfg.get('decay_type', 'layer_wise')
        if decay_type not in self.decay_types:
            raise ValueError(f'paramwise_cfg.decay_type must be one of '
                             f'{self.decay_types}, got {decay_type!r}.')
        backbone = getattr(module, 'backbone', None)
        method = 'get_layer_depth' if decay_type == 'layer_wise' \
            else 'get_stage_depth'
        if backbone is None or not hasattr(backbone, method):
            raise TypeError(
                f'{type(self).__name__} with decay_type={decay_type!r} needs '
                f'`model.backbone.{method}()`; {type(module).__name__} has '
                f'backbone {type(backbone).__name__}.')

        decay_grn = bool(cfg.get('decay_grn', True))
        grn_params = {
            id(p)
            for m in module.modules() if isinstance(m, GRN)
            for p in m.parameters(recurse=False)
        } if decay_grn else set()

        groups = {}
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            if id(param) in grn_params:
                decay_name, weight_decay = 'decay', self.base_wd
            elif param.ndim == 1 or name.endswith('.bias'):
                decay_name, weight_decay = 'no_decay', 0.
            else:
                decay_name, weight_decay = 'decay', self.base_wd
            if decay_type == 'layer_wise':
                layer_id, _ = backbone.get_layer_depth(
                    name, 'backbone.', max_layer_id=num_layers)
            else:
                layer_id = backbone.get_stage_depth(name, 'backbone.')
                if layer_id is None:
                    # outside downsample_layers / stages: lr scale 1
                    layer_id = num_layers + 1
            group_name = f'layer_{layer_id}_{decay_name}'
            if group_name not in groups:
                scale = decay_rate**(num_layers + 1 - layer_id)
                groups[group_name] = dict(
                    weight_decay=weight_decay,
                    params=[],
                    param_names=[],
                    lr_scale=scale,
                    group_name=group_name,
                    lr=scale * self.base_lr)
            groups[group_name]['params'].append(param)
            groups[group_name]['param_names'].append(name)

        rank, _ = get_dist_info()
        if rank == 0:
            logger = MMLogger.get_current_instance()
            summary = ', '.join(
                f'{k}: lr_scale {v["lr_scale"]:.4g} x{len(v["params"])}'
                for k, v in sorted(groups.items()))
            logger.info(f'{decay_type} lr decay (rate {decay_rate}, '
                        f'num_layers {num_layers}): {summary}')
        params.extend(groups.values())
