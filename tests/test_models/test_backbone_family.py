"""The large-kernel backbone family: mixer config, network norms, the
deprecated arguments and the former names."""
import inspect

import pytest
import torch
import torch.nn as nn
from mmengine.registry import WEIGHT_INITIALIZERS
from mmengine.runner import save_checkpoint
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.models.utils import LayerNorm2d, SELayer

from slak_mm.models import (DecomposedLargeKernelConv, LargeKernelConvNeXt,
                            ShiftwiseConv, ShiftWiseV1, ShiftWiseV1Block,
                            ShiftWiseV2, ShiftWiseV2Block, SLaK, SLaKBlock)
from slak_mm.models.layers import fuse_bn, fuse_conv_bn

MINI = dict(depths=[1, 1, 2, 1], channels=[8, 16, 32, 64])
MINI_KERNELS = [13, 11, 9, 7, 3]
TINY = dict(depths=[1, 1, 2, 1], channels=[8, 16, 16, 24])
SW_KERNELS = [9, 7, 5, 5, 3]


def _mixers(model, cls):
    return [m for m in model.modules() if isinstance(m, cls)]


def test_family_layout():
    for cls in (SLaK, ShiftWiseV1, ShiftWiseV2):
        assert issubclass(cls, LargeKernelConvNeXt)
        assert issubclass(cls, BaseBackbone)
    assert issubclass(ShiftWiseV1Block, SLaKBlock)
    slak = SLaK(MINI, kernel_size=MINI_KERNELS)
    assert isinstance(slak.stages[0][0], SLaKBlock)
    v1 = ShiftWiseV1(TINY, kernel_size=SW_KERNELS)
    assert isinstance(v1.stages[0][0], ShiftWiseV1Block)
    v2 = ShiftWiseV2(TINY, kernel_size=SW_KERNELS)
    block = v2.stages[0][0]
    assert isinstance(block, ShiftWiseV2Block)
    # mmpretrain's SELayer: C // 4 squeeze channels, biased convs
    assert isinstance(block.se, SELayer)
    assert block.se.conv1.conv.weight.shape == (2, 8, 1, 1)
    assert block.se.conv2.conv.bias.shape == (8, )
    keys = set(v2.state_dict())
    assert 'stages.0.0.se.conv1.conv.weight' in keys
    assert 'stages.0.0.se.conv2.conv.bias' in keys
    assert not any('.se.down.' in k or '.se.up.' in k for k in keys)


def test_state_dict_keys_of_slak():
    """The train-form keys that existing checkpoints hold."""
    keys = set(SLaK(MINI, kernel_size=MINI_KERNELS).state_dict())
    for key in ('downsample_layers.0.0.weight', 'downsample_layers.0.1.bias',
                'downsample_layers.1.0.weight', 'downsample_layers.1.1.bias',
                'stages.2.1.gamma', 'stages.2.1.norm.weight',
                'stages.2.1.pointwise_conv1.weight',
                'stages.2.1.pointwise_conv2.bias',
                'stages.2.1.large_kernel.branch_kxs.conv.weight',
                'stages.2.1.large_kernel.branch_sxk.bn.running_var',
                'stages.2.1.large_kernel.branch_sxs.bn.weight', 'norm3.weight',
                'norm3.bias'):
        assert key in keys, key


def test_default_mixer_cfgs():
    """The backbones' default mixers are the mixers' own defaults (SW-v2:
    the 'v2' ghost split)."""
    for cls, mixer, expected_keys in (
        (SLaK, DecomposedLargeKernelConv,
         {'norm_cfg', 'fast_path', 'decompose'}),
        (ShiftWiseV1, ShiftwiseConv, {
            'norm_cfg', 'fast_path', 'ghost_ratio', 'num_paths', 'num_reps',
            'ghost_split', 'seed'
        }),
    ):
        cfg = dict(cls.default_mixer_cfg)
        assert cfg.pop('type') == mixer.__name__
        assert set(cfg) == expected_keys
        defaults = inspect.signature(mixer).parameters
        for key, value in cfg.items():
            assert defaults[key].default == value, key
    assert ShiftWiseV1.default_mixer_cfg['ghost_ratio'] == 0.23
    assert ShiftWiseV2.default_mixer_cfg == dict(
        ShiftWiseV1.default_mixer_cfg, ghost_split='v2')


def test_mixer_cfg_is_merged_and_injected():
    model = SLaK(
        MINI,
        kernel_size=MINI_KERNELS,
        mixer_cfg=dict(norm_cfg=dict(type='SyncBN'), fast_path=False))
    mixers = _mixers(model, DecomposedLargeKernelConv)
    assert len(mixers) == sum(MINI['depths'])
    assert all(not m.fast_path and m.decompose for m in mixers)
    assert all(isinstance(m.branch_kxs.bn, nn.SyncBatchNorm) for m in mixers)
    assert [m.kernel_size for m in mixers] == [13, 11, 9, 9, 7]
    assert {m.small_kernel_size for m in mixers} == {3}
    assert [m.channels for m in mixers] == [10, 20, 41, 41, 83]
    model = ShiftWiseV2(
        TINY,
        kernel_size=SW_KERNELS,
        mixer_cfg=dict(num_paths=1, seed=7),
        block_norm_cfg=dict(type='SyncBN'))
    mixers = _mixers(model, ShiftwiseConv)
    assert all(m.num_paths == 1 and m.seed == 7 and m.ghost_split == 'v2'
               for m in mixers)
    assert isinstance(model.stages[0][0].norm, nn.SyncBatchNorm)
    assert isinstance(model.stages[0][0].norm2, nn.SyncBatchNorm)
    assert isinstance(model.stages[0][0].large_kernel.norm_h, nn.BatchNorm2d)
    assert not isinstance(model.stages[0][0].large_kernel.norm_h,
                          nn.SyncBatchNorm)


@pytest.mark.parametrize('mixer_cfg,error,match', [
    (dict(kernel_size=7), ValueError, 'must not set'),
    (dict(small_kernel_size=3), ValueError, 'must not set'),
    (dict(channels=8), ValueError, 'must not set'),
    (dict(deploy=True), ValueError, 'deploy'),
    (dict(ghost_ratio=0.2), TypeError, 'ghost_ratio'),
    (dict(type='NoSuchMixer'), KeyError, 'NoSuchMixer'),
])
def test_bad_mixer_cfg(mixer_cfg, error, match):
    with pytest.raises(error, match=match):
        SLaK(MINI, kernel_size=MINI_KERNELS, mixer_cfg=mixer_cfg)


def test_network_norm_cfg():
    """``norm_cfg`` is ConvNeXt's: stem, downsampling and output norms."""
    model = SLaK(MINI, kernel_size=MINI_KERNELS, out_indices=(0, 3))
    for norm in (model.downsample_layers[0][1], model.downsample_layers[1][0],
                 model.norm0, model.norm3):
        assert type(norm) is LayerNorm2d and norm.eps == 1e-6
    assert model.stages[0][0].norm.eps == 1e-6  # the block's channels-last LN
    model = ShiftWiseV2(
        TINY,
        kernel_size=SW_KERNELS,
        norm_cfg=dict(type='LN2d', eps=1e-5),
        out_indices=(1, ))
    for norm in (model.downsample_layers[0][1], model.downsample_layers[0][4],
                 model.downsample_layers[2][1], model.norm1):
        assert type(norm) is LayerNorm2d and norm.eps == 1e-5
    model = SLaK(
        MINI, kernel_size=MINI_KERNELS, norm_cfg=dict(type='GN', num_groups=1))
    assert isinstance(model.norm3, nn.GroupNorm)
    assert model(torch.randn(2, 3, 64, 64))[0].shape == (2, 83)


@pytest.mark.parametrize('norm_type', ['BN', 'SyncBN', 'BN2d'])
def test_deprecated_batch_norm_cfg(norm_type):
    """A BatchNorm ``norm_cfg`` has its former meaning (the branch norm;
    for SW-v2 also the block norms), with a warning naming the new field."""
    norm_cfg = dict(type=norm_type, requires_grad=True)
    with pytest.warns(DeprecationWarning, match=r"mixer_cfg\['norm_cfg'\]"):
        model = SLaK(MINI, kernel_size=MINI_KERNELS, norm_cfg=norm_cfg)
    expected = nn.SyncBatchNorm if norm_type == 'SyncBN' else nn.BatchNorm2d
    assert model.mixer_cfg['norm_cfg'] == norm_cfg
    assert isinstance(model.stages[1][0].large_kernel.branch_sxs.bn, expected)
    assert type(model.norm3) is LayerNorm2d and model.norm3.eps == 1e-6
    assert type(model.downsample_layers[2][0]) is LayerNorm2d
    with pytest.warns(DeprecationWarning, match='block_norm_cfg'):
        model = ShiftWiseV2(TINY, kernel_size=SW_KERNELS, norm_cfg=norm_cfg)
    block = model.stages[0][0]
    for norm in (block.large_kernel.norm_v, block.norm, block.norm2):
        assert isinstance(norm, expected)
    assert type(model.norm3) is LayerNorm2d


def test_deprecated_mixer_arguments():
    with pytest.warns(DeprecationWarning, match='fast_path=False'):
        model = SLaK(
            MINI, kernel_size=MINI_KERNELS, fast_path=False, decompose=False)
    mixers = _mixers(model, DecomposedLargeKernelConv)
    assert all(not m.fast_path and not m.decompose for m in mixers)
    assert hasattr(mixers[0], 'branch_kxk')
    for cls in (ShiftWiseV1, ShiftWiseV2):
        with pytest.warns(DeprecationWarning, match='sw_cfg'):
            model = cls(
                TINY,
                kernel_size=SW_KERNELS,
                sw_cfg=dict(num_reps=2, ghost_ratio=0.5),
                fast_path=False)
        mixers = _mixers(model, ShiftwiseConv)
        assert all(m.num_reps == 2 and m.ghost_ratio == 0.5 and not m.fast_path
                   for m in mixers)
    # the new field wins over a deprecated argument
    with pytest.warns(DeprecationWarning):
        model = SLaK(
            MINI,
            kernel_size=MINI_KERNELS,
            fast_path=False,
            mixer_cfg=dict(fast_path=True))
    assert all(m.fast_path for m in _mixers(model, DecomposedLargeKernelConv))


def test_deprecated_arguments_give_the_same_model():
    torch.manual_seed(0)
    with pytest.warns(DeprecationWarning):
        old = ShiftWiseV2(
            TINY,
            kernel_size=SW_KERNELS,
            norm_cfg=dict(type='SyncBN'),
            sw_cfg=dict(num_paths=3),
            fast_path=False)
    torch.manual_seed(0)
    new = ShiftWiseV2(
        TINY,
        kernel_size=SW_KERNELS,
        mixer_cfg=dict(
            norm_cfg=dict(type='SyncBN'), num_paths=3, fast_path=False),
        block_norm_cfg=dict(type='SyncBN'))
    assert old.mixer_cfg == new.mixer_cfg
    assert old.state_dict().keys() == new.state_dict().keys()
    for key, value in old.state_dict().items():
        assert torch.equal(value, new.state_dict()[key]), key
    assert str(old) == str(new)


def test_former_names():
    assert fuse_conv_bn is fuse_bn
    m = DecomposedLargeKernelConv(4, 7, 3).eval()
    for a, b in zip(m.merge_kernels(), m.get_equivalent_kernel_bias()):
        assert torch.equal(a, b)


def test_switch_to_deploy_reaches_every_mixer():
    model = ShiftWiseV2(TINY, kernel_size=SW_KERNELS).eval()
    model.switch_to_deploy()
    assert model.deploy
    assert all(m.num_paths == 1 for m in _mixers(model, ShiftwiseConv))
    model = SLaK(MINI, kernel_size=MINI_KERNELS).eval()
    assert not model.deploy
    model.switch_to_deploy()
    assert model.deploy
    assert all(m.deploy for m in _mixers(model, DecomposedLargeKernelConv))
    assert SLaK(MINI, kernel_size=MINI_KERNELS, deploy=True).deploy


def _cls_checkpoint(tmp_path):
    torch.manual_seed(0)
    cls = SLaK(MINI, kernel_size=MINI_KERNELS, out_indices=-1)
    cls.init_weights()
    with torch.no_grad():
        cls.norm3.weight.uniform_(0.5, 1.5)
    state = {f'backbone.{k}': v for k, v in cls.state_dict().items()}
    path = str(tmp_path / 'cls.pth')
    save_checkpoint(dict(state_dict=state), path)
    return cls, path


@pytest.mark.parametrize('init_type', ['Pretrained', 'CheckedPretrained'])
def test_out_norms_reset_for_checkpoint_initializers(tmp_path, init_type):
    if WEIGHT_INITIALIZERS.get(init_type) is None:
        pytest.skip(f'no {init_type} initializer registered')
    cls, path = _cls_checkpoint(tmp_path)
    pretrained = dict(type=init_type, checkpoint=path, prefix='backbone.')
    for init_cfg in (pretrained, [pretrained]):
        dense = SLaK(
            MINI,
            kernel_size=MINI_KERNELS,
            out_indices=(0, 3),
            pretrained_out_norms=False,
            init_cfg=init_cfg)
        dense.init_weights()
        assert torch.equal(dense.norm3.weight, torch.ones(83))
        assert torch.equal(dense.stages[3][0].gamma, cls.stages[3][0].gamma)
