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
    # official --only-L: the K x s / s x K strips, not the s x s branch
    lk = select_sparse_weights(model, 'large_kernels')
    assert len(lk) == 4 * 2
    assert {n.split('.large_kernel.')[1] for n in lk} == {
        'branch_kxs.conv.weight', 'branch_sxk.conv.weight'}
    undecomposed = SLaK(
        dict(depths=[1, 1, 1, 1], channels=[8, 8, 16, 16]),
        kernel_size=[9, 7, 7, 5, 3], mixer_cfg=dict(decompose=False))
    lk = select_sparse_weights(undecomposed, 'large_kernels')
    assert len(lk) == 4 and all('branch_kxk' in n for n in lk)
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


def _trained_step(model, masking):
    """One AdamW step with dense gradients, then the masks applied."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    masking.apply(optimizer)
    loss = sum((p * torch.linspace(-1, 1, p.numel()).view_as(p)).sum()
               for p in model.parameters())
    loss.backward()
    optimizer.step()
    masking.apply(optimizer)
    return optimizer


def _official_update(mask, value, rate, generator):
    """Hand-computed official update of one weight (SLaK funcs.py
    magnitude_death + random_growth): the ceil(rate * nnz) smallest active
    |w| go, then every inactive position regrows with probability
    removed / inactive (draws in flat order); values are kept."""
    mask = mask.flatten().clone()
    value = value.flatten()
    nnz = int(mask.sum())
    num = math.ceil(rate * nnz)
    active = mask.nonzero().flatten()
    victims = active[value[active].abs().argsort()[:num]]
    mask[victims] = False
    inactive = (~mask).nonzero().flatten()
    draw = torch.rand(mask.numel(), generator=generator)
    grown = inactive[draw[inactive] < num / inactive.numel()]
    mask[grown] = True
    return mask, num, grown


def test_prune_and_regrow_official():
    model, masking = _masking(0.5)
    optimizer = _trained_step(model, masking)
    for name, mask in masking.masks.items():
        param = masking.params[name]
        assert torch.all(param[~mask] == 0)
        # official apply_mask: Adam moments are not masked
        assert torch.any(optimizer.state[param]['exp_avg'][~mask] != 0)
    before = {n: m.clone() for n, m in masking.masks.items()}
    values = {n: masking.params[n].detach().clone() for n in masking.masks}
    moments = {
        n: optimizer.state[masking.params[n]]['exp_avg'].clone()
        for n in masking.masks
    }
    generator = torch.Generator().manual_seed(3)
    moved = masking.prune_and_regrow(0.3, 'random', generator,
                                     optimizer=optimizer)
    # the same generator stream, replayed by hand layer after layer
    replay = torch.Generator().manual_seed(3)
    total_grown = total_removed = 0
    for name, mask in masking.masks.items():
        expected, removed, grown = _official_update(
            before[name], values[name], 0.3, replay)
        assert torch.equal(mask.flatten(), expected), name
        assert moved[name] == (removed, grown.numel())
        param = masking.params[name]
        # regrown weights keep their value (0, or the old value when
        # pruned and regrown at once); the others are masked
        assert torch.equal(param.flatten()[expected],
                           values[name].flatten()[expected])
        assert torch.all(param[~mask] == 0)
        assert torch.equal(optimizer.state[param]['exp_avg'], moments[name])
        total_grown += grown.numel()
        total_removed += removed
    # the Bernoulli count is right on average
    assert abs(total_grown - total_removed) < 4 * math.sqrt(total_removed)


def test_prune_and_regrow_options():
    """random_exact + zero_regrown + mask_optimizer_state: exact counts,
    regrown weights and their moments start at 0."""
    model = _Toy()
    names = select_sparse_weights(model, 'all')
    masking = SparseMasking(model, names, mask_optimizer_state=True,
                            zero_regrown=True)
    shapes = {n: p.shape for n, p in masking.params.items()}
    masking.init_random(uniform_densities(shapes, 0.5),
                        torch.Generator().manual_seed(0))
    optimizer = _trained_step(model, masking)
    for name, mask in masking.masks.items():
        state = optimizer.state[masking.params[name]]
        assert torch.all(state['exp_avg'][~mask] == 0)
        assert torch.all(state['exp_avg_sq'][~mask] == 0)
    before = {n: m.clone() for n, m in masking.masks.items()}
    moved = masking.prune_and_regrow(
        0.3, 'random_exact', torch.Generator().manual_seed(3),
        optimizer=optimizer)
    for name, mask in masking.masks.items():
        nnz = int(before[name].sum())
        expected = math.ceil(0.3 * nnz)
        assert int(mask.sum()) == nnz  # layer nnz unchanged
        assert moved[name] == (expected, expected)
        grown = mask & ~before[name]
        param = masking.params[name]
        assert torch.all(param[grown] == 0)
        assert torch.all(optimizer.state[param]['exp_avg'][grown] == 0)
        assert torch.all(param[~mask] == 0)
    with pytest.raises(ValueError, match='growth'):
        masking.prune_and_regrow(0.1, 'momentum', torch.Generator())


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
