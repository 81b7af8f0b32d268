"""Effective receptive field (ERF) of a backbone, the method of RepLKNet
(Ding et al., CVPR 2022, Sec. 5) that SLaK uses in its Fig. 3/4."""
from typing import Dict, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def erf_contribution(backbone: nn.Module, image: torch.Tensor,
                     out_index: int = -1) -> np.ndarray:
    """Contribution of every input pixel to the central output pixel.

    The sum over channels of the ReLU of the (ReLU-ed) central feature of
    output ``out_index`` is back-propagated to the input; the result is the
    ReLU of the input gradient summed over input channels.

    Args:
        backbone (nn.Module): Returns a tuple of ``(N, C, h, w)`` maps.
        image (torch.Tensor): One normalised image ``(1, 3, H, W)``.
        out_index (int): Which output of the backbone. Defaults to -1.

    Returns:
        np.ndarray: ``(H, W)`` non-negative contributions.
    """
    image = image.clone().requires_grad_(True)
    out = backbone(image)[out_index]
    if out.ndim != 4:
        raise ValueError('the backbone must return (N, C, h, w) maps; set '
                         'gap_before_final_norm=False, got shape '
                         f'{tuple(out.shape)}.')
    h, w = out.shape[-2:]
    central = F.relu(out[:, :, h // 2, w // 2]).sum()
    (grad, ) = torch.autograd.grad(central, image)
    return F.relu(grad).sum(dim=(0, 1)).cpu().numpy()


def high_contribution_area_ratios(
        matrix: np.ndarray,
        thresholds: Sequence[float] = (0.2, 0.3, 0.5, 0.99)
) -> Dict[float, float]:
    """Area ratio of the smallest centred square holding a given fraction
    of the total contribution (RepLKNet's "high-contribution area ratio";
    smaller = contributions concentrated near the centre).

    Args:
        matrix (np.ndarray): ``(H, W)`` aggregated contributions.
        thresholds (Sequence[float]): Fractions in (0, 1].

    Returns:
        dict[float, float]: Area ratio per threshold, in (0, 1].
    """
    h, w = matrix.shape
    total = float(matrix.sum())
    ch, cw = h // 2, w // 2
    ratios = {}
    for t in thresholds:
        ratio = 1.0
        if total > 0:
            for r in range(0, max(h, w)):
                window = matrix[max(ch - r, 0):ch + r + 1,
                                max(cw - r, 0):cw + r + 1]
                if window.sum() >= t * total:
                    ratio = window.size / matrix.size
                    break
        ratios[t] = ratio
    return ratios


def erf_heatmap(matrix: np.ndarray) -> np.ndarray:
    """``log10(x + 1)`` scaled to [0, 1], the display of RepLKNet/SLaK."""
    data = np.log10(matrix + 1)
    peak = data.max()
    return data / peak if peak > 0 else data
