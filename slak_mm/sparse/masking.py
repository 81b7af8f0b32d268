"""Weight masks and the prune / regrow step of dynamic sparse training."""
import hashlib
import math
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn

from .density import DENSE_THRESHOLD

#: Optimizer state entries that are zeroed where a weight is masked, so that
#: stale moments never move a pruned (or later regrown) weight.
MASKED_STATE_KEYS = ('exp_avg', 'exp_avg_sq', 'max_exp_avg_sq',
                     'momentum_buffer')


def select_sparse_weights(model: nn.Module,
                          include: str = 'all',
                          prefix: str = '') -> List[str]:
    """Names of the weights that sparse training masks.

    Args:
        model (nn.Module): The (unwrapped) model.
        include (str): ``'all'``: every 2-D (linear) and 4-D (conv) weight,
            the published SLaK default; ``'large_kernels'``: only the conv
            weights of :class:`DecomposedLargeKernelConv` branches (the
            official ``--only-L`` option).
        prefix (str): Only names starting with it, e.g. ``'backbone.'``.

    Returns:
        list[str]: Parameter names, in ``named_parameters`` order.

    Raises:
        ValueError: For an unknown ``include``.
    """
    if include not in ('all', 'large_kernels'):
        raise ValueError(f"`include` must be 'all' or 'large_kernels', got "
                         f'{include!r}.')
    from slak_mm.models.layers import DecomposedLargeKernelConv
    large_kernel_names = set()
    for module_name, module in model.named_modules():
        if isinstance(module, DecomposedLargeKernelConv):
            for name, param in module.named_parameters(prefix=module_name):
                if param.ndim == 4:
                    large_kernel_names.add(name)
    names = []
    for name, param in model.named_parameters():
        if not name.startswith(prefix) or not param.requires_grad:
            continue
        if include == 'large_kernels':
            if name in large_kernel_names:
                names.append(name)
        elif param.ndim in (2, 4) and name.endswith('weight'):
            names.append(name)
    return names


def group_of(name: str) -> str:
    """Group used in density logs: ``stage{i}`` for backbone stages,
    ``backbone`` for the rest of the backbone, else the top-level module
    (``head``, ``decode_head``, ``neck``...)."""
    match = re.match(r'(?:.*\.)?backbone\.stages\.(\d+)\.', name)
    if match:
        return f'stage{match.group(1)}'
    if name.startswith('backbone.'):
        return 'backbone'
    return name.split('.')[0]


class SparseMasking:
    """Binary masks over named weights, with SLaK's prune / regrow update.

    The masks are boolean tensors on the weights' device. Everything that
    draws random numbers takes a :class:`torch.Generator`, so processes that
    use the same seed make bit-identical decisions without communication.

    Args:
        model (nn.Module): The unwrapped model (not the DDP wrapper).
        names (list[str]): The candidate weights (see
            :func:`select_sparse_weights`).

    Raises:
        KeyError: If a name is not a parameter of ``model``.
    """

    def __init__(self, model: nn.Module, names: List[str]) -> None:
        params = dict(model.named_parameters())
        missing = [n for n in names if n not in params]
        if missing:
            raise KeyError(f'not parameters of the model: {missing[:5]}')
        self.params = OrderedDict((n, params[n]) for n in names)
        self.masks: Dict[str, torch.Tensor] = OrderedDict()

    # ------------------------------------------------------------------
    # initialisation
    # ------------------------------------------------------------------
    def init_random(self, densities: Dict[str, float],
                    generator: torch.Generator) -> None:
        """Random masks with exactly ``round(d * numel)`` ones per layer.

        Layers with density ``>= 0.99`` stay dense (no mask), as in SLaK.

        Args:
            densities (dict[str, float]): Density per candidate weight.
            generator (torch.Generator): CPU generator (shared seed).
        """
        self.masks.clear()
        for name, param in self.params.items():
            density = densities[name]
            if density >= DENSE_THRESHOLD:
                continue
            numel = param.numel()
            keep = int(round(density * numel))
            index = torch.randperm(numel, generator=generator)[:keep]
            mask = torch.zeros(numel, dtype=torch.bool)
            mask[index] = True
            self.masks[name] = mask.view_as(param).to(param.device)

    def init_from_weights(self) -> None:
        """Masks from the zero pattern of the current weights (fixed-mask
        fine-tuning of a sparse pretrained model). Layers that are at least
        99% non-zero stay dense."""
        self.masks.clear()
        for name, param in self.params.items():
            mask = param.detach() != 0
            if mask.float().mean().item() < DENSE_THRESHOLD:
                self.masks[name] = mask

    # ------------------------------------------------------------------
    # state
    # ------------------------------------------------------------------
    def state_dict(self) -> Dict[str, torch.Tensor]:
        """Masks as CPU bool tensors, keyed by parameter name."""
        return OrderedDict((n, m.cpu()) for n, m in self.masks.items())

    def load_state_dict(self, state: Dict[str, torch.Tensor]) -> None:
        """Restore masks saved by :meth:`state_dict`.

        Raises:
            KeyError: If a mask names a weight that is not a candidate.
            ValueError: If a mask's shape differs from its weight's.
        """
        self.masks.clear()
        for name, mask in state.items():
            if name not in self.params:
                raise KeyError(f'mask for {name!r}, which is not a sparse '
                               'weight of this model.')
            param = self.params[name]
            if mask.shape != param.shape:
                raise ValueError(f'mask {name!r} has shape '
                                 f'{tuple(mask.shape)}, the weight '
                                 f'{tuple(param.shape)}.')
            self.masks[name] = mask.to(device=param.device, dtype=torch.bool)

    def digest(self) -> str:
        """SHA-1 of all masks (names and bits), to compare processes."""
        sha = hashlib.sha1()
        for name, mask in self.masks.items():
            sha.update(name.encode())
            sha.update(np.packbits(mask.cpu().numpy().ravel()).tobytes())
        return sha.hexdigest()

    # ------------------------------------------------------------------
    # application
    # ------------------------------------------------------------------
    @torch.no_grad()
    def apply(self, optimizer: Optional[torch.optim.Optimizer] = None
              ) -> None:
        """Zero masked weights and their optimizer moments.

        Args:
            optimizer (torch.optim.Optimizer, optional): Its per-parameter
                state entries in :data:`MASKED_STATE_KEYS` are masked too.
        """
        for name, mask in self.masks.items():
            param = self.params[name]
            param.mul_(mask)
            if optimizer is None:
                continue
            state = optimizer.state.get(param, {})
            for key in MASKED_STATE_KEYS:
                value = state.get(key)
                if torch.is_tensor(value) and value.shape == mask.shape:
                    value.mul_(mask)

    # ------------------------------------------------------------------
    # dynamic sparse training
    # ------------------------------------------------------------------
    @torch.no_grad()
    def prune_and_regrow(
        self,
        prune_rate: float,
        growth: str,
        generator: torch.Generator,
        grads: Optional[Dict[str, torch.Tensor]] = None,
        optimizer: Optional[torch.optim.Optimizer] = None
    ) -> Dict[str, Tuple[int, int]]:
        """One SLaK mask update, layer by layer.

        Prune the ``ceil(prune_rate * nnz)`` active weights of smallest
        magnitude, then regrow as many at inactive positions (which may
        include the ones just pruned): uniformly at random
        (``growth='random'``) or those with the largest ``|grad|``
        (``growth='gradient'``). Regrown weights and their optimizer moments
        start at zero, so each layer's number of active weights is
        unchanged.

        Args:
            prune_rate (float): Fraction of active weights moved, in [0, 1].
            growth (str): ``'random'`` or ``'gradient'``.
            generator (torch.Generator): CPU generator for random growth.
            grads (dict[str, torch.Tensor], optional): Dense gradients, for
                ``growth='gradient'``.
            optimizer (torch.optim.Optimizer, optional): Optimizer whose
                moments are zeroed at regrown positions.

        Returns:
            dict[str, tuple[int, int]]: ``(pruned, regrown)`` per layer.

        Raises:
            ValueError: For an unknown ``growth`` or missing gradients.
        """
        if growth not in ('random', 'gradient'):
            raise ValueError(f"`growth` must be 'random' or 'gradient', got "
                             f'{growth!r}.')
        moved = OrderedDict()
        for name, mask in self.masks.items():
            param = self.params[name]
            flat_mask = mask.view(-1)
            nnz = int(flat_mask.sum())
            num = min(int(math.ceil(prune_rate * nnz)), nnz)
            if num == 0:
                moved[name] = (0, 0)
                continue
            # prune: smallest |w| among the active weights
            score = param.detach().abs().view(-1).float().clone()
            score[~flat_mask] = float('inf')
            pruned = torch.topk(score, num, largest=False).indices
            flat_mask[pruned] = False
            # regrow among the inactive positions
            if growth == 'random':
                inactive = (~flat_mask).nonzero().view(-1)
                order = torch.randperm(inactive.numel(), generator=generator)
                grown = inactive[order[:num].to(inactive.device)]
            else:
                if grads is None or name not in grads:
                    raise ValueError(f"growth='gradient' needs the "
                                     f'gradient of {name!r}.')
                gscore = grads[name].detach().abs().view(-1).float().clone()
                gscore[flat_mask] = -float('inf')
                grown = torch.topk(gscore, num).indices
            flat_mask[grown] = True
            param.view(-1)[grown] = 0.
            if optimizer is not None:
                state = optimizer.state.get(param, {})
                for key in MASKED_STATE_KEYS:
                    value = state.get(key)
                    if torch.is_tensor(value) and value.shape == mask.shape:
                        value.view(-1)[grown] = 0.
            moved[name] = (num, int(grown.numel()))
        self.apply(optimizer)
        return moved

    # ------------------------------------------------------------------
    # statistics
    # ------------------------------------------------------------------
    def densities(self) -> Dict[str, float]:
        """Density of every candidate weight (1.0 for dense ones)."""
        return OrderedDict(
            (n, self.masks[n].float().mean().item() if n in self.masks else 1.)
            for n in self.params)

    def group_densities(self) -> Tuple[float, Dict[str, float]]:
        """Overall density of the candidate weights and density per group
        (:func:`group_of`)."""
        kept: Dict[str, float] = OrderedDict()
        total: Dict[str, float] = OrderedDict()
        for name, param in self.params.items():
            group = group_of(name)
            nnz = int(self.masks[name].sum()) if name in self.masks \
                else param.numel()
            kept[group] = kept.get(group, 0) + nnz
            total[group] = total.get(group, 0) + param.numel()
        overall = sum(kept.values()) / max(sum(total.values()), 1)
        return overall, OrderedDict((g, kept[g] / total[g]) for g in total)
