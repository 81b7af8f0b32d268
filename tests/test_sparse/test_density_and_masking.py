import math

import pytest
import torch
import torch.nn as nn

from slak_mm.models import SLaK
from slak_mm.sparse import (SparseMasking, erk_densities,
                            select_sparse_weights, snip_densities,
                            uniform_densities)

SHAPES = {
    'conv': (64, 32, 3, 3),
    'dw_kxs': (32, 1, 13, 3),
    'linear': (128, 64),
    'head': (10, 128),
    'tiny': (4, 2),
}


def _numel(shape):
    return math.prod(shape)


def test_uniform():
    assert uniform_densities(SHAPES, 0.6) == {n: 0.6 for n in SHAPES}
    with pytest.raises(ValueError, match='density'):
        uniform_densities(SHAPES, 0.)


def test_erk_matches_formula_and_budget():
    density = 0.3
    result = erk_densities(SHAPES, density)
    total = sum(_numel(s) for s in SHAPES.values())
    # independent re-derivation: layers with eps * raw > 1 are dense and
    # eps is solved on the rest
    raw = {n: sum(s) / _numel(s) for n, s in SHAPES.items()}
    dense = {n for n, d in result.items() if d == 1.0}
    assert 'tiny' in dense  # 8 weights, raw (4+2)/8 = 0.75 -> dense
    sparse = [n for n in SHAPES if n not in dense]
    eps = (density * total - sum(_numel(SHAPES[n]) for n in dense)) / sum(
        raw[n] * _numel(SHAPES[n]) for n in sparse)
    for n in sparse:
        assert result[n] == pytest.approx(eps * raw[n], rel=1e-9)
        assert 0 < result[n] < 1
    kept = sum(result[n] * _numel(s) for n, s in SHAPES.items())
    assert kept == pytest.approx(density * total, rel=1e-9)
    # a layer with more inputs and outputs per weight is denser
    assert result['head'] > result['linear'] > result['conv']


def test_snip_keeps_global_density():
    torch.manual_seed(0)
    scores = {n: torch.rand(s) for n, s in SHAPES.items()}
    scores['head'] += 10  # the most sensitive layer stays dense
    densities = snip_densities(scores, 0.4)
    total = sum(_numel(s) for s in SHAPES.values())
    kept = sum(densities[n] * _numel(s) for n, s in SHAPES.items())
    assert round(kept) == round(0.4 * total)
    assert densities['head'] == 1.0
    # equals a direct global top-k count
    flat = torch.cat([s.flatten() for s in scores.values()])
    thr = torch.topk(flat, round(0.4 * total)).values[-1]
    for n, s in scores.items():
        assert densities[n] == pytest.approx(
            (s >= thr).sum().item() / s.numel())


class _Toy(nn.Module):

    def __init__(self):
        super().__init__()
        self.backbone = SLaK(
            dict(depths=[1, 1, 1, 1], channels=[8, 8, 16, 16]),
            kernel_size=[9, 7, 7, 5, 3])
        self.head = nn.Linear(20, 5)


def test_select_sparse_weights():
    model = _Toy()
    names = select_sparse_weights(model, 'all')
    params = dict(model.named_parameters())
    assert 'head.weight' in names and 'head.bias' not in names
    assert all(params[n].ndim in (2, 4) for n in names)
    assert 'backbone.stages.0.0.large_kernel.branch_kxs.conv.weight' in names
    assert 'backbone.stages.0.0.pointwise_conv1.weight' in names
    lk = select_sparse_weights(model, 'large_kernels')
    assert len(lk) == 4 * 3
    assert all('large_kernel.branch_' in n and n.endswith('conv.weight')
               for n in lk)
    assert select_sparse_weights(model, 'all', prefix='head.') == [
        'head.weight'
    ]
    with pytest.raises(ValueError, match='include'):
        select_sparse_weights(model, 'convs')


def _masking(density=0.5, seed=0):
    model = _Toy()
    names = select_sparse_weights(model, 'all')
    masking = SparseMasking(model, names)
    shapes = {n: p.shape for n, p in masking.params.items()}
    masking.init_random(
        uniform_densities(shapes, density),
        torch.Generator().manual_seed(seed))
    return model, masking


def test_init_random_exact_counts_and_seed():
    _, masking = _masking(0.5)
    for name, mask in masking.masks.items():
        assert int(mask.sum()) == round(0.5 * mask.numel())
    _, same = _masking(0.5)
    _, other = _masking(0.5, seed=1)
    assert same.digest() == masking.digest() != other.digest()
    # density >= 0.99 stays dense (no mask)
    _, dense = _masking(0.995)
    assert not dense.masks


def test_prune_and_regrow_random():
    model, masking = _masking(0.5)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    masking.apply(optimizer)
    loss = sum(p.sum() for p in model.parameters())
    loss.backward()
    optimizer.step()
    masking.apply(optimizer)
    for name, mask in masking.masks.items():
        param = masking.params[name]
        assert torch.all(param[~mask] == 0)
        state = optimizer.state[param]
        assert torch.all(state['exp_avg'][~mask] == 0)
        assert torch.all(state['exp_avg_sq'][~mask] == 0)

    before = {n: m.clone() for n, m in masking.masks.items()}
    values = {n: masking.params[n].detach().clone() for n in masking.masks}
    moved = masking.prune_and_regrow(
        0.3, 'random', torch.Generator().manual_seed(3), optimizer=optimizer)
    for name, mask in masking.masks.items():
        old = before[name]
        nnz = int(old.sum())
        expected = math.ceil(0.3 * nnz)
        assert int(mask.sum()) == nnz  # layer nnz unchanged
        assert moved[name] == (expected, expected)
        # independently: the `expected` smallest active magnitudes go
        active = old.flatten().nonzero().flatten()
        order = values[name].flatten()[active].abs().argsort()
        victims = torch.zeros(old.numel(), dtype=torch.bool)
        victims[active[order[:expected]]] = True
        victims = victims.view_as(old)
        survivors = old & ~victims
        assert torch.all(mask[survivors])
        assert torch.equal(masking.params[name][survivors],
                           values[name][survivors])
        grown = mask & ~survivors  # regrown, possibly at a victim's place
        assert int(grown.sum()) == expected
        param = masking.params[name]
        assert torch.all(param[grown] == 0)
        assert torch.all(optimizer.state[param]['exp_avg'][grown] == 0)
        assert torch.all(param[~mask] == 0)


def test_prune_and_regrow_gradient():
    _, masking = _masking(0.5)
    name = 'head.weight'
    grads = {n: torch.zeros_like(p) for n, p in masking.params.items()}
    inactive = (~masking.masks[name]).nonzero()
    target = tuple(inactive[0].tolist())
    grads[name][target] = 100.
    masking.prune_and_regrow(0.02, 'gradient', torch.Generator(), grads)
    assert masking.masks[name][target]
    with pytest.raises(ValueError, match='gradient'):
        masking.prune_and_regrow(0.1, 'gradient', torch.Generator(), None)


def test_state_dict_round_trip_and_errors():
    model, masking = _masking(0.5)
    state = masking.state_dict()
    _, other = _masking(0.5, seed=5)
    other.load_state_dict(state)
    assert other.digest() == masking.digest()
    bad = dict(state)
    bad['head.weight'] = torch.ones(3, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match='shape'):
        other.load_state_dict(bad)
    with pytest.raises(KeyError, match='not a sparse weight'):
        other.load_state_dict({'nope.weight': torch.ones(1, dtype=bool)})


def test_init_from_weights():
    model, masking = _masking(0.5)
    masking.apply()
    fresh = SparseMasking(model, list(masking.params))
    fresh.init_from_weights()
    assert fresh.digest() == masking.digest()
