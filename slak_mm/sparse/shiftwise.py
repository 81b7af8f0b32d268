"""Coarse (per-piece) sparse training of shift-wise convs, as published.

The official SW training (lidc54/shift-wiseConv, ``main.py --sparse
--sparse_type rep_coarse --sparse_gap 131 --only_L``; ``sparse_core.py``
``Masking.add_module_sum_rep``, ``init_sum_snip``, ``truncate_weights``
and ``funcs.py`` ``magnitude_prune_sum`` / ``random_growth_sum``) masks
only the grouped ``k x k`` convs of the SW layers, with ONE mask bit per
``k x k`` piece (mask shape ``(R * nk, 1, 1, 1)``):

- SNIP: one density per layer, from the mean ``|w * dL/dw|`` of every
  (piece, path) ranked globally; path 0 gets a random mask at that density,
  copied to all ``N_path`` paths;
- updates: each path alone (its ``ceil(rate * active)`` pieces of smallest
  L1 norm ``sum |w|`` pruned, random regrowth); every ``sparse_gap``-th
  update path 0 is pruned on ``sum_p |w_p|`` and its mask copied to all
  paths.

:class:`PieceSparseMasking` is a :class:`SparseMasking` whose units are
pieces and whose paths can share masks.
"""
import re
from collections import OrderedDict
from typing import Dict, List

import torch
import torch.nn as nn

from .masking import SparseMasking


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

    A :class:`SparseMasking` whose units are pieces: element masks keep the
    weights' full shape (so application, checkpoints, digests and density
    logs are unchanged) but are constant over every piece; magnitudes are
    summed over a piece (official ``magnitude_prune_sum``).

    With ``share_paths`` (the official ``rep_coarse`` mode, lidc54/
    shift-wiseConv ``sparse_core.py`` 250-282, 617-700), the ``N_path``
    convs of one ShiftwiseConv (``...paths.{p}.weight``) form a group led
    by path 0: one density per group, path 0's random mask copied to every
    path at initialisation, and a *sync* update (:meth:`prune_and_regrow`
    with ``sync=True``) prunes path 0 on ``sum_p |w_p|``, regrows it and
    copies its mask to every path. Plain updates act on each path alone.
    (The group machinery is :class:`SparseMasking`'s; this class only forms
    the groups.)

    Args:
        model (nn.Module): The unwrapped model.
        names (list[str]): 4-D weights to mask, normally
            :func:`select_shiftwise_pieces`.
        share_paths (bool): Group the paths of each layer as above.
            Defaults to False.
        **kwargs: Options of :class:`SparseMasking`.

    Raises:
        KeyError: If a name is not a parameter of ``model``.
        ValueError: If a weight is not 4-D, or shared paths differ in shape.
    """

    def __init__(self,
                 model: nn.Module,
                 names: List[str],
                 share_paths: bool = False,
                 **kwargs) -> None:
        super().__init__(model, names, **kwargs)
        for name, param in self.params.items():
            if param.dim() != 4:
                raise ValueError(f'{name!r} is not a 4-D conv weight '
                                 f'(shape {tuple(param.shape)}).')
        if share_paths:
            groups: Dict[str, List[str]] = OrderedDict()
            for name in names:
                match = re.match(r'(.*\.paths\.)(\d+)(\.weight)$', name)
                leader = f'{match.group(1)}0{match.group(3)}' \
                    if match else name
                if leader not in self.params:  # no path 0 among the names
                    leader = name
                groups.setdefault(leader, []).append(name)
            self.set_groups(groups)

    @staticmethod
    def unit_scores(score: torch.Tensor) -> torch.Tensor:
        """``(P, 1, k, k)`` -> ``(P,)``: the score summed over each piece."""
        return piece_scores(score).reshape(-1)

    @staticmethod
    def expand_units(unit_mask: torch.Tensor,
                     param: torch.Tensor) -> torch.Tensor:
        """``(P,)`` piece mask -> element mask of ``param``'s shape."""
        return unit_mask.view(-1, 1, 1, 1).expand_as(param).clone()

    def unit_masks(self) -> Dict[str, torch.Tensor]:
        """The per-piece masks, ``(P,)`` bool each (masked weights only)."""
        return OrderedDict((n, self.unit_mask(n)) for n in self.masks)
