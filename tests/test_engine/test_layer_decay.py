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
    model = ToySegmentor()
    groups = _groups_by_param(_build(model, 'stage_wise', 0.9, 6))
    expected_ids = {
        'backbone.downsample_layers.0.0.weight': 0,
        'backbone.downsample_layers.3.1.weight': 0,
        'backbone.stages.0.0.gamma': 1,
        'backbone.stages.2.5.norm.weight': 3,
        'backbone.stages.3.0.pointwise_conv1.weight': 4,
        'backbone.norm0.weight': 5,
        'decode_head.weight': 5,
    }
    for name, layer_id in expected_ids.items():
        group = groups[name]
        assert group['group_name'].startswith(f'layer_{layer_id}_'), name
        assert group['lr_scale'] == pytest.approx(0.9**(7 - layer_id))


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
