"""Sparse training engine: layer-wise density allocation and masks."""
from .density import (DENSE_THRESHOLD, erk_densities, snip_densities,
                      uniform_densities)
from .masking import SparseMasking
from .selection import group_of, select_sparse_weights

__all__ = [
    'DENSE_THRESHOLD', 'erk_densities', 'snip_densities',
    'uniform_densities', 'SparseMasking', 'group_of', 'select_sparse_weights'
]
