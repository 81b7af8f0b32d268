"""Parameters and FLOPs, dense and counting only non-zero weights."""
from typing import Dict, Tuple

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer


def count_parameters(model: nn.Module) -> Tuple[int, int]:
    """Number of parameters of ``model`` and how many of them are non-zero.

    Returns:
        tuple[int, int]: ``(dense, nonzero)``.
    """
    dense = nonzero = 0
    for param in model.parameters():
        dense += param.numel()
        nonzero += int(torch.count_nonzero(param.detach()))
    return dense, nonzero


def _weights_without_flops(module: nn.Module, by_module: dict,
                           prefix: str) -> list:
    """2-D / 4-D weights of ``module`` and of its descendants that the
    analyzer did not see called (their work is counted in ``module``)."""
    weights = []
    for name, sub in module.named_modules(prefix=prefix):
        if name != prefix and by_module.get(name, 0):
            continue
        weight = getattr(sub, 'weight', None)
        if isinstance(weight, torch.Tensor) and weight.ndim in (2, 4):
            weights.append(weight)
    return weights


def sparse_flops(analyzer: FlopAnalyzer, model: nn.Module) -> int:
    """FLOPs when the multiply-adds of zero weights are skipped.

    The convention of the SLaK paper's tables: the FLOPs of each conv /
    linear layer are scaled by the density of its weight; operations
    without weights are counted in full. Work that the analyzer attributes
    to a module itself (not to a called child), e.g. a module that calls
    ``F.conv2d`` with its children's weights, is scaled by the density of
    the 2-D / 4-D weights of the module and of its uncalled descendants.

    Args:
        analyzer (FlopAnalyzer): mmengine's analyzer, already set up on
            ``model`` (multiply-adds, fvcore convention).
        model (nn.Module): The analysed module (for the weights).

    Returns:
        int: The sparse FLOPs.
    """
    by_module = analyzer.by_module()

    def visit(module: nn.Module, name: str) -> float:
        flops = by_module.get(name, 0)
        if not flops:
            return 0.
        children = list(module.named_children())
        child_names = [f'{name}.{c}' if name else c for c, _ in children]
        own = flops - sum(by_module.get(c, 0) for c in child_names)
        total = sum(
            visit(child, child_name)
            for (_, child), child_name in zip(children, child_names))
        weights = _weights_without_flops(module, by_module, name)
        numel = sum(w.numel() for w in weights)
        density = sum(int(torch.count_nonzero(w.detach()))
                      for w in weights) / numel if numel else 1.
        return total + own * density

    return int(round(visit(model, '')))


def complexity(model: nn.Module, inputs: Tuple) -> Dict[str, float]:
    """Dense and non-zero parameters and FLOPs of ``model(*inputs)``.

    Args:
        model (nn.Module): A module whose ``forward(*inputs)`` is traced.
        inputs (tuple): Its inputs, e.g. ``(torch.randn(1, 3, 224, 224),)``.

    Returns:
        dict: ``params``, ``params_nonzero``, ``flops``, ``flops_nonzero``
        (FLOPs = multiply-adds).
    """
    analyzer = FlopAnalyzer(model, inputs)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    params, params_nonzero = count_parameters(model)
    return dict(
        params=params,
        params_nonzero=params_nonzero,
        flops=int(analyzer.total()),
        flops_nonzero=sparse_flops(analyzer, model))
