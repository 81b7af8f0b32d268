"""Coarse (per-piece) sparse training of shift-wise convs, as published.

The official SW training (lidc54/shift-wiseConv, ``main.py --sparse
--sparse_type rep_coarse --only_L``; ``sparse_core.py``
``Masking.add_module_sum*`` and ``funcs.py`` ``magnitude_prune_sum``)
masks only the grouped ``k x k`` convs of the SW layers (each of the
``N_path`` convs separately), with ONE mask bit per ``k x k`` piece
(mask shape ``(R * nk, 1, 1, 1)``):

- SNIP scores per piece: ``sum_{i, j} |w * dL/dw|`` over the piece;
- pruning: the ``ceil(rate * active)`` active pieces of smallest L1 norm
  ``sum |w|``; regrowth: as many inactive pieces, at random.

:class:`PieceSparseMasking` is a :class:`SparseMasking` whose masks keep
the weights' full shape (so application, checkpoints, digests and density
logs are unchanged) but are constant over every piece; its initialisation
and prune / regrow act on pieces.
"""
import math
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn

from .density import DENSE_THRESHOLD
from .masking import MASKED_STATE_KEYS, SparseMasking


def select_shiftwise_pieces(model: nn.Module, prefix: str = '') -> List[str]:
    """Names of the piece weights of every :class:`ShiftwiseConv` (the
    official ``--only_L`` selection, ``large_kernel.LoRAs.*``).

    Args:
        model (nn.Module): The (unwrapped) model.
        prefix (str): Only names starting with it. Defaults to ''.

    Returns:
        list[str]: ``...paths.{p}.weight`` names in ``named_parameters``
        order (each of shape ``(R * nk, 1, k, k)``).
    """
    from slak_mm.models.layers import ShiftwiseConv
    wanted = set()
    for module_name, module in model.named_modules():
        if isinstance(module, ShiftwiseConv):
            prefix_ = f'{module_name}.' if module_name else ''
            for name, _ in module.paths.named_parameters():
                wanted.add(f'{prefix_}paths.{name}')
    return [
        name for name, param in model.named_parameters()
        if name in wanted and name.startswith(prefix) and param.requires_grad
    ]


def piece_scores(score: torch.Tensor) -> torch.Tensor:
    """Sum an element-wise score over each ``k x k`` piece.

    Args:
        score (torch.Tensor): ``(P, 1, k, k)`` (e.g. ``|w * grad|``).

    Returns:
        torch.Tensor: ``(P, 1, 1, 1)``, one score per piece.

    Raises:
        ValueError: If ``score`` is not 4-D.
    """
    if score.dim() != 4:
        raise ValueError('piece scores need a 4-D conv weight (P, 1, k, k), '
                         f'got shape {tuple(score.shape)}.')
    return score.sum(dim=(2, 3), keepdim=True)


class PieceSparseMasking(SparseMasking):
    """Masks with one bit per ``k x k`` piece of the SW conv weights.

    Args:
        model (nn.Module): The unwrapped model.
        names (list[str]): 4-D weights to mask, normally
            :func:`select_shiftwise_pieces`.

    Raises:
        KeyError: If a name is not a parameter of ``model``.
        ValueError: If a weight is not 4-D.
    """

    def __init__(self, model: nn.Module, names: List[str]) -> None:
        super().__init__(model, names)
        for name, param in self.params.items():
            if param.dim() != 4:
                raise ValueError(f'{name!r} is not a 4-D conv weight '
                                 f'(shape {tuple(param.shape)}).')

    @staticmethod
    def _expand(unit_mask: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
        return unit_mask.view(-1, 1, 1, 1).expand_as(param).clone()

    def unit_masks(self) -> Dict[str, torch.Tensor]:
        """The per-piece masks, ``(P,)`` bool each (masked weights only)."""
        return OrderedDict(
            (n, m.flatten(1).any(1)) for n, m in self.masks.items())

    def init_random(self, densities: Dict[str, float],
                    generator: torch.Generator) -> None:
        """Random piece masks with ``round(d * P)`` active pieces per
        weight; weights with density ``>= 0.99`` stay dense.

        Args:
            densities (dict[str, float]): Density per weight (pieces and
                elements give the same fraction).
            generator (torch.Generator): CPU generator.
        """
        self.masks.clear()
        for name, param in self.params.items():
            density = densities[name]
            if density >= DENSE_THRESHOLD:
                continue
            units = param.shape[0]
            keep = int(round(density * units))
            unit = torch.zeros(units, dtype=torch.bool)
            unit[torch.randperm(units, generator=generator)[:keep]] = True
            self.masks[name] = self._expand(unit, param).to(param.device)

    def load_state_dict(self, state: Dict[str, torch.Tensor]) -> None:
        """Restore masks (see :meth:`SparseMasking.load_state_dict`).

        Raises:
            ValueError: Also if a mask is not constant over each piece.
        """
        super().load_state_dict(state)
        for name, mask in self.masks.items():
            flat = mask.flatten(1)
            if not torch.equal(flat.all(1), flat.any(1)):
                raise ValueError(f'mask {name!r} is not constant over its '
                                 'k x k pieces.')

    @torch.no_grad()
    def prune_and_regrow(
        self,
        prune_rate: float,
        growth: str,
        generator: torch.Generator,
        grads: Optional[Dict[str, torch.Tensor]] = None,
        optimizer: Optional[torch.optim.Optimizer] = None
    ) -> Dict[str, Tuple[int, int]]:
        """One coarse mask update per weight.

        Prune the ``ceil(prune_rate * active)`` active pieces of smallest
        L1 norm (official ``magnitude_prune_sum``), then regrow as many
        inactive pieces: at random (``'random'``, the published setting) or
        those of largest summed ``|grad|`` (``'gradient'``). Regrown pieces
        and their optimizer moments start at zero.

        Args:
            prune_rate (float): Fraction of active pieces moved.
            growth (str): ``'random'`` or ``'gradient'``.
            generator (torch.Generator): CPU generator.
            grads (dict[str, torch.Tensor], optional): Dense gradients for
                ``'gradient'`` growth.
            optimizer (torch.optim.Optimizer, optional): Its moments are
                zeroed at regrown pieces.

        Returns:
            dict[str, tuple[int, int]]: ``(pruned, regrown)`` pieces.

        Raises:
            ValueError: For an unknown ``growth`` or missing gradients.
        """
        if growth not in ('random', 'gradient'):
            raise ValueError(f"`growth` must be 'random' or 'gradient', got "
                             f'{growth!r}.')
        moved = OrderedDict()
        for name, mask in self.masks.items():
            param = self.params[name]
            unit = mask.flatten(1).any(1)
            active = int(unit.sum())
            num = min(int(math.ceil(prune_rate * active)), active)
            if num == 0:
                moved[name] = (0, 0)
                continue
            score = param.detach().abs().flatten(1).sum(1).float()
            score[~unit] = float('inf')
            unit[torch.topk(score, num, largest=False).indices] = False
            if growth == 'random':
                inactive = (~unit).nonzero().view(-1)
                order = torch.randperm(inactive.numel(), generator=generator)
                grown = inactive[order[:num].to(inactive.device)]
            else:
                if grads is None or name not in grads:
                    raise ValueError(f"growth='gradient' needs the "
                                     f'gradient of {name!r}.')
                gscore = grads[name].detach().abs().flatten(1).sum(1).float()
                gscore[unit] = -float('inf')
                grown = torch.topk(gscore, num).indices
            unit[grown] = True
            mask.copy_(self._expand(unit, param))
            param[grown] = 0.
            if optimizer is not None:
                state = optimizer.state.get(param, {})
                for key in MASKED_STATE_KEYS:
                    value = state.get(key)
                    if torch.is_tensor(value) and value.shape == mask.shape:
                        value[grown] = 0.
            moved[name] = (num, int(grown.numel()))
        self.apply(optimizer)
        return moved
