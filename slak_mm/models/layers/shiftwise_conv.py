"""The shift-wise convolution (SW) of ShiftwiseConv (arXiv 2401.12736).

A ``K x K`` depthwise kernel emulated by small ``k x k`` kernels and
shifts. The official implementation (lidc54/shift-wiseConv,
``backbones/SW_v1_slak.py`` / ``SW_v2_unirep.py``, class
``ShifthWiseConv2dImplicit``, with the CUDA op of
``shiftadd/ops/src/addshift_kernel_vmp.cu``) scatters the pieces with
atomic adds on the GPU. Here every shifted sum is rewritten as one
depthwise convolution with a strip kernel assembled from the pieces, which
is exact, differentiable with plain autograd and runs on any device; on
CPU the two strip convs take SLaK's fast path
(:func:`~slak_mm.ops.depthwise_conv2d_same`).
``docs/shiftwise.md`` gives the derivation, ``docs/speed.md`` the timings.
"""
import math
from typing import Optional

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule

from slak_mm.ops import depthwise_conv2d_same
from slak_mm.registry import MODELS
from .utils import check_mixer_sizes, check_positive_int

#: How the channels are split into ghost and rep channels, per official
#: backbone: ``'v1'``: ``ghost = int(C * ratio)``; ``'v2'``:
#: ``rep = int(C * (1 - ratio)) // 2 * 2`` (an even number of rep channels).
GHOST_SPLITS = ('v1', 'v2')


def split_ghost_channels(channels: int,
                         ghost_ratio: float,
                         ghost_split: str = 'v1',
                         seed: int = 123):
    """Draw the ghost / rep channel split of a shift-wise conv.

    The ghost channels are ``numpy``'s ``choice(channels, n_ghost,
    replace=False)`` of a ``RandomState(seed)``, sorted; the rep channels
    are the others, sorted. With the default seed this is the official
    split (which reseeds numpy's global generator with 123 in every
    layer); here a private ``RandomState`` leaves the global state alone.

    Args:
        channels (int): Number of channels ``C``.
        ghost_ratio (float): Fraction of ghost channels, in ``[0, 1)``.
        ghost_split (str): ``'v1'`` (``n_ghost = int(C * ratio)``, SW-v1)
            or ``'v2'`` (``n_rep = int(C * (1 - ratio)) // 2 * 2``, SW-v2).
            Defaults to ``'v1'``.
        seed (int): Seed of the private generator. Defaults to 123.

    Returns:
        tuple[torch.Tensor, torch.Tensor]: ``(rep, ghost)`` channel
        indices (int64), each sorted.

    Raises:
        ValueError: For a bad ratio or split, or no rep channel left.
    """
    if ghost_split not in GHOST_SPLITS:
        raise ValueError(f'`ghost_split` must be one of {GHOST_SPLITS}, got '
                         f'{ghost_split!r}.')
    if not isinstance(ghost_ratio, (int, float)) or isinstance(
            ghost_ratio, bool) or not 0 <= ghost_ratio < 1:
        raise ValueError('`ghost_ratio` must be a float in [0, 1), got '
                         f'{ghost_ratio!r}.')
    if ghost_split == 'v1':
        n_ghost = int(channels * ghost_ratio)
    else:
        n_ghost = channels - int(channels * (1 - ghost_ratio)) // 2 * 2
    if channels - n_ghost < 1:
        raise ValueError(
            f'`channels`={channels} with `ghost_ratio`={ghost_ratio} and '
            f'`ghost_split`={ghost_split!r} leaves no rep channel.')
    rng = np.random.RandomState(seed)
    ghost = sorted(rng.choice(channels, n_ghost, replace=False).tolist())
    ghost_set = set(ghost)
    rep = [c for c in range(channels) if c not in ghost_set]
    return (torch.tensor(rep, dtype=torch.long),
            torch.tensor(ghost, dtype=torch.long))


def draw_shift_indices(rep_channels: int, num_pieces: int, num_reps: int,
                       generator: torch.Generator):
    """Draw the random piece orders of the shifted sums.

    The draw order is the official one (``AddShift_mp_module.
    shuffle_idx_2_gen_pads``): ``num_reps`` groups of one ``randperm``
    per rep channel for the horizontal branch, the same for the vertical
    branch, then ``num_reps`` draws of ``randint(0, nk, [rep_channels])``
    for the small branch; with a generator seeded 123 the indices equal
    the official ones (which reseed torch's global generator with 123).

    Args:
        rep_channels (int): Number of rep channels ``R``.
        num_pieces (int): Pieces per rep channel ``nk``.
        num_reps (int): Number of groups ``N_rep``.
        generator (torch.Generator): Private CPU generator.

    Returns:
        tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ``order_h`` and
        ``order_v`` of shape ``(N_rep, R, nk)``, where ``order[g, r, t]``
        is the piece of channel ``r`` placed at slot ``t`` (shift index
        ``t``) in group ``g``, and ``small_index`` of shape ``(N_rep, R)``,
        the piece of channel ``r`` used unshifted in group ``g``.
    """

    def perms():
        return torch.stack([
            torch.stack([
                torch.randperm(num_pieces, generator=generator)
                for _ in range(rep_channels)
            ]) for _ in range(num_reps)
        ])

    order_h = perms()
    order_v = perms()
    small_index = torch.stack([
        torch.randint(0, num_pieces, (rep_channels, ), generator=generator)
        for _ in range(num_reps)
    ])
    return order_h, order_v, small_index


@MODELS.register_module()
class ShiftwiseConv(BaseModule):
    """Shift-wise convolution: a large depthwise kernel from small pieces.

    The operator of `ShiftwiseConv: Small Convolutional Kernel with Large
    Kernel Effect <https://arxiv.org/abs/2401.12736>`_ (Sec. 3), exact to
    the official ``ShifthWiseConv2dImplicit`` (lidc54/shift-wiseConv):

    1. The ``C`` input channels are split into ``R`` rep channels and
       ``C - R`` ghost channels (fraction ``ghost_ratio``, see
       :func:`split_ghost_channels`); ghost channels pass unchanged.
    2. ``num_paths`` grouped ``k x k`` convs (``paths``, each
       ``Conv2d(R, R * nk, k, groups=R, bias=False)``) are summed: every
       rep channel ``r`` gets ``nk = ceil(K / k)`` pieces (output channels
       ``r * nk ... r * nk + nk - 1``).
    3. Horizontal branch: in each of ``num_reps`` groups, the piece at slot
       ``t`` of a random per-channel order (:func:`draw_shift_indices`) is
       shifted by ``K // 2 - t * k - k // 2`` columns (official offset
       ``K // 2 - t * k - (k - 1)`` of the ``(k - 1)``-padded piece) and
       all are summed. Vertical branch: the same along rows, with its own
       orders. Small branch: one random piece per group, unshifted.
    4. ``out_rep = BN_h(h) + BN_v(v) + BN_small(s) + x_rep``; the output is
       ``cat([out_rep, x_ghost], dim=1)`` -- the official order, so output
       channel ``i < R`` is input channel ``rep_index[i]`` and the ghost
       channels follow (the channel order differs from the input's).

    The horizontal sum equals a depthwise conv of ``x_rep`` with a
    ``(k, nk * k)`` strip kernel whose column block ``t`` is
    ``sum_g piece[order_h[g, r, t]]``, anchored at column ``K // 2``
    (padding ``K // 2`` left, ``nk * k - 1 - K // 2`` right); the vertical
    sum is the transposed case and the small branch a ``k x k`` conv of
    ``sum_g piece[small_index[g, r]]``. So the pieces receive gradients by
    ordinary autograd.

    **Fast path** (``fast_path=True``): the two strip convs are run by
    :func:`~slak_mm.ops.depthwise_conv2d_same`
    with the strip zero-padded on its short side (``nk * k - K`` columns /
    rows before it) into a centred ``(k, 2 * a + 1)`` / ``(2 * a + 1, k)``
    kernel, ``a = nk * k - 1 - K // 2``; the result is the same (the zeros
    add nothing; the gradient of the padding is dropped). On CPU (float32 /
    float64, no autocast, not under ``torch.jit``) the wide horizontal strip
    then runs as the tall conv of the transposed input, and both strips get
    the faster weight gradient: forward + backward of the layer are
    1.9-4.4x faster for SW-T shapes on one thread (``docs/speed.md``).
    Elsewhere (CUDA) it is a plain ``F.conv2d`` with "same" padding.
    First-order gradients only; ``fast_path=False`` gives the plain
    explicit-padding convs (double backward).

    All random indices are persistent buffers (``rep_index``,
    ``ghost_index``, ``order_h``, ``order_v``, ``small_index``), saved in and
    restored from the ``state_dict`` (the official code keeps them as plain
    attributes, so a reloaded model redraws them), and drawn from private
    generators seeded by ``seed``: the global numpy / torch RNG states are
    untouched. ``seed=123`` reproduces the official indices.

    Official parameter names map as ``LoRAs.{p}`` -> ``paths.{p}``,
    ``bn_lora1`` -> ``norm_h``, ``bn_lora2`` -> ``norm_v``, ``bn_small``
    -> ``norm_small``.

    Args:
        channels (int): Input and output channels ``C``.
        kernel_size (int): Emulated large kernel size ``K`` (odd, ``>= k``).
        small_kernel_size (int): Piece size ``k`` (odd). Defaults to 3.
        ghost_ratio (float): Fraction of ghost channels, in ``[0, 1)``.
            Defaults to 0.23.
        num_paths (int): ``N_path``, summed grouped convs. Defaults to 2.
        num_reps (int): ``N_rep``, groups of random shift orders.
            Defaults to 4.
        ghost_split (str): Rounding of the split, ``'v1'`` or ``'v2'``
            (:func:`split_ghost_channels`). Defaults to ``'v1'``.
        norm_cfg (dict, optional): Norm of each branch; None for none (the
            official ``bn=False``). Defaults to ``dict(type='BN')``.
        seed (int): Seed of the random indices. Defaults to 123.
        fast_path (bool): Run the strip convs through
            ``depthwise_conv2d_same`` (see above). Outputs and gradients
            are the same within rounding. Defaults to True.
        init_cfg (dict, optional): Initialization config.

    Raises:
        ValueError: For non-positive or even sizes, ``kernel_size <
            small_kernel_size``, bad counts, ratio or split.

    Shape:
        ``(N, C, H, W) -> (N, C, H, W)`` (channels reordered as above).
    """

    def __init__(self,
                 channels: int,
                 kernel_size: int,
                 small_kernel_size: int = 3,
                 ghost_ratio: float = 0.23,
                 num_paths: int = 2,
                 num_reps: int = 4,
                 ghost_split: str = 'v1',
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 seed: int = 123,
                 fast_path: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        check_mixer_sizes(channels, kernel_size, small_kernel_size)
        check_positive_int('num_paths', num_paths)
        check_positive_int('num_reps', num_reps)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f'`seed` must be an int, got {seed!r}.')
        self.channels = channels
        self.kernel_size = kernel_size
        self.small_kernel_size = small_kernel_size
        self.ghost_ratio = ghost_ratio
        self.num_paths = num_paths
        self.num_reps = num_reps
        self.ghost_split = ghost_split
        self.seed = seed
        self.fast_path = bool(fast_path)
        self.num_pieces = math.ceil(kernel_size / small_kernel_size)

        rep, ghost = split_ghost_channels(channels, ghost_ratio, ghost_split,
                                          seed)
        self.rep_channels = int(rep.numel())
        generator = torch.Generator(device='cpu')
        generator.manual_seed(seed)
        order_h, order_v, small_index = draw_shift_indices(
            self.rep_channels, self.num_pieces, num_reps, generator)
        self.register_buffer('rep_index', rep)
        self.register_buffer('ghost_index', ghost)
        self.register_buffer('order_h', order_h)
        self.register_buffer('order_v', order_v)
        self.register_buffer('small_index', small_index)

        r, k = self.rep_channels, small_kernel_size
        # Official padding k - 1; here the strip convs pad themselves. The
        # default (kaiming-uniform) init of nn.Conv2d is drawn from the
        # private generator as well, so that construction leaves the
        # global RNG state unchanged.
        self.paths = nn.ModuleList()
        for _ in range(num_paths):
            conv = torch.nn.utils.skip_init(
                nn.Conv2d,
                r,
                r * self.num_pieces,
                k,
                padding=k // 2,
                groups=r,
                bias=False)
            nn.init.kaiming_uniform_(
                conv.weight, a=math.sqrt(5), generator=generator)
            self.paths.append(conv)
        self.with_norm = norm_cfg is not None
        if self.with_norm:
            self.norm_h = build_norm_layer(norm_cfg, r)[1]
            self.norm_v = build_norm_layer(norm_cfg, r)[1]
            self.norm_small = build_norm_layer(norm_cfg, r)[1]
        else:
            self.norm_h = self.norm_v = self.norm_small = nn.Identity()

    # ------------------------------------------------------------------
    def pieces(self) -> torch.Tensor:
        """The summed pieces, ``(R, nk, k, k)``."""
        weight = self.paths[0].weight
        for path in self.paths[1:]:
            weight = weight + path.weight
        k = self.small_kernel_size
        return weight.reshape(self.rep_channels, self.num_pieces, k, k)

    def strip_kernels(self):
        """Assemble the branch kernels from the pieces.

        Returns:
            tuple[torch.Tensor, torch.Tensor, torch.Tensor]: depthwise
            weights of the horizontal ``(R, 1, k, nk * k)``, vertical
            ``(R, 1, nk * k, k)`` and small ``(R, 1, k, k)`` branches.
        """
        pieces = self.pieces()
        r, nk, k = self.rep_channels, self.num_pieces, self.small_kernel_size
        channel = torch.arange(r, device=pieces.device)
        # (N_rep, R, nk, k, k) -> sum over groups -> (R, nk, k, k)
        slots_h = pieces[channel.view(1, r, 1), self.order_h].sum(0)
        slots_v = pieces[channel.view(1, r, 1), self.order_v].sum(0)
        small = pieces[channel.view(1, r), self.small_index].sum(0)
        # slot t occupies columns (rows) t * k ... t * k + k - 1
        kernel_h = slots_h.permute(0, 2, 1, 3).reshape(r, 1, k, nk * k)
        kernel_v = slots_v.reshape(r, 1, nk * k, k)
        return kernel_h, kernel_v, small.unsqueeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the shift-wise conv.

        Args:
            x (torch.Tensor): ``(N, C, H, W)``.

        Returns:
            torch.Tensor: ``(N, C, H, W)``: the ``R`` rep channels (in
            ``rep_index`` order) then the ghost channels.
        """
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f'Expected input (N, {self.channels}, H, W), got '
                             f'{tuple(x.shape)}.')
        x_rep = x.index_select(1, self.rep_index)
        x_ghost = x.index_select(1, self.ghost_index)
        kernel_h, kernel_v, kernel_s = self.strip_kernels()
        r, k = self.rep_channels, self.small_kernel_size
        # the strips are anchored at column (row) K // 2: `before` taps
        # precede the anchor and `after >= before` follow it
        before = self.kernel_size // 2
        after = self.num_pieces * k - 1 - before
        if self.fast_path:
            # centre the strips with after - before leading zeros
            lead = after - before
            horizontal = depthwise_conv2d_same(
                x_rep,
                F.pad(kernel_h, (lead, 0)) if lead else kernel_h)
            vertical = depthwise_conv2d_same(
                x_rep,
                F.pad(kernel_v, (0, 0, lead, 0)) if lead else kernel_v)
        else:
            horizontal = F.conv2d(
                F.pad(x_rep, (before, after, k // 2, k // 2)),
                kernel_h,
                groups=r)
            vertical = F.conv2d(
                F.pad(x_rep, (k // 2, k // 2, before, after)),
                kernel_v,
                groups=r)
        small = F.conv2d(x_rep, kernel_s, padding=k // 2, groups=r)
        out = self.norm_h(horizontal) + self.norm_v(vertical) + \
            self.norm_small(small) + x_rep
        return torch.cat([out, x_ghost], dim=1)

    @torch.no_grad()
    def merge_paths(self) -> None:
        """Sum the ``num_paths`` convs into one (the official
        ``merge_branches``); outputs are unchanged. Idempotent."""
        if len(self.paths) == 1:
            return
        merged = self.paths[0]
        merged.weight.copy_(self.pieces().reshape_as(merged.weight))
        self.paths = nn.ModuleList([merged])
        self.num_paths = 1

    def switch_to_deploy(self) -> None:
        """The deploy form (mmpretrain's re-parameterization name, called by
        the backbones' ``switch_to_deploy``): :meth:`merge_paths`."""
        self.merge_paths()

    def extra_repr(self) -> str:
        return (f'channels={self.channels}, kernel_size={self.kernel_size}, '
                f'small_kernel_size={self.small_kernel_size}, '
                f'rep_channels={self.rep_channels}, '
                f'num_pieces={self.num_pieces}, num_paths={self.num_paths}, '
                f'num_reps={self.num_reps}, seed={self.seed}, '
                f'fast_path={self.fast_path}')
