"""Analysis helpers behind tools/analysis/*: complexity, ERF."""
from .complexity import complexity, count_parameters, sparse_flops
from .erf import erf_contribution, erf_heatmap, high_contribution_area_ratios

__all__ = [
    'complexity', 'count_parameters', 'sparse_flops', 'erf_contribution',
    'erf_heatmap', 'high_contribution_area_ratios'
]
