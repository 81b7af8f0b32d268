"""A model EMA that obeys the sparse-training masks."""
from typing import Dict, Optional

import torch
import torch.nn as nn
from mmengine.model import ExponentialMovingAverage

from slak_mm.registry import MODELS


@MODELS.register_module()
class MaskedExponentialMovingAverage(ExponentialMovingAverage):
    """mmengine's :class:`ExponentialMovingAverage` kept exactly as sparse
    as the sparse-training masks, as the official SLaK ``ModelEma.update(
    model, mask)`` (``model_sema.py`` 67-91, called from ``engine.py``
    87-88).

    For a masked tensor, one update is ``ema = ((1 - m) * ema + m * w) *
    mask`` (mmengine's update, then the mask), except at the positions that
    are active in the mask but zero in the average before the update (just
    regrown), which take the current weight ``w``. Without masks it is a
    plain :class:`ExponentialMovingAverage`.

    The masks are attached by :class:`slak_mm.DynamicSparseHook` /
    :class:`slak_mm.StaticSparseHook` (``set_masks``); they share the hook's
    mask dict, so prune / regrow updates are seen at once. Use it with
    mmengine's ``EMAHook``::

        custom_hooks = [
            dict(type='slak_mm.DynamicSparseHook', ...),
            dict(type='EMAHook', ema_type='slak_mm.MaskedExponentialMovingAverage',
                 momentum=1e-4, update_buffers=True)]

    The sparse hooks apply the masks inside the optimizer step, so the
    averaged weights are masked whatever the hook priorities and
    ``accumulative_counts``.

    Args:
        model (nn.Module): The model to average (unwrapped).
        momentum (float): mmengine's EMA momentum, ``1 - decay``
            (SLaK: ``1 - 0.9999``). Defaults to 0.0002.
        interval (int): Average every ``interval`` updates. Defaults to 1.
        device (torch.device, optional): Device of the average.
        update_buffers (bool): Also average the buffers (BN statistics).
    """

    def __init__(self,
                 model: nn.Module,
                 momentum: float = 0.0002,
                 interval: int = 1,
                 device: Optional[torch.device] = None,
                 update_buffers: bool = False) -> None:
        super().__init__(model, momentum, interval, device, update_buffers)
        self.masks: Dict[str, torch.Tensor] = {}

    def set_masks(self, masks: Dict[str, torch.Tensor]) -> None:
        """Attach the masks (``{parameter name: bool tensor}``, names of the
        unwrapped model) and apply them to the average at once.

        Raises:
            KeyError: If a mask names no tensor of the averaged model.
        """
        unknown = [n for n in masks if n not in self.avg_parameters]
        if unknown:
            raise KeyError(f'masks for tensors the averaged model does not '
                           f'have: {unknown[:5]}')
        self.masks = masks
        with torch.no_grad():
            for name, mask in self.masks.items():
                avg = self.avg_parameters[name]
                avg.mul_(mask.to(avg.device))

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> None:
        """mmengine's update, then the masks (see the class docstring).

        Args:
            model (nn.Module): The (unwrapped) source model.
        """
        regrown = {
            name: mask.to(self.avg_parameters[name].device) &
            (self.avg_parameters[name] == 0)
            for name, mask in self.masks.items()
        }
        super().update_parameters(model)
        src = dict(model.named_parameters())
        for name, mask in self.masks.items():
            avg = self.avg_parameters[name]
            avg.mul_(mask.to(avg.device))
            avg[regrown[name]] = src[name].detach().to(
                avg.device)[regrown[name]]
