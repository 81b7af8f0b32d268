import pytest
import torch.nn as nn
from mmengine.optim import build_optim_wrapper

from slak_mm.models import SLaK

MINI_ARCH = dict(depths=[1, 1, 6, 1], channels=[8, 16, 24, 32])
MINI_KERNELS = [9, 7, 7, 5, 3]


class ToySegmentor(nn.Module):
    """Named like an mmseg EncoderDecoder: backbone + decode_head."""

    def __init__(self, frozen_stages=0):
        super().__init__()
        self.backbone = SLaK(
            MINI_ARCH,
            kernel_size=MINI_KERNELS,
            out_indices=(0, 1, 2, 3),
            frozen_stages=frozen_stages,
            gap_before_final_norm=False)
        self.decode_head = nn.Conv2d(41, 5, 1)


def _build(model, decay_type, decay_rate=0.9, num_layers=6):
    cfg = dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
        constructor='slak_mm.LearningRateDecayOptimizerConstructor',
        paramwise_cfg=dict(
            decay_rate=decay_rate,
            decay_type=decay_type,
            num_layers=num_layers))
    return build_optim_wrapper(model, cfg)


def _groups_by_param(optim_wrapper):
    result = {}
    for group in optim_wrapper.optimizer.param_groups:
        for name in group['param_names']:
            result[name] = group
    return result


def test_layer_wise_ids_and_scales():
    model = ToySegmentor()
    groups = _groups_by_param(_build(model, 'layer_wise', 0.7, 6))
    assert len(groups) == len(list(model.parameters()))
    expected_ids = {
        'backbone.downsample_layers.0.0.weight': 0,
        'backbone.downsample_layers.1.1.weight': 2,
        'backbone.downsample_layers.2.1.weight': 3,
        'backbone.downsample_layers.3.1.weight': 6,
        'backbone.stages.0.0.large_kernel.branch_kxs.conv.weight': 1,
        'backbone.stages.1.0.pointwise_conv2.weight': 2,
        'backbone.stages.2.2.pointwise_conv1.weight': 3,
        'backbone.stages.2.3.pointwise_conv1.weight': 4,
        'backbone.stages.3.0.pointwise_conv1.weight': 6,
        'backbone.norm2.weight': 7,
        'decode_head.weight': 7,
    }
    for name, layer_id in expected_ids.items():
        group = groups[name]
        assert group['group_name'].startswith(f'layer_{layer_id}_'), name
        assert group['lr_scale'] == pytest.approx(0.7**(6 + 1 - layer_id))
        assert group['lr'] == pytest.approx(1e-4 * 0.7**(6 + 1 - layer_id))


def test_stage_wise_ids_and_scales():
    """The official stage-wise rule with num_layers 6 and rate 0.9: 8 ids
    (6 + 2), scale 0.9 ** (8 - id - 1); downsample layers id 0, stage i
    id i + 1, everything outside the backbone stages (output norms, heads)
    the last id 7, i.e. the full lr."""
    model = ToySegmentor()
    groups = _groups_by_param(_build(model, 'stage_wise', 0.9, 6))
    # (layer id, lr scale), the scales written out by hand
    expected = {
        'backbone.downsample_layers.0.0.weight': (0, 0.4782969),  # 0.9**7
        'backbone.downsample_layers.3.1.weight': (0, 0.4782969),
        'backbone.stages.0.0.gamma': (1, 0.531441),  # 0.9**6
        'backbone.stages.2.5.norm.weight': (3, 0.6561),  # 0.9**4
        'backbone.stages.3.0.pointwise_conv1.weight': (4, 0.729),  # 0.9**3
        'backbone.norm0.weight': (7, 1.0),
        'backbone.norm3.bias': (7, 1.0),
        'decode_head.weight': (7, 1.0),
        'decode_head.bias': (7, 1.0),
    }
    for name, (layer_id, scale) in expected.items():
        group = groups[name]
        assert group['group_name'].startswith(f'layer_{layer_id}_'), name
        assert group['lr_scale'] == pytest.approx(scale, rel=1e-9), name
        assert group['lr'] == pytest.approx(1e-4 * scale, rel=1e-9), name


def test_weight_decay_and_frozen_parameters():
    model = ToySegmentor(frozen_stages=1)
    groups = _groups_by_param(_build(model, 'layer_wise'))
    assert not any(n.startswith('backbone.stages.0.') for n in groups)
    assert not any(n.startswith('backbone.downsample_layers.0.')
                   for n in groups)
    for name, group in groups.items():
        param = dict(model.named_parameters())[name]
        if param.ndim == 1:
            assert group['weight_decay'] == 0., name
        else:
            assert group['weight_decay'] == 0.05, name


class ToySWSegmentor(nn.Module):
    """A segmentor-like model with a ShiftWise v2 backbone (GRN layers)."""

    def __init__(self):
        super().__init__()
        from slak_mm.models import ShiftWiseV2
        self.backbone = ShiftWiseV2(
            dict(depths=[1, 1, 2, 1], channels=[8, 16, 16, 24]),
            kernel_size=[9, 7, 5, 5, 3],
            out_indices=(0, 1, 2, 3),
            gap_before_final_norm=False)
        self.decode_head = nn.Conv2d(24, 5, 1)


@pytest.mark.parametrize('decay_grn', [None, True, False])
def test_grn_weight_decay(decay_grn):
    """GRN gamma / beta are decayed by default (official ShiftWise: their
    (1, 1, 1, 4C) shape escapes the 1-D rule); the other 1-D parameters
    (BN / LN, layer scale, biases) are not; decay_grn=False exempts GRN
    too."""
    from mmpretrain.models.utils import GRN
    model = ToySWSegmentor()
    cfg = dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
        constructor='slak_mm.LearningRateDecayOptimizerConstructor',
        paramwise_cfg=dict(
            decay_rate=0.8, decay_type='layer_wise', num_layers=6))
    if decay_grn is not None:
        cfg['paramwise_cfg']['decay_grn'] = decay_grn
    groups = _groups_by_param(build_optim_wrapper(model, cfg))
    grn_names = {
        f'{module_name}.{param_name}'
        for module_name, module in model.named_modules()
        if isinstance(module, GRN)
        for param_name, _ in module.named_parameters()
    }
    # one GRN (gamma, beta) per block: 5 blocks
    assert len(grn_names) == 10
    assert 'backbone.stages.2.1.grn.gamma' in grn_names
    assert 'backbone.stages.2.1.grn.beta' in grn_names
    grn_wd = 0. if decay_grn is False else 0.05
    for name, param in model.named_parameters():
        if name in grn_names:
            assert param.ndim == 1, name
            expected = grn_wd
        elif param.ndim == 1 or name.endswith('.bias'):
            expected = 0.
        else:
            expected = 0.05
        assert groups[name]['weight_decay'] == expected, name
    # the layer ids do not depend on the weight decay
    assert groups['backbone.stages.2.1.grn.gamma']['lr_scale'] == \
        pytest.approx(0.8**(7 - 3), rel=1e-9)
    # 1-D parameters next to the GRN stay undecayed
    block = 'backbone.stages.2.1'
    for suffix in ('gamma', 'norm.weight', 'norm2.bias',
                   'pointwise_conv1.bias'):
        assert groups[f'{block}.{suffix}']['weight_decay'] == 0., suffix


def test_errors():
    with pytest.raises(ValueError, match='decay_type'):
        _build(ToySegmentor(), 'block_wise')

    class NoDepth(nn.Module):

        def __init__(self):
            super().__init__()
            self.backbone = nn.Conv2d(3, 3, 3)

    with pytest.raises(TypeError, match='get_layer_depth'):
        _build(NoDepth(), 'layer_wise')
    cfg = dict(
        optimizer=dict(type='AdamW', lr=1e-4),
        constructor='slak_mm.LearningRateDecayOptimizerConstructor',
        paramwise_cfg=dict(decay_rate=0.9))
    with pytest.raises(ValueError, match='num_layers'):
        build_optim_wrapper(ToySegmentor(), cfg)


def test_mmpretrain_layer_decay_constructor():
    """mmpretrain's own constructor works through SLaK.get_layer_depth."""
    from mmengine.registry import DefaultScope
    from mmpretrain.models import ImageClassifier
    # earlier tests may have left another default scope (mmseg / mmdet)
    DefaultScope.get_instance(
        'test_mmpretrain_layer_decay', scope_name='mmpretrain')
    model = ImageClassifier(
        backbone=dict(
            type='slak_mm.SLaK', arch=MINI_ARCH, kernel_size=MINI_KERNELS),
        neck=None,
        head=dict(
            type='LinearClsHead',
            num_classes=10,
            in_channels=41,
            loss=dict(type='CrossEntropyLoss')))
    cfg = dict(
        optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
        constructor='mmpretrain.LearningRateDecayOptimWrapperConstructor',
        paramwise_cfg=dict(layer_decay_rate=0.8))
    optim_wrapper = build_optim_wrapper(model, cfg)
    scales = {}
    for group in optim_wrapper.optimizer.param_groups:
        for name, param in model.named_parameters():
            if any(param is p for p in group['params']):
                scales[name] = group['lr'] / 1e-3
    # 6 layers + 2: head at id 7 -> scale 1, stem at id 0 -> 0.8 ** 7
    assert scales['head.fc.weight'] == pytest.approx(1.0)
    assert scales['backbone.downsample_layers.0.0.weight'] == pytest.approx(
        0.8**7)
    assert scales['backbone.stages.2.4.pointwise_conv1.weight'] == \
        pytest.approx(0.8**(7 - 4))
