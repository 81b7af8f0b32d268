"""Which weights sparse training masks, and how density logs group them."""
import re
from typing import List

import torch.nn as nn


def select_sparse_weights(model: nn.Module,
                          include: str = 'all',
                          prefix: str = '') -> List[str]:
    """Names of the weights that sparse training masks.

    Args:
        model (nn.Module): The (unwrapped) model.
        include (str): ``'all'``: every 2-D (linear) and 4-D (conv) weight,
            the published SLaK default; ``'large_kernels'``: only the large
            kernels of :class:`DecomposedLargeKernelConv` layers, i.e. the
            ``K x s`` / ``s x K`` strips (``branch_kxs``, ``branch_sxk``;
            or ``branch_kxk`` when not decomposed), not the ``s x s``
            branch: the official ``--only-L``, which masks the names that
            contain ``large_kernel.LoRA`` (SLaK ``sparse_core.py``
            124-127).
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
            for branch in ('branch_kxs', 'branch_sxk', 'branch_kxk'):
                conv = getattr(module, branch, None)
                if conv is None:
                    continue
                for name, param in conv.named_parameters(
                        prefix=f'{module_name}.{branch}'.lstrip('.')):
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
