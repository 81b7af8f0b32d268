"""Layer-wise density allocation for sparse training (ERK, uniform, SNIP)."""
from typing import Dict, Sequence

import torch

#: Layers whose allocated density reaches this value are left dense, as in
#: the official SLaK code (``sparse_core.Masking.init``).
DENSE_THRESHOLD = 0.99


def _check_density(density: float) -> None:
    if not 0. < density <= 1.:
        raise ValueError(f'density must be in (0, 1], got {density}.')


def uniform_densities(shapes: Dict[str, Sequence[int]],
                      density: float) -> Dict[str, float]:
    """The same density for every layer.

    Args:
        shapes (dict[str, Sequence[int]]): Weight shape per layer name.
        density (float): Fraction of weights kept, in (0, 1].

    Returns:
        dict[str, float]: Density per layer.
    """
    _check_density(density)
    return {name: float(density) for name in shapes}


def erk_densities(shapes: Dict[str, Sequence[int]],
                  density: float,
                  power_scale: float = 1.0) -> Dict[str, float]:
    """Erdos-Renyi-Kernel densities (Evci et al., RigL, 2020).

    Layer ``l`` gets density ``eps * (sum(shape_l) / prod(shape_l)) **
    power_scale``, e.g. ``(C_out + C_in + k_h + k_w) / (C_out C_in k_h k_w)``
    for a conv weight, with one ``eps`` chosen so that the total number of
    kept weights equals ``density * sum(numel_l)``. A layer whose density
    would exceed 1 is made dense and ``eps`` is solved again for the others
    (repeatedly, the layer with the largest raw probability first), the
    procedure of the official SLaK/RigL code.

    Args:
        shapes (dict[str, Sequence[int]]): Weight shape per layer name.
        density (float): Overall fraction of weights kept, in (0, 1].
        power_scale (float): Exponent of the raw probabilities.
            Defaults to 1.

    Returns:
        dict[str, float]: Density per layer, each in (0, 1].
    """
    _check_density(density)
    numel = {n: float(torch.Size(s).numel()) for n, s in shapes.items()}
    raw = {
        n: (float(sum(s)) / numel[n])**power_scale
        for n, s in shapes.items()
    }
    dense = set()
    while True:
        # kept = eps * sum_sparse(raw * numel) + sum_dense(numel)
        rhs = sum(density * numel[n] for n in shapes if n not in dense) - \
            sum((1 - density) * numel[n] for n in dense)
        divisor = sum(raw[n] * numel[n] for n in shapes if n not in dense)
        if divisor == 0:
            break
        eps = rhs / divisor
        sparse_names = [n for n in shapes if n not in dense]
        max_raw = max(raw[n] for n in sparse_names)
        if eps * max_raw <= 1:
            break
        dense.update(n for n in sparse_names if raw[n] == max_raw)
    return {
        n: 1.0 if n in dense else float(eps * raw[n])
        for n in shapes
    }


def snip_densities(scores: Dict[str, torch.Tensor],
                   density: float) -> Dict[str, float]:
    """Layer densities from SNIP connection sensitivities (Lee et al., 2019).

    All scores ``|w * dL/dw|`` are ranked globally and the top
    ``density * total`` are kept; a layer's density is the fraction of its
    weights among them (the allocation SLaK uses with ``--sparse_init
    snip``; the positions inside each layer are then drawn at random).

    Args:
        scores (dict[str, torch.Tensor]): SNIP score tensor per layer.
        density (float): Overall fraction of weights kept, in (0, 1].

    Returns:
        dict[str, float]: Density per layer.
    """
    _check_density(density)
    flat = torch.cat([s.detach().flatten().float() for s in scores.values()])
    num_keep = int(round(density * flat.numel()))
    if num_keep == 0:
        return {n: 0. for n in scores}
    threshold = torch.topk(flat, num_keep, sorted=True).values[-1]
    # strictly greater first, then fill the ties in order: exact count
    densities = {}
    ties_left = num_keep - int((flat > threshold).sum())
    for name, s in scores.items():
        above = int((s > threshold).sum())
        ties = int((s == threshold).sum())
        take = min(ties, ties_left)
        ties_left -= take
        densities[name] = (above + take) / s.numel()
    return densities
