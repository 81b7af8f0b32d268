"""Tests of the shift-wise conv (SW) and the ShiftWise backbones."""
import copy
import io
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from slak_mm.models.backbones import ShiftWiseV1, ShiftWiseV2
from slak_mm.models.layers import ShiftwiseConv
from slak_mm.registry import MODELS


# ----------------------------------------------------------------------
# an independent reference: the official scatter (addshift_kernel_vmp.cu)
# ----------------------------------------------------------------------
def _shifted(z, offset, size, dim):
    """``y[i] = z[i + offset]`` along ``dim`` for ``i < size``, zero where
    the index leaves ``z``."""
    margin = abs(offset) + size + z.shape[dim]
    pad = [0, 0, 0, 0]
    pad[0 if dim == -1 else 2] = margin
    pad[1 if dim == -1 else 3] = margin
    zp = F.pad(z, pad)
    return zp.narrow(dim, margin + offset, size)


def reference_forward(module, x):
    """The SW forward computed as the official CUDA op does: pieces from a
    ``(k - 1)``-padded grouped conv, each added at its shifted place."""
    r, nk = module.rep_channels, module.num_pieces
    k, big = module.small_kernel_size, module.kernel_size
    extra = (k - 1) - k // 2
    real_pad = [big // 2 - i * k - (k - 1) for i in range(nk)]
    weight = sum(p.weight for p in module.paths)
    x_rep = x[:, module.rep_index]
    z = F.conv2d(x_rep, weight, padding=k - 1, groups=r)
    n, _, h, w = x.shape
    outs = {}
    for branch, order in (('h', module.order_h), ('v', module.order_v)):
        acc = [x.new_zeros(n, h, w) for _ in range(r)]
        for g in range(module.num_reps):
            shuffle = (order[g] + torch.arange(r)[:, None] * nk).reshape(-1)
            inverse = torch.argsort(shuffle)
            for pc in range(r * nk):
                pad = real_pad[int(inverse[pc]) % nk]
                piece = z[:, pc]
                if branch == 'h':
                    rows = piece[:, extra:extra + h]
                    acc[pc // nk] = acc[pc // nk] + _shifted(rows, -pad, w, -1)
                else:
                    cols = piece[:, :, extra:extra + w]
                    acc[pc // nk] = acc[pc // nk] + _shifted(cols, -pad, h, -2)
        outs[branch] = torch.stack(acc, 1)
    small = [x.new_zeros(n, h, w) for _ in range(r)]
    for g in range(module.num_reps):
        for c in range(r):
            pc = c * nk + int(module.small_index[g, c])
            small[c] = small[c] + z[:, pc, extra:extra + h, extra:extra + w]
    out = module.norm_h(outs['h']) + module.norm_v(outs['v']) + \
        module.norm_small(torch.stack(small, 1)) + x_rep
    return torch.cat([out, x[:, module.ghost_index]], 1)


def _randomize(module):
    with torch.no_grad():
        for p in module.parameters():
            p.normal_()
        for name, b in module.named_buffers():
            if name.endswith('running_var'):
                b.uniform_(0.5, 2.)
            elif name.endswith('running_mean'):
                b.normal_()


CASES = [
    # channels, K, k, N_path, N_rep, ghost_split
    (7, 13, 3, 2, 4, 'v1'),
    (9, 11, 5, 1, 1, 'v2'),
    (6, 9, 3, 3, 2, 'v1'),
    (5, 7, 7, 2, 3, 'v1'),
    (8, 5, 3, 1, 2, 'v2'),
]


@pytest.mark.parametrize('channels,big,k,paths,reps,split', CASES)
@pytest.mark.parametrize('training', [False, True])
@pytest.mark.parametrize('fast_path', [True, False])
def test_strip_kernel_equals_shifted_sum(channels, big, k, paths, reps, split,
                                         training, fast_path):
    # fast_path=True: the strips run through depthwise_conv2d_same (wide
    # strip transposed, custom weight gradient); the cases include strips
    # with nk * k > K (centred with leading zeros) and nk * k == K
    torch.manual_seed(0)
    module = ShiftwiseConv(
        channels,
        big,
        k,
        num_paths=paths,
        num_reps=reps,
        ghost_split=split,
        seed=7,
        fast_path=fast_path).double()
    _randomize(module)
    module.train(training)
    reference = copy.deepcopy(module)
    x = torch.randn(2, channels, 10, 13, dtype=torch.float64)
    x1 = x.clone().requires_grad_()
    x2 = x.clone().requires_grad_()
    out = module(x1)
    expected = reference_forward(reference, x2)
    assert out.shape == x.shape
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)
    grad = torch.randn_like(out)
    (out * grad).sum().backward()
    (expected * grad).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-10, atol=1e-10)
    for p1, p2 in zip(module.parameters(), reference.parameters()):
        assert p1.grad is not None and p1.grad.abs().sum() > 0
        torch.testing.assert_close(p1.grad, p2.grad, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('big,k', [(13, 3), (11, 3), (9, 3), (5, 3)])
def test_fast_path_matches_plain_convs(big, k, monkeypatch):
    """The CPU fast path (float32 and float64) gives the outputs and
    gradients of ``fast_path=False``, and runs both strips through
    ``depthwise_conv2d_same``."""
    import slak_mm.models.layers.shiftwise_conv as sw_module
    calls = []
    original = sw_module.depthwise_conv2d_same

    def spy(x, weight, *args, **kwargs):
        calls.append(tuple(weight.shape[-2:]))
        return original(x, weight, *args, **kwargs)

    monkeypatch.setattr(sw_module, 'depthwise_conv2d_same', spy)
    for dtype, tol in ((torch.float64, 1e-10), (torch.float32, 1e-4)):
        torch.manual_seed(0)
        fast = ShiftwiseConv(12, big, k, seed=3).to(dtype).train()
        _randomize(fast)
        plain = copy.deepcopy(fast)
        plain.fast_path = False
        x = torch.randn(2, 12, 11, 14, dtype=dtype)
        outs, grads = [], []
        for module in (fast, plain):
            xi = x.clone().requires_grad_()
            out = module(xi)
            (out * torch.linspace(-1, 1, out.numel(),
                                  dtype=dtype).view_as(out)).sum().backward()
            outs.append(out)
            grads.append([xi.grad] + [p.grad for p in module.parameters()])
        torch.testing.assert_close(outs[0], outs[1], rtol=tol, atol=tol)
        for g1, g2 in zip(*grads):
            torch.testing.assert_close(g1, g2, rtol=tol, atol=tol)
    width = 2 * (math.ceil(big / k) * k - 1 - big // 2) + 1
    assert calls == [(k, width), (width, k)] * 2
    # eval / no-grad forward takes the fast path too
    with torch.no_grad():
        torch.testing.assert_close(fast.eval()(x), plain.eval()(x))
    assert 'fast_path=True' in repr(fast)


def test_backbone_passes_fast_path():
    for cls in (ShiftWiseV1, ShiftWiseV2):
        for fast_path in (True, False):
            model = cls(
                arch=TINY,
                kernel_size=[9, 7, 5, 5, 3],
                mixer_cfg=dict(fast_path=fast_path))
            convs = [
                m for m in model.modules() if isinstance(m, ShiftwiseConv)
            ]
            assert len(convs) == sum(TINY['depths'])
            assert all(m.fast_path is fast_path for m in convs)


def test_seed_123_reproduces_official_indices():
    channels, big, k, reps = 20, 13, 3, 4
    module = ShiftwiseConv(channels, big, k, num_reps=reps, seed=123)
    nk = math.ceil(big / k)
    n_ghost = int(channels * 0.23)
    state = np.random.get_state()
    try:
        np.random.seed(123)
        ghost = sorted(
            np.random.choice(channels, n_ghost, replace=False).tolist())
    finally:
        np.random.set_state(state)
    assert module.ghost_index.tolist() == ghost
    r = channels - n_ghost
    assert module.rep_index.tolist() == [
        c for c in range(channels) if c not in ghost
    ]
    with torch.random.fork_rng():
        torch.manual_seed(123)
        horizontal = [
            torch.cat([torch.randperm(nk) + i * nk for i in range(r)])
            for _ in range(reps)
        ]
        vertical = [
            torch.cat([torch.randperm(nk) + i * nk for i in range(r)])
            for _ in range(reps)
        ]
        small = [
            torch.randint(0, nk, [r]) + torch.arange(r) * nk
            for _ in range(reps)
        ]
    base = (torch.arange(r) * nk)[:, None]
    for g in range(reps):
        assert torch.equal(module.order_h[g] + base, horizontal[g].view(r, nk))
        assert torch.equal(module.order_v[g] + base, vertical[g].view(r, nk))
        assert torch.equal(module.small_index[g] + base[:, 0], small[g])


def test_v2_split_has_even_rep_channels():
    module = ShiftwiseConv(21, 7, 3, ghost_split='v2')
    assert module.rep_channels == int(21 * 0.77) // 2 * 2
    assert module.rep_channels + module.ghost_index.numel() == 21


def test_global_rng_untouched():
    torch_state = torch.random.get_rng_state()
    np_state = np.random.get_state()
    module = ShiftwiseConv(16, 13, 3, seed=5)
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    assert np.random.get_state()[1].tolist() == np_state[1].tolist()
    # the pieces are initialised (from the private generator), and the
    # same seed gives the same module
    assert module.paths[0].weight.abs().sum() > 0
    again = ShiftwiseConv(16, 13, 3, seed=5)
    for p1, p2 in zip(module.parameters(), again.parameters()):
        assert torch.equal(p1, p2)


def test_index_draw_leaves_torch_rng_alone():
    from slak_mm.models.layers.shiftwise_conv import (draw_shift_indices,
                                                      split_ghost_channels)
    state = torch.random.get_rng_state()
    np_state = np.random.get_state()
    generator = torch.Generator().manual_seed(3)
    draw_shift_indices(10, 5, 4, generator)
    split_ghost_channels(40, .23, 'v1', seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert np.random.get_state()[1].tolist() == np_state[1].tolist()


def test_buffers_round_trip_through_checkpoint():
    torch.manual_seed(0)
    module = ShiftwiseConv(12, 13, 3, seed=1).eval()
    _randomize(module)
    other = ShiftwiseConv(12, 13, 3, seed=2).eval()
    assert not torch.equal(module.order_h, other.order_h)
    keys = set(module.state_dict())
    for name in ('rep_index', 'ghost_index', 'order_h', 'order_v',
                 'small_index'):
        assert name in keys
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    buffer.seek(0)
    other.load_state_dict(torch.load(buffer))
    x = torch.randn(2, 12, 9, 9)
    torch.testing.assert_close(other(x), module(x), rtol=0, atol=0)


def test_merge_paths_keeps_output():
    torch.manual_seed(0)
    module = ShiftwiseConv(10, 9, 3, num_paths=3).double().eval()
    _randomize(module)
    x = torch.randn(1, 10, 8, 8, dtype=torch.float64)
    before = module(x)
    module.merge_paths()
    assert len(module.paths) == 1
    torch.testing.assert_close(module(x), before)


@pytest.mark.parametrize('kwargs,match', [
    (dict(channels=0, kernel_size=13), 'channels'),
    (dict(channels=8, kernel_size=12), 'kernel_size'),
    (dict(channels=8, kernel_size=13,
          small_kernel_size=4), 'small_kernel_size'),
    (dict(channels=8, kernel_size=3, small_kernel_size=5), 'kernel_size'),
    (dict(channels=8, kernel_size=13, num_paths=0), 'num_paths'),
    (dict(channels=8, kernel_size=13, num_reps=0), 'num_reps'),
    (dict(channels=8, kernel_size=13, ghost_ratio=1.0), 'ghost_ratio'),
    (dict(channels=8, kernel_size=13, ghost_split='v3'), 'ghost_split'),
    (dict(channels=1, kernel_size=13, ghost_ratio=.5,
          ghost_split='v2'), 'rep channel'),
])
def test_sw_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ShiftwiseConv(**kwargs)


# ----------------------------------------------------------------------
# backbones
# ----------------------------------------------------------------------
TINY = dict(depths=[1, 1, 2, 1], channels=[8, 16, 16, 24])


@pytest.mark.parametrize('cls', [ShiftWiseV1, ShiftWiseV2])
def test_backbone_output_shapes(cls):
    model = cls(
        arch=TINY,
        kernel_size=[9, 7, 5, 5, 3],
        out_indices=(0, 1, 2, 3),
        gap_before_final_norm=False,
        init_cfg=None)
    model.init_weights()
    outs = model(torch.randn(2, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(2, 8, 16, 16), (2, 16, 8, 8),
                                              (2, 16, 4, 4), (2, 24, 2, 2)]
    for index in range(-4, 4):
        model = cls(
            arch=TINY, kernel_size=[9, 7, 5, 5, 3], out_indices=index).eval()
        outs = model(torch.randn(1, 3, 32, 32))
        assert len(outs) == 1
        assert outs[0].shape == (1, TINY['channels'][index])


def test_backbone_registry_and_arch_defaults():
    v1 = MODELS.build(
        dict(
            type='slak_mm.ShiftWiseV1', arch=TINY, kernel_size=[9, 7, 5, 5,
                                                                3]))
    assert isinstance(v1, ShiftWiseV1)
    assert ShiftWiseV2.arch_settings['tiny'] == dict(
        depths=[3, 3, 18, 3], channels=[80, 160, 320, 640])
    assert ShiftWiseV1.arch_settings['tiny']['channels'] == [96, 192, 384, 768]
    v2 = ShiftWiseV2(arch=TINY, kernel_size=[9, 7, 5, 5, 3])
    sw = v2.stages[0][0].large_kernel
    assert sw.ghost_split == 'v2' and sw.rep_channels % 2 == 0


def test_backbone_frozen_stages_and_layer_depth():
    model = ShiftWiseV2(
        arch=TINY, kernel_size=[9, 7, 5, 5, 3], frozen_stages=2)
    model.train()
    for i in range(2):
        assert not model.stages[i].training
        assert all(not p.requires_grad for p in model.stages[i].parameters())
    assert model.stages[2].training
    assert model.get_layer_depth('backbone.stages.1.0.grn.gamma',
                                 'backbone.') == (2, 8)
    assert model.get_layer_depth('backbone.stages.2.1.se.conv2.conv.weight',
                                 'backbone.') == (3, 8)
    assert model.get_layer_depth('head.fc.weight', 'backbone.') == (7, 8)
    assert model.get_stage_depth('stages.3.0.gamma') == 4


def test_backbone_switch_to_deploy():
    torch.manual_seed(0)
    model = ShiftWiseV1(arch=TINY, kernel_size=[9, 7, 5, 5, 3]).eval()
    x = torch.randn(1, 3, 32, 32)
    before = model(x)[0]
    model.switch_to_deploy()
    torch.testing.assert_close(model(x)[0], before, rtol=1e-5, atol=1e-5)


def test_backbone_trains_with_cp():
    model = ShiftWiseV2(
        arch=TINY,
        kernel_size=[9, 7, 5, 5, 3],
        with_cp=True,
        drop_path_rate=.1,
        layer_scale_init_value=1.)
    out = model(torch.randn(2, 3, 32, 32))[0]
    (out * torch.randn_like(out)).sum().backward()
    weight = model.stages[0][0].large_kernel.paths[0].weight
    assert weight.grad is not None and weight.grad.abs().sum() > 0


@pytest.mark.parametrize('kwargs,match', [
    (dict(arch='huge'), 'arch'),
    (dict(arch=dict(depths=[1])), 'arch'),
    (dict(arch=TINY, kernel_size=[9, 7, 5, 3]), 'kernel_size'),
    (dict(arch=TINY, kernel_size=[9, 7, 5, 4, 3]), 'kernel_size'),
    (dict(arch=TINY, kernel_size=[9, 7, 5, 5, 3],
          out_indices=4), 'out_indices'),
    (dict(arch=TINY, kernel_size=[9, 7, 5, 5, 3],
          frozen_stages=5), 'frozen_stages'),
    (dict(arch=TINY, kernel_size=[9, 7, 5, 5, 3],
          sw_cfg=dict(N_rep=4)), 'sw_cfg'),
])
def test_backbone_argument_errors(kwargs, match):
    for cls in (ShiftWiseV1, ShiftWiseV2):
        with pytest.raises(ValueError, match=match):
            cls(**kwargs)


# ----------------------------------------------------------------------
# coarse (per-piece) sparse training
# ----------------------------------------------------------------------
def test_piece_sparse_masking():
    from slak_mm.sparse import snip_densities
    from slak_mm.sparse.shiftwise import (PieceSparseMasking, piece_scores,
                                          select_shiftwise_pieces)
    model = ShiftWiseV1(arch=TINY, kernel_size=[9, 7, 5, 5, 3])
    names = select_shiftwise_pieces(model, prefix='stages.')
    assert names and all('.large_kernel.paths.' in n for n in names)
    assert len(names) == 2 * sum(TINY['depths'])
    masking = PieceSparseMasking(model, names, zero_regrown=True)
    params = dict(model.named_parameters())
    scores = {n: piece_scores(params[n].detach().abs()) for n in names}
    densities = snip_densities(scores, 0.7)
    masking.init_random(densities, torch.Generator().manual_seed(0))
    masking.apply()
    before = {n: int(u.sum()) for n, u in masking.unit_masks().items()}
    for name, mask in masking.masks.items():
        flat = mask.flatten(1)
        assert torch.equal(flat.all(1), flat.any(1))
        pieces = params[name].detach().flatten(1)
        assert torch.all(pieces[~flat[:, 0]] == 0)
    optimizer = torch.optim.AdamW(model.parameters())
    name = next(iter(masking.masks))
    param = params[name]
    with torch.no_grad():
        param.add_(torch.randn_like(param))
    masking.apply()
    unit = masking.unit_masks()[name]
    norms = param.detach().abs().flatten(1).sum(1)
    weakest = norms.masked_fill(~unit, float('inf')).argmin()
    moved = masking.prune_and_regrow(
        0.5, 'random_exact', torch.Generator().manual_seed(1),
        optimizer=optimizer)
    after = {n: int(u.sum()) for n, u in masking.unit_masks().items()}
    assert after == before
    assert moved[name][0] == math.ceil(0.5 * before[name])
    new_unit = masking.unit_masks()[name]
    # the smallest-L1 piece was pruned (and, if regrown, restarts at 0)
    assert not new_unit[weakest] or param[weakest].abs().sum() == 0
    state = masking.state_dict()
    masking.load_state_dict(state)
    bad = {name: state[name].clone()}
    bad[name].view(bad[name].shape[0],
                   -1)[0, 0] = ~bad[name].view(bad[name].shape[0], -1)[0, 1]
    bad[name].view(bad[name].shape[0],
                   -1)[0, 1:] = ~bad[name].view(bad[name].shape[0], -1)[0, 0]
    with pytest.raises(ValueError, match='constant'):
        masking.load_state_dict(bad)


def test_shared_path_masks_and_sync():
    """Official rep_coarse: path 0's mask is copied to every path at
    initialisation; plain updates act on each path alone; a sync update
    prunes path 0 on sum_p |w_p| (the inactive + ceil(rate * active)
    smallest pieces) and copies its mask to every path."""
    from slak_mm.sparse import uniform_densities
    from slak_mm.sparse.shiftwise import (PieceSparseMasking,
                                          select_shiftwise_pieces)
    model = ShiftWiseV1(arch=TINY, kernel_size=[9, 7, 5, 5, 3])
    names = select_shiftwise_pieces(model)
    masking = PieceSparseMasking(model, names, share_paths=True)
    assert all(len(m) == 2 and m[0].endswith('paths.0.weight')
               for m in masking.groups.values())
    shapes = {n: p.shape for n, p in masking.params.items()}
    masking.init_random(uniform_densities(shapes, 0.7),
                        torch.Generator().manual_seed(0))
    masking.apply()

    def assert_shared():
        for leader, members in masking.groups.items():
            for name in members[1:]:
                assert torch.equal(masking.masks[name],
                                   masking.masks[leader]), name

    assert_shared()
    for leader in masking.groups:
        unit = masking.unit_mask(leader)
        assert int(unit.sum()) == round(0.7 * unit.numel())
    params = masking.params
    with torch.no_grad():
        for p in params.values():
            p.add_(torch.randn_like(p))
    masking.apply()
    # a plain update: every path on its own; the paths diverge
    before = {n: masking.unit_mask(n) for n in masking.masks}
    moved = masking.prune_and_regrow(0.5, 'random',
                                     torch.Generator().manual_seed(1))
    assert set(moved) == set(names)
    for name in names:
        assert moved[name][0] == math.ceil(0.5 * int(before[name].sum()))
    assert any(
        not torch.equal(masking.masks[m[0]], masking.masks[m[1]])
        for m in masking.groups.values())
    # a sync update, checked by hand on every group
    before = {n: masking.unit_mask(n) for n in masking.masks}
    summed = {
        leader: sum(params[n].detach().abs().flatten(1).sum(1)
                    for n in members)
        for leader, members in masking.groups.items()
    }
    moved = masking.prune_and_regrow(0.3, 'random',
                                     torch.Generator().manual_seed(2),
                                     sync=True)
    assert set(moved) == set(masking.groups)
    assert_shared()
    for leader in masking.groups:
        unit = before[leader]
        score = summed[leader].clone()
        score[~unit & (score == 0)] = -1
        k = int((~unit).sum()) + math.ceil(0.3 * int(unit.sum()))
        victims = score.argsort()[:k]
        survivors = unit.clone()
        survivors[victims] = False
        after = masking.unit_mask(leader)
        assert torch.all(after[survivors])
        assert moved[leader][0] == int(unit.sum()) - int(survivors.sum())
        assert moved[leader][0] >= math.ceil(0.3 * int(unit.sum()))
        assert moved[leader][1] == int((after & ~survivors).sum())
        for name in masking.groups[leader]:
            pieces = params[name].detach().flatten(1)
            assert torch.all(pieces[~after] == 0)
