"""Weight masks and the prune / regrow step of dynamic sparse training."""
import hashlib
import math
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn

from .density import DENSE_THRESHOLD
from .selection import group_of

#: Optimizer state entries masked by default after every step: the official
#: ``Masking.apply_mask`` masks SGD's momentum only (SLaK ``sparse_core.py``
#: 300-302, 322-328); Adam's moments keep accumulating.
OFFICIAL_STATE_KEYS = ('momentum_buffer', )
#: All per-parameter moments (option ``mask_optimizer_state=True``): stale
#: moments then never move a masked or just regrown weight.
MASKED_STATE_KEYS = ('exp_avg', 'exp_avg_sq', 'max_exp_avg_sq',
                     'momentum_buffer')
#: Regrowth rules: ``'random'`` (official: each inactive unit with
#: probability ``removed / inactive``), ``'random_exact'`` (exactly
#: ``removed`` units, uniformly) and ``'gradient'`` (largest ``|grad|``).
GROWTH_MODES = ('random', 'random_exact', 'gradient')


class SparseMasking:
    """Binary masks over named weights, with SLaK's prune / regrow update.

    The masks are boolean tensors of the weights' shapes, on their device.
    Prune / regrow act on *units*: single weights here, whole ``k x k``
    pieces in :class:`~slak_mm.sparse.shiftwise.PieceSparseMasking` (which
    only redefines :meth:`unit_scores` and :meth:`expand_units`).
    Everything that draws random numbers takes a :class:`torch.Generator`,
    so processes that use the same seed make bit-identical decisions without
    communication.

    Weights can form *groups* that share one mask (:meth:`set_groups`; the
    ShiftwiseConv paths of a layer): one density per group, the leader's
    random mask copied to the members, and a *sync* update that prunes the
    leader on the members' summed magnitudes and copies its mask again.
    With the default one-weight groups these reduce to the plain
    behaviour.

    The defaults reproduce the official SLaK ``Masking`` (``sparse_core.py``,
    ``funcs.py``); the other settings are documented options.

    Args:
        model (nn.Module): The unwrapped model (not the DDP wrapper).
        names (list[str]): The candidate weights (see
            :func:`select_sparse_weights`).
        mask_optimizer_state (bool): ``False`` (official): after each step
            only SGD's ``momentum_buffer`` is masked. ``True``: Adam's
            moments too (:data:`MASKED_STATE_KEYS`), and regrown units start
            with zero moments.
        zero_regrown (bool): ``False`` (official): a regrown weight keeps
            its current value (0, or its old value when it was pruned and
            regrown in the same update). ``True``: regrown weights start at
            0.

    Raises:
        KeyError: If a name is not a parameter of ``model``.
    """

    def __init__(self,
                 model: nn.Module,
                 names: List[str],
                 mask_optimizer_state: bool = False,
                 zero_regrown: bool = False) -> None:
        params = dict(model.named_parameters())
        missing = [n for n in names if n not in params]
        if missing:
            raise KeyError(f'not parameters of the model: {missing[:5]}')
        self.params = OrderedDict((n, params[n]) for n in names)
        self.masks: Dict[str, torch.Tensor] = OrderedDict()
        self.mask_optimizer_state = mask_optimizer_state
        self.state_keys = MASKED_STATE_KEYS if mask_optimizer_state \
            else OFFICIAL_STATE_KEYS
        self.zero_regrown = zero_regrown
        #: ``{leader: [leader, follower, ...]}``: weights that share one
        #: mask (ShiftwiseConv paths); by default every weight alone.
        self.groups: Dict[str, List[str]] = OrderedDict(
            (n, [n]) for n in names)

    # ------------------------------------------------------------------
    # units
    # ------------------------------------------------------------------
    @staticmethod
    def unit_scores(score: torch.Tensor) -> torch.Tensor:
        """Reduce an element-wise score of a weight to one value per unit,
        ``(U,)``; here a unit is one weight, ``U = numel``."""
        return score.reshape(-1)

    @staticmethod
    def expand_units(unit_mask: torch.Tensor,
                     param: torch.Tensor) -> torch.Tensor:
        """Element mask of ``param``'s shape from a ``(U,)`` unit mask."""
        return unit_mask.view_as(param).clone()

    def num_units(self, name: str) -> int:
        """Number of units of weight ``name``."""
        return self.unit_scores(self.params[name].detach()).numel()

    def unit_mask(self, name: str) -> torch.Tensor:
        """The ``(U,)`` unit mask of a masked weight (a copy)."""
        mask = self.masks[name]
        return self.unit_scores(mask.float()).reshape(-1) > 0

    # ------------------------------------------------------------------
    # groups
    # ------------------------------------------------------------------
    def set_groups(self, groups: Dict[str, List[str]]) -> None:
        """Weights that share one mask, ``{leader: [leader, ...]}``.

        Raises:
            ValueError: If the groups do not cover every weight once, or
                the members of a group differ in shape.
        """
        members = [n for group in groups.values() for n in group]
        if sorted(members) != sorted(self.params):
            raise ValueError('the mask groups must cover every sparse '
                             'weight exactly once.')
        for leader, group in groups.items():
            shapes = {tuple(self.params[n].shape) for n in group}
            if group[0] != leader or len(shapes) != 1:
                raise ValueError(f'group {leader!r} must start with its '
                                 'leader and hold weights of one shape, '
                                 f'got {group} with shapes {sorted(shapes)}.')
        self.groups = OrderedDict(groups)

    def group_scores(
            self, scores: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """The scores of a group's members concatenated (flat), keyed by
        the leader (the official SW SNIP pools the ``(piece, path)`` scores
        of a layer)."""
        return OrderedDict(
            (leader, torch.cat([scores[n].reshape(-1) for n in members]))
            for leader, members in self.groups.items())

    def expand_group_values(self, values: Dict[str, float]
                            ) -> Dict[str, float]:
        """A value per group leader -> the same value for every member."""
        return OrderedDict((n, values[leader])
                           for leader, members in self.groups.items()
                           for n in members)

    def _share(self, leader: str) -> None:
        """Copy the leader's mask to the other members (or drop theirs if
        the leader is dense)."""
        for name in self.groups[leader][1:]:
            if leader in self.masks:
                self.masks[name] = self.masks[leader].clone()
            else:
                self.masks.pop(name, None)

    # ------------------------------------------------------------------
    # initialisation
    # ------------------------------------------------------------------
    def init_random(self, densities: Dict[str, float],
                    generator: torch.Generator) -> None:
        """Random masks with exactly ``round(d * U)`` active units per
        group leader, copied to the other members. Weights with density
        ``>= 0.99`` stay dense (no mask), as in SLaK.

        Args:
            densities (dict[str, float]): Density per candidate weight (the
                leader's counts for its group).
            generator (torch.Generator): CPU generator (shared seed).
        """
        self.masks.clear()
        for name in self.groups:
            param = self.params[name]
            density = densities[name]
            if density >= DENSE_THRESHOLD:
                continue
            units = self.num_units(name)
            keep = int(round(density * units))
            unit = torch.zeros(units, dtype=torch.bool)
            unit[torch.randperm(units, generator=generator)[:keep]] = True
            self.masks[name] = self.expand_units(unit, param).to(
                param.device)
        for leader in self.groups:
            self._share(leader)

    def init_from_weights(self) -> None:
        """Masks from the zero pattern of the current weights (fixed-mask
        fine-tuning of a sparse pretrained model). Weights that are at
        least 99% non-zero stay dense."""
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
            ValueError: If a mask's shape differs from its weight's, or it
                is not constant over the units.
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
            mask = mask.to(device=param.device, dtype=torch.bool)
            if not torch.equal(
                    self.expand_units(
                        self.unit_scores(mask.float()).reshape(-1) > 0,
                        param), mask):
                raise ValueError(f'mask {name!r} is not constant over the '
                                 f'units of {type(self).__name__}.')
            self.masks[name] = mask

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
        """Zero masked weights and their optimizer state entries
        (``momentum_buffer`` only, or all moments with
        ``mask_optimizer_state=True``).

        Args:
            optimizer (torch.optim.Optimizer, optional): The optimizer.
        """
        for name, mask in self.masks.items():
            param = self.params[name]
            param.mul_(mask)
            if optimizer is None:
                continue
            state = optimizer.state.get(param, {})
            for key in self.state_keys:
                value = state.get(key)
                if torch.is_tensor(value) and value.shape == mask.shape:
                    value.mul_(mask)

    # ------------------------------------------------------------------
    # dynamic sparse training
    # ------------------------------------------------------------------
    def _grow(self, name: str, unit: torch.Tensor, num: int, growth: str,
              generator: torch.Generator,
              grads: Optional[Dict[str, torch.Tensor]]) -> torch.Tensor:
        """Indices of the inactive units of ``unit`` that regrow."""
        inactive = (~unit).nonzero().view(-1)
        if growth == 'random':
            # official funcs.py random_growth: every inactive unit (the just
            # pruned ones included) with probability removed / inactive
            draw = torch.rand(unit.numel(), generator=generator)
            prob = num / max(inactive.numel(), 1)
            return inactive[(draw.to(unit.device)[inactive] < prob)]
        if growth == 'random_exact':
            order = torch.randperm(inactive.numel(), generator=generator)
            return inactive[order[:num].to(inactive.device)]
        if grads is None or name not in grads:
            raise ValueError(f"growth='gradient' needs the gradient of "
                             f'{name!r}.')
        score = self.unit_scores(grads[name].detach().abs().float())
        score = score.reshape(-1).clone()
        score[unit] = -float('inf')
        return torch.topk(score, min(num, inactive.numel())).indices

    @torch.no_grad()
    def prune_and_regrow(
        self,
        prune_rate: float,
        growth: str,
        generator: torch.Generator,
        grads: Optional[Dict[str, torch.Tensor]] = None,
        optimizer: Optional[torch.optim.Optimizer] = None,
        sync: bool = False
    ) -> Dict[str, Tuple[int, int]]:
        """One SLaK mask update, weight by weight (or group by group).

        Prune the ``ceil(prune_rate * active)`` active units of smallest
        magnitude (``|w|``, summed over the unit; official
        ``magnitude_death``: the ``inactive + ceil(rate * active)`` smallest
        units of the tensor become inactive), then regrow inactive units
        (the just-pruned ones included): ``'random'`` (official
        ``random_growth``: each inactive unit with probability
        ``pruned / inactive``, so the count varies around ``pruned``),
        ``'random_exact'`` (exactly ``pruned``, uniformly) or
        ``'gradient'`` (the ``pruned`` largest ``|grad|``). Finally the
        masks are applied (:meth:`apply`).

        A plain update treats every weight alone, group members included
        (the official SW paths drift apart between syncs). A *sync* update
        (official SW ``rep_coarse``, every ``sparse_gap``-th update) prunes
        each group leader on its members' summed ``|w|`` (and regrows on
        their summed ``|grad|``), then copies its mask to the members; for
        one-weight groups it equals a plain update.

        Args:
            prune_rate (float): Fraction of active units moved, in [0, 1].
            growth (str): One of :data:`GROWTH_MODES`.
            generator (torch.Generator): CPU generator for random growth.
            grads (dict[str, torch.Tensor], optional): Dense gradients, for
                ``growth='gradient'``.
            optimizer (torch.optim.Optimizer, optional): Its state is
                masked (see :meth:`apply`); with ``mask_optimizer_state``
                the moments of regrown units are zeroed too.
            sync (bool): A sync update of the groups. Defaults to False.

        Returns:
            dict[str, tuple[int, int]]: ``(pruned, regrown)`` units per
            updated weight (per group leader for a sync).

        Raises:
            ValueError: For an unknown ``growth`` or missing gradients.
        """
        if growth not in GROWTH_MODES:
            raise ValueError(f'`growth` must be one of {GROWTH_MODES}, got '
                             f'{growth!r}.')
        if sync:
            names = [n for n in self.groups if n in self.masks]
            members = {n: self.groups[n] for n in names}
        else:
            names = list(self.masks)
            members = {n: [n] for n in names}
        if growth == 'gradient' and sync and grads is not None:
            grads = {
                n: sum(grads[m].abs() for m in members[n] if m in grads)
                for n in names
            }
        moved = OrderedDict()
        for name in names:
            param = self.params[name]
            unit = self.unit_mask(name)
            active = int(unit.sum())
            num = min(int(math.ceil(prune_rate * active)), active)
            if num == 0:
                moved[name] = (0, 0)
                continue
            # official magnitude death: the (inactive + num) smallest units
            # of the whole tensor become inactive; inactive units of score
            # 0 rank first, so exactly `num` active ones go unless inactive
            # units score above 0 (summed scores of a synced group)
            magnitude = sum(self.params[m].detach().abs()
                            for m in members[name])
            score = self.unit_scores(magnitude.float()).reshape(-1).clone()
            score[~unit & (score == 0)] = -1.
            num_inactive = unit.numel() - active
            unit[torch.topk(score, num_inactive + num,
                            largest=False).indices] = False
            removed = active - int(unit.sum())
            grown = self._grow(name, unit, removed, growth, generator, grads)
            unit[grown] = True
            self.masks[name] = self.expand_units(unit, param)
            if self.zero_regrown or self.mask_optimizer_state:
                self._reset_regrown(param, unit, grown, optimizer)
            moved[name] = (removed, int(grown.numel()))
        if sync:
            for leader in names:
                self._share(leader)
        self.apply(optimizer)
        return moved

    def _reset_regrown(self, param: torch.Tensor, unit: torch.Tensor,
                       grown: torch.Tensor,
                       optimizer: Optional[torch.optim.Optimizer]) -> None:
        """Options ``zero_regrown`` / ``mask_optimizer_state``: regrown
        weights and their moments start at zero."""
        regrown = self.expand_units(
            torch.zeros_like(unit).index_fill_(0, grown, True), param)
        if self.zero_regrown:
            param.masked_fill_(regrown, 0.)
        if not self.mask_optimizer_state or optimizer is None:
            return
        state = optimizer.state.get(param, {})
        for key in self.state_keys:
            value = state.get(key)
            if torch.is_tensor(value) and value.shape == param.shape:
                value.masked_fill_(regrown, 0.)

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
