import pytest
import torch
import torch.nn as nn
from mmengine.runner import save_checkpoint

from slak_mm.models import SLaK

# A small variant with the real block structure, for fast tests.
MINI_ARCH = dict(depths=[1, 1, 3, 1], channels=[16, 32, 64, 128])
MINI_KERNELS = [13, 11, 9, 7, 3]


def _num_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize('arch,expected', [('tiny', 50_703_838),
                                           ('small', 91_131_820),
                                           ('base', 157_950_792)])
def test_dense_parameter_counts(arch, expected):
    """Backbone + final norm + 1000-way head = the published dense counts."""
    backbone = SLaK(arch=arch, out_indices=-1, init_cfg=None)
    head = nn.Linear(backbone.channels[-1], 1000)
    assert _num_params(backbone) + _num_params(head) == expected


def test_channels_after_width_factor():
    assert SLaK('tiny', init_cfg=None).channels == [124, 249, 499, 998]
    assert SLaK('base', init_cfg=None).channels == [166, 332, 665, 1331]
    assert SLaK('t', width_factor=1.0,
                init_cfg=None).channels == [96, 192, 384, 768]


def test_tiny_odd_input_all_stages():
    model = SLaK(
        'tiny', out_indices=(0, 1, 2, 3), gap_before_final_norm=False)
    model.init_weights()
    model.eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 255, 257))
    assert [tuple(o.shape) for o in outs] == [(1, 124, 63, 64),
                                              (1, 249, 31, 32),
                                              (1, 499, 15, 16),
                                              (1, 998, 7, 8)]
    # the large kernels really are large
    lk = model.stages[0][0].large_kernel
    assert lk.branch_kxs.conv.weight.shape == (124, 1, 51, 5)
    assert model.stages[3][0].large_kernel.branch_sxk.conv.weight.shape == (
        998, 1, 5, 13)


@pytest.mark.parametrize('out_indices', [0, 1, 2, 3, -1, -4, (0, 2), (1, 3),
                                         (0, 1, 2, 3)])
@pytest.mark.parametrize('hw', [(64, 64), (97, 75)])
def test_out_indices_shapes(out_indices, hw):
    model = SLaK(
        MINI_ARCH,
        kernel_size=MINI_KERNELS,
        out_indices=out_indices,
        gap_before_final_norm=False)
    indices = [out_indices] if isinstance(out_indices, int) else out_indices
    indices = [i % 4 for i in indices]
    h, w = hw
    sizes = []
    h, w = (h - 4) // 4 + 1, (w - 4) // 4 + 1
    for i in range(4):
        if i > 0:
            h, w = (h - 2) // 2 + 1, (w - 2) // 2 + 1
        sizes.append((h, w))
    outs = model(torch.randn(2, 3, *hw))
    assert len(outs) == len(indices)
    for out, i in zip(outs, indices):
        assert out.shape == (2, model.channels[i], *sizes[i])


def test_gap_before_final_norm():
    model = SLaK(MINI_ARCH, kernel_size=MINI_KERNELS, out_indices=(2, 3))
    outs = model(torch.randn(2, 3, 64, 64))
    assert [o.shape for o in outs] == [(2, 83), (2, 166)]
    # GAP + LayerNorm over channels: zero mean, unit variance per sample
    norm = model.norm3
    nn.init.ones_(norm.weight)
    nn.init.zeros_(norm.bias)
    out = model(torch.randn(2, 3, 64, 64))[1]
    # the mean is 0 up to rounding relative to the (unit) spread of `out`
    scale = out.std(1).max().item()
    torch.testing.assert_close(
        out.mean(1), torch.zeros(2), atol=1e-5 * scale, rtol=1e-5)


def test_frozen_stages_and_norm_eval():
    model = SLaK(
        MINI_ARCH, kernel_size=MINI_KERNELS, frozen_stages=2, norm_eval=True)
    model.train()
    for i in range(2):
        for m in (model.downsample_layers[i], model.stages[i]):
            assert not m.training
            assert all(not p.requires_grad for p in m.parameters())
    for i in range(2, 4):
        for m in (model.downsample_layers[i], model.stages[i]):
            assert all(p.requires_grad for p in m.parameters())
        assert model.stages[i].training
        # norm_eval keeps BN in eval mode, LayerNorms train
        assert not model.stages[i][0].large_kernel.branch_kxs.bn.training
        assert model.stages[i][0].norm.training
    # frozen BN statistics do not move
    bn = model.stages[0][0].large_kernel.branch_kxs.bn
    before = bn.running_mean.clone()
    model(torch.randn(2, 3, 64, 64))
    torch.testing.assert_close(bn.running_mean, before)


def test_drop_path_and_layer_scale():
    model = SLaK(
        MINI_ARCH,
        kernel_size=MINI_KERNELS,
        drop_path_rate=0.3,
        layer_scale_init_value=1e-6)
    blocks = [b for stage in model.stages for b in stage]
    rates = [getattr(b.drop_path, 'drop_prob', 0.) for b in blocks]
    expected = torch.linspace(0, 0.3, len(blocks)).tolist()
    assert rates == pytest.approx(expected)
    assert all(
        torch.equal(b.gamma, torch.full_like(b.gamma, 1e-6)) for b in blocks)
    model = SLaK(MINI_ARCH, kernel_size=MINI_KERNELS, layer_scale_init_value=0)
    assert all(b.gamma is None for b in model.stages[0])


def test_with_cp_same_output_and_grads():
    torch.manual_seed(0)
    ref = SLaK(MINI_ARCH, kernel_size=MINI_KERNELS, out_indices=(0, 3))
    cp_model = SLaK(
        MINI_ARCH, kernel_size=MINI_KERNELS, out_indices=(0, 3), with_cp=True)
    cp_model.load_state_dict(ref.state_dict())
    x = torch.randn(2, 3, 64, 64, requires_grad=True)
    sum(o.sum() for o in ref(x)).backward()
    grad_ref = x.grad.clone()
    x.grad = None
    sum(o.sum() for o in cp_model(x)).backward()
    torch.testing.assert_close(x.grad, grad_ref, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize('kwargs,match', [
    (dict(arch='huge'), 'Unknown `arch`'),
    (dict(arch=dict(depths=[1, 1])), '"depths" and "channels"'),
    (dict(arch=dict(depths=[1, 1], channels=[8])), 'equal length'),
    (dict(kernel_size=[51, 49, 47, 5]), '`kernel_size`'),
    (dict(kernel_size=[51, 49, 48, 13, 5]), r'`kernel_size\[2\]`'),
    (dict(kernel_size=[51, 49, 47, 3, 5]), 'smaller than the small'),
    (dict(kernel_size=51), '`kernel_size`'),
    (dict(out_indices=4), '`out_indices`'),
    (dict(out_indices=(0, -5)), '`out_indices`'),
    (dict(frozen_stages=5), '`frozen_stages`'),
])
def test_argument_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SLaK(**kwargs)


def test_get_layer_depth():
    tiny = SLaK('tiny', init_cfg=None)
    small = SLaK(
        dict(depths=[3, 3, 27, 3], channels=[8, 8, 8, 8]),
        kernel_size=MINI_KERNELS)
    p = 'backbone.'
    cases = {
        'backbone.downsample_layers.0.0.weight': 0,
        'backbone.downsample_layers.1.1.weight': 2,
        'backbone.downsample_layers.2.0.bias': 3,
        'backbone.downsample_layers.3.1.weight': 6,
        'backbone.stages.0.2.gamma': 1,
        'backbone.stages.1.0.pointwise_conv1.weight': 2,
        'backbone.stages.2.0.large_kernel.branch_kxs.conv.weight': 3,
        'backbone.stages.2.5.norm.weight': 4,
        'backbone.stages.2.8.norm.weight': 5,
        'backbone.stages.3.1.gamma': 6,
        'backbone.norm3.weight': 7,
        'decode_head.conv_seg.weight': 7,
    }
    for name, layer_id in cases.items():
        assert tiny.get_layer_depth(name, p) == (layer_id, 8), name
    # deep variants use 12 layers: stage 2 block 26 -> 3 + 8 = 11
    assert small.get_layer_depth('backbone.stages.2.26.gamma', p) == (11, 14)
    assert small.get_layer_depth('backbone.stages.3.0.gamma', p) == (12, 14)
    assert small.get_layer_depth('head.fc.weight', p) == (13, 14)
    # explicit max_layer_id
    assert tiny.get_layer_depth('backbone.stages.3.0.gamma', p,
                                max_layer_id=12) == (12, 14)
    assert tiny.get_stage_depth('backbone.downsample_layers.2.0.weight',
                                p) == 0
    assert tiny.get_stage_depth('backbone.stages.2.0.gamma', p) == 3
    assert tiny.get_stage_depth('backbone.norm0.weight', p) is None
    assert tiny.get_stage_depth('auxiliary_head.conv.weight', p) is None


def test_pretrained_init_with_prefix(tmp_path):
    src = SLaK(MINI_ARCH, kernel_size=MINI_KERNELS, out_indices=(0, 1, 2, 3))
    src.init_weights()
    state = {f'backbone.{k}': v for k, v in src.state_dict().items()}
    state['head.fc.weight'] = torch.zeros(10, 166)
    ckpt = tmp_path / 'cls.pth'
    save_checkpoint(dict(state_dict=state), str(ckpt))

    dst = SLaK(
        MINI_ARCH,
        kernel_size=MINI_KERNELS,
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(
            type='Pretrained', checkpoint=str(ckpt), prefix='backbone.'))
    dst.init_weights()
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v), k


@pytest.mark.parametrize('pretrained_out_norms', [False, True])
def test_cls_checkpoint_into_dense_backbone(tmp_path, pretrained_out_norms):
    """A classification checkpoint (mmpretrain format: the final norm is
    ``backbone.norm3``) loaded into a segmentation / detection backbone:
    with ``pretrained_out_norms=False`` (the published dense-prediction
    configs; official SLaK) norm0..3 stay at weight 1 / bias 0 while the
    stages and downsample layers are loaded; with True norm3 is loaded."""
    torch.manual_seed(0)
    cls = SLaK(MINI_ARCH, kernel_size=MINI_KERNELS, out_indices=-1)
    cls.init_weights()
    with torch.no_grad():
        cls.norm3.weight.uniform_(0.5, 1.5)
        cls.norm3.bias.uniform_(-0.5, 0.5)
        for param in cls.parameters():  # no weight left at its init value
            param.add_(0.01)
    state = {f'backbone.{k}': v for k, v in cls.state_dict().items()}
    state['head.fc.weight'] = torch.randn(10, 166)
    state['head.fc.bias'] = torch.randn(10)
    ckpt = tmp_path / 'cls.pth'
    save_checkpoint(dict(state_dict=state), str(ckpt))

    dense = SLaK(
        MINI_ARCH,
        kernel_size=MINI_KERNELS,
        out_indices=(0, 1, 2, 3),
        gap_before_final_norm=False,
        pretrained_out_norms=pretrained_out_norms,
        init_cfg=dict(
            type='Pretrained', checkpoint=str(ckpt), prefix='backbone.'))
    dense.init_weights()
    loaded = dense.state_dict()
    for key, value in cls.state_dict().items():
        if key.startswith('norm3.'):
            continue
        assert torch.equal(loaded[key], value), key
    channels = dense.channels
    for i in range(3):  # not in the checkpoint: 1 / 0 either way
        assert torch.equal(loaded[f'norm{i}.weight'], torch.ones(channels[i]))
        assert torch.equal(loaded[f'norm{i}.bias'], torch.zeros(channels[i]))
    if pretrained_out_norms:
        assert torch.equal(loaded['norm3.weight'], cls.norm3.weight)
        assert torch.equal(loaded['norm3.bias'], cls.norm3.bias)
    else:
        assert torch.equal(loaded['norm3.weight'], torch.ones(channels[3]))
        assert torch.equal(loaded['norm3.bias'], torch.zeros(channels[3]))


def test_pretrained_out_norms_needs_a_pretrained_init_cfg():
    """Without a Pretrained init_cfg the option changes nothing (the norms
    are initialised as usual)."""
    torch.manual_seed(0)
    model = SLaK(
        MINI_ARCH,
        kernel_size=MINI_KERNELS,
        out_indices=(0, 3),
        pretrained_out_norms=False,
        init_cfg=dict(type='Constant', layer='LayerNorm2d', val=2., bias=.5))
    model.init_weights()
    assert torch.equal(model.norm3.weight, torch.full((166, ), 2.))
    assert torch.equal(model.norm0.bias, torch.full((20, ), .5))


def test_pretrained_without_matching_prefix_raises(tmp_path):
    """An official-layout file (weights under `model`) must not load
    silently (the key check of the ``CheckedPretrained`` initializer)."""
    src = SLaK(MINI_ARCH, kernel_size=MINI_KERNELS)
    ckpt = tmp_path / 'official.pth'
    torch.save(dict(model=src.state_dict()), str(ckpt))
    dst = SLaK(
        MINI_ARCH,
        kernel_size=MINI_KERNELS,
        init_cfg=dict(
            type='CheckedPretrained',
            checkpoint=str(ckpt),
            prefix='backbone.'))
    with pytest.raises(ValueError, match='no key with prefix `backbone.`'):
        dst.init_weights()
