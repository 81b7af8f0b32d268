"""Official SLaK checkpoints -> slak_mm: exact conversion and safe loading
(``slak_mm.converters`` and ``tools/model_converters/slak_to_*.py``).

No file is downloaded: each test builds a network with the official module
layout and key names (written here from the description of the official
``models/SLaK.py`` / ``segmentation/slak.py`` in DESIGN.md §1, not copied),
gives it random weights with ~40% exact zeros, saves it in the official
file format (an ``args`` Namespace included), converts it with the tools,
loads the result into the slak_mm model built from the published config
and compares outputs in fp32 on the CPU (atol 1e-4).
"""
import argparse
import collections
import importlib
import os.path as osp
import re
import sys

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.runner import load_checkpoint

import slak_mm  # noqa: F401
from slak_mm.converters import (OfficialCheckpointError,
                                convert_slak_state_dict,
                                load_official_checkpoint)
from slak_mm.utils import check_checkpoint_keys, load_checkpoint_file
from ..conftest import REPO_ROOT
from slak_mm.apis import build_model
from ..tool_runs import run_tool

ATOL = 1e-4
#: Relative tolerance for outputs that grow with depth (FPN levels reach
#: |x| ~ 6; float32 rounding of a 51x51 conv chain differs between CPUs).
RTOL = 1e-4
TINY = dict(depths=[3, 3, 9, 3], dims=[96, 192, 384, 768])
KERNELS = [51, 49, 47, 13, 5]


def import_converter_tool(name):
    """Import ``tools/model_converters/<name>.py`` as a module, with its
    folder on ``sys.path`` as when it runs as a script."""
    sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'model_converters'))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.pop(0)


def converter_main(task, argv):
    """``slak_to_<toolbox>.py`` in this process; returns the summary."""
    return import_converter_tool('converter_cli').slak_main(task, argv)


# ----------------------------------------------------------------------
# the official layout, rebuilt for the tests
# ----------------------------------------------------------------------
class OfficialLayerNorm(nn.Module):
    """The official channels-first LayerNorm: explicit mean / variance over
    dim 1, parameters ``weight`` / ``bias``."""

    def __init__(self, channels):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + 1e-6)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


def conv_bn(channels, kh, kw):
    """``Sequential(conv=depthwise conv without bias, bn=BatchNorm2d)``,
    centred padding per dimension (what the official CUDA kernel does)."""
    return nn.Sequential(
        collections.OrderedDict(
            conv=nn.Conv2d(
                channels,
                channels, (kh, kw),
                padding=(kh // 2, kw // 2),
                groups=channels,
                bias=False),
            bn=nn.BatchNorm2d(channels)))


class OfficialLargeKernel(nn.Module):
    """``large_kernel`` with the branch names of each historical variant."""

    def __init__(self, channels, k, s, variant):
        super().__init__()
        self.variant = variant
        if variant == 'LoRA':
            self.LoRA1, self.LoRA2 = conv_bn(channels, k,
                                             s), conv_bn(channels, s, k)
        elif variant == 'Decom':
            self.Decom1, self.Decom2 = conv_bn(channels, k,
                                               s), conv_bn(channels, s, k)
        elif variant == 'lkb_origin':
            self.lkb_origin = conv_bn(channels, k, k)
        else:  # lkb_reparam: the merged dense kernel with a bias
            self.lkb_reparam = nn.Conv2d(
                channels, channels, k, padding=k // 2, groups=channels)
        if variant != 'lkb_reparam' and s < k:
            self.small_conv = conv_bn(channels, s, s)

    def forward(self, x):
        if self.variant == 'lkb_reparam':
            return self.lkb_reparam(x)
        branches = [m for m in self.children()]
        return sum(branch(x) for branch in branches)


class OfficialBlock(nn.Module):

    def __init__(self, dim, k, s, variant):
        super().__init__()
        self.large_kernel = OfficialLargeKernel(dim, k, s, variant)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        y = self.large_kernel(x).permute(0, 2, 3, 1)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return x + (self.gamma * y).permute(0, 3, 1, 2)


class OfficialSLaK(nn.Module):
    """Official classification network (``norm`` + ``head``) or
    dense-prediction backbone (``norm0..3``, ``dense=True``)."""

    def __init__(self, variant, dense=False, num_classes=1000):
        super().__init__()
        dims = [int(d * 1.3) for d in TINY['dims']]
        self.dense = dense
        self.downsample_layers = nn.ModuleList([
            nn.Sequential(
                nn.Conv2d(3, dims[0], 4, stride=4), OfficialLayerNorm(dims[0]))
        ])
        for i in range(3):
            self.downsample_layers.append(
                nn.Sequential(
                    OfficialLayerNorm(dims[i]),
                    nn.Conv2d(dims[i], dims[i + 1], 2, stride=2)))
        self.stages = nn.ModuleList([
            nn.Sequential(*[
                OfficialBlock(dims[i], KERNELS[i], KERNELS[-1], variant)
                for _ in range(depth)
            ]) for i, depth in enumerate(TINY['depths'])
        ])
        if dense:
            for i in range(4):
                self.add_module(f'norm{i}', OfficialLayerNorm(dims[i]))
        else:
            self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
            self.head = nn.Linear(dims[-1], num_classes)

    def forward(self, x):
        outs = []
        for i in range(4):
            x = self.stages[i](self.downsample_layers[i](x))
            if self.dense:
                outs.append(getattr(self, f'norm{i}')(x))
        if self.dense:
            return outs
        return self.head(self.norm(x.mean((-2, -1))))


def randomize(model, seed, zero_fraction=0.4):
    """Random weights, ~``zero_fraction`` exact zeros in every conv /
    linear weight (as SLaK's sparse training leaves them), random BN
    statistics and layer scales of order 1 (so that every block matters).
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() in (2, 4):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
                p.mul_(torch.rand(p.shape, generator=gen) >= zero_fraction)
            else:
                p.copy_(0.5 +
                        torch.rand(p.shape, generator=gen) if name.endswith((
                            'weight', 'gamma'
                        )) else torch.randn(p.shape, generator=gen) * 0.1)
        for name, b in model.named_buffers():
            if name.endswith('running_mean'):
                b.copy_(torch.randn(b.shape, generator=gen) * 0.1)
            elif name.endswith('running_var'):
                b.copy_(0.5 + torch.rand(b.shape, generator=gen))
    return model.eval()


def official_args():
    return argparse.Namespace(
        model='SLaK_tiny',
        kernel_size=KERNELS,
        width_factor=1.3,
        sparse=True,
        sparsity=0.4,
        lr=4e-3,
        output_dir='/checkpoints/SLaK_tiny')


# ----------------------------------------------------------------------
# slak_mm models from the published configs
# ----------------------------------------------------------------------
def _sync_bn_to_bn(cfg):
    if isinstance(cfg, dict):
        for key, value in cfg.items():
            if key == 'type' and value == 'SyncBN':
                cfg[key] = 'BN'
            else:
                _sync_bn_to_bn(value)
    elif isinstance(cfg, list):
        for item in cfg:
            _sync_bn_to_bn(item)
    return cfg


def build_from_config(name, **backbone):
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', name))
    _sync_bn_to_bn(cfg.model)
    return build_model(cfg, init_cfg=None, **backbone).eval()


VARIANT_BACKBONE = {
    'LoRA': {},
    'Decom': {},
    'lkb_origin': dict(mixer_cfg=dict(decompose=False)),
    'lkb_reparam': dict(mixer_cfg=dict(decompose=False), deploy=True),
}


# ----------------------------------------------------------------------
# classification
# ----------------------------------------------------------------------
@pytest.mark.parametrize('variant', list(VARIANT_BACKBONE))
def test_classification_conversion_is_exact(tmp_path, variant):
    official = randomize(OfficialSLaK(variant), seed=0)
    official_ema = randomize(OfficialSLaK(variant), seed=1)
    src, dst = str(tmp_path / 'official.pth'), str(tmp_path / 'mm.pth')
    torch.save(
        dict(
            model=official.state_dict(),
            model_ema=official_ema.state_dict(),
            epoch=299,
            args=official_args()), src)

    for key, reference in (('model', official), ('model_ema', official_ema)):
        summary = converter_main('cls', [src, dst, '--key', key])
        assert summary['variant'] == variant
        # every official tensor has a counterpart
        assert summary['num_tensors'] == len(reference.state_dict())
        assert summary['dropped'] == []
        assert summary['density'] == pytest.approx(0.6, abs=0.01)

        model = build_from_config('slak_t_in1k.py',
                                  **VARIANT_BACKBONE[variant])
        load_checkpoint(model, dst, map_location='cpu', strict=True)
        x = torch.randn(
            2, 3, 96, 96, generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            expected = reference(x)
            logits = model(x, mode='tensor')
        assert logits.shape == (2, 1000)
        torch.testing.assert_close(
            logits,
            expected,
            atol=ATOL * max(1., expected.abs().max().item()),
            rtol=ATOL)
        # the model holds the official tensors, zeros included
        converted = torch.load(dst, weights_only=True)['state_dict']
        ours = model.state_dict()
        assert all(torch.equal(ours[k], v) for k, v in converted.items())
        zeros = sum(
            int((v == 0).sum()) for v in converted.values()
            if v.is_floating_point())
        assert zeros == sum(
            int((v == 0).sum()) for v in reference.state_dict().values()
            if v.is_floating_point())


def test_classification_script_and_summary(tmp_path):
    official = randomize(OfficialSLaK('LoRA'), seed=3)
    src, dst = str(tmp_path / 'official.pth'), str(tmp_path / 'mm.pth')
    torch.save(dict(model=official.state_dict(), args=official_args()), src)
    out = run_tool([
        sys.executable, 'tools/model_converters/slak_to_mmpretrain.py', src,
        dst
    ])
    assert 'large-kernel key variant: LoRA' in out
    assert f'tensors converted: {len(official.state_dict())}' in out
    assert re.search(
        r'non-zero fraction of backbone conv/linear weights: 0\.(59|60)\d\d '
        r'\(sparsity 0\.(39|40)\d\d\)', out)
    converted = torch.load(dst, map_location='cpu', weights_only=True)
    assert converted['meta']['source_key'] == 'model'
    assert 'head.fc.weight' in converted['state_dict']
    assert 'backbone.norm3.weight' in converted['state_dict']
    assert 'backbone.stages.2.8.large_kernel.branch_sxs.bn.running_var' \
        in converted['state_dict']


# ----------------------------------------------------------------------
# segmentation and detection
# ----------------------------------------------------------------------
#: Head / neck keys written in the official mmseg 0.x / mmdet 2.x files of
#: these models (UPerHead + FCNHead; FPN + RPNHead + 3 ConvFCBBoxHead
#: 4conv1fc with SyncBN + 3 FCNMaskHead), as mmseg 0.x / mmdet 2.x name
#: their modules. The converted files must load them by these names.
MMSEG_0X_KEYS = [
    'decode_head.conv_seg.weight', 'decode_head.psp_modules.3.1.conv.weight',
    'decode_head.psp_modules.0.1.bn.running_var',
    'decode_head.bottleneck.conv.weight',
    'decode_head.lateral_convs.2.bn.weight',
    'decode_head.fpn_convs.0.conv.weight',
    'decode_head.fpn_bottleneck.bn.bias', 'auxiliary_head.convs.0.conv.weight',
    'auxiliary_head.convs.0.bn.running_mean', 'auxiliary_head.conv_seg.bias'
]
MMDET_2X_KEYS = [
    'neck.lateral_convs.3.conv.weight', 'neck.fpn_convs.0.conv.bias',
    'rpn_head.rpn_conv.weight', 'rpn_head.rpn_cls.weight',
    'rpn_head.rpn_reg.bias', 'roi_head.bbox_head.0.shared_convs.3.conv.weight',
    'roi_head.bbox_head.1.shared_convs.0.bn.running_var',
    'roi_head.bbox_head.2.shared_fcs.0.weight',
    'roi_head.bbox_head.0.fc_cls.weight', 'roi_head.bbox_head.2.fc_reg.bias',
    'roi_head.mask_head.0.convs.3.conv.weight',
    'roi_head.mask_head.1.upsample.weight',
    'roi_head.mask_head.2.conv_logits.bias'
]

DENSE_CASES = {
    'seg': ('upernet_slak_t_ade20k.py', 'slak_to_mmseg.py', MMSEG_0X_KEYS),
    'det':
    ('cascade_mask_rcnn_slak_t_coco_3x.py', 'slak_to_mmdet.py', MMDET_2X_KEYS),
}


def _official_dense_file(path, task, official, variant):
    """An official mmseg 0.x / mmdet 2.x file: the official backbone's
    weights under ``backbone.``, random head weights under the 0.x / 2.x
    names (taken from the slak_mm model, whose head keys the test checks
    against the hand-written 0.x / 2.x lists)."""
    config = DENSE_CASES[task][0]
    donor = build_from_config(config, **VARIANT_BACKBONE[variant])
    gen = torch.Generator().manual_seed(5)
    state_dict = collections.OrderedDict(
        ('backbone.' + k, v) for k, v in official.state_dict().items())
    for key, value in donor.state_dict().items():
        if not key.startswith('backbone.'):
            if not value.is_floating_point():
                state_dict[key] = value
            elif key.endswith('running_var'):
                state_dict[key] = 0.5 + torch.rand(value.shape, generator=gen)
            else:
                state_dict[key] = torch.randn(value.shape, generator=gen) * .1
    torch.save(
        dict(
            meta=dict(mmseg_version='0.20.2', CLASSES=('wall', 'building'))
            if task == 'seg' else dict(mmdet_version='2.25.0'),
            state_dict=state_dict), path)
    return state_dict


@pytest.mark.parametrize('task', list(DENSE_CASES))
@pytest.mark.parametrize('variant', ['LoRA', 'Decom', 'lkb_origin'])
def test_dense_prediction_conversion_is_exact(tmp_path, task, variant):
    config, script, head_keys = DENSE_CASES[task]
    official = randomize(OfficialSLaK(variant, dense=True), seed=7)
    src, dst = str(tmp_path / 'official.pth'), str(tmp_path / 'mm.pth')
    written = _official_dense_file(src, task, official, variant)
    assert set(head_keys) <= set(written)

    summary = converter_main(task, [src, dst])
    assert summary['variant'] == variant
    assert summary['num_tensors'] == len(written)
    assert summary['dropped'] == []

    model = build_from_config(config, **VARIANT_BACKBONE[variant])
    load_checkpoint(model, dst, map_location='cpu', strict=True)
    x = torch.randn(1, 3, 128, 96, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        expected = official(x)
        feats = model.backbone(x)
        assert len(feats) == 4
        for ours, ref in zip(feats, expected):
            torch.testing.assert_close(ours, ref, atol=ATOL, rtol=RTOL)
        # the heads see the converted weights: same outputs from the
        # official features and from the slak_mm backbone's
        if task == 'seg':
            torch.testing.assert_close(
                model.decode_head(feats),
                model.decode_head(expected),
                atol=ATOL,
                rtol=RTOL)
        else:
            for ours, ref in zip(model.neck(feats), model.neck(expected)):
                torch.testing.assert_close(ours, ref, atol=ATOL, rtol=RTOL)
        for key in head_keys:
            torch.testing.assert_close(model.state_dict()[key], written[key])


# ----------------------------------------------------------------------
# safety and errors
# ----------------------------------------------------------------------
class NotAllowed:
    """An object the safe loader must refuse."""


def test_safe_loader_allows_args_namespace_only(tmp_path):
    path = str(tmp_path / 'official.pth')
    torch.save(dict(model={'w': torch.ones(1)}, args=official_args()), path)
    # plain weights_only loading fails on the Namespace ...
    with pytest.raises(Exception, match='Namespace'):
        torch.load(path, weights_only=True)
    # ... the converter's loader allows it
    checkpoint = load_official_checkpoint(path)
    assert checkpoint['args'].model == 'SLaK_tiny'

    torch.save(dict(model={'w': torch.ones(1)}, extra=NotAllowed()), path)
    with pytest.raises(OfficialCheckpointError, match='--unsafe-load'):
        load_official_checkpoint(path)
    assert isinstance(
        load_official_checkpoint(path, unsafe_load=True)['extra'], NotAllowed)


def test_keys_matching_nothing_raise(tmp_path):
    official = OfficialSLaK('LoRA').state_dict()
    # the whole file instead of its `model` entry
    with pytest.raises(OfficialCheckpointError, match=r'`stages\.` .*--key'):
        convert_slak_state_dict(dict(model=official, epoch=1), 'cls')
    # a classification file given to the segmentation converter
    with pytest.raises(OfficialCheckpointError, match='`backbone.stages.`'):
        convert_slak_state_dict(official, 'seg')
    # the cls converter asked for an entry the file lacks
    src = str(tmp_path / 'official.pth')
    torch.save(dict(model=official, args=official_args()), src)
    with pytest.raises(SystemExit):
        converter_main(
            'cls', [src, str(tmp_path / 'x.pth'), '--key', 'model_ema'])
    with pytest.raises(OfficialCheckpointError, match='unknown task'):
        convert_slak_state_dict(official, 'pose')
    broken = dict(official)
    broken['stages.0.0.large_kernel.LoRA3.conv.weight'] = torch.ones(1)
    with pytest.raises(OfficialCheckpointError, match='LoRA3'):
        convert_slak_state_dict(broken, 'cls')


def _checked_init(module, path, prefix=None):
    """Initialize ``module`` from ``path`` with ``CheckedPretrained``."""
    module.init_cfg = dict(
        type='CheckedPretrained', checkpoint=path, prefix=prefix)
    module._is_init = False
    module.init_weights()


def test_loading_unconverted_or_mismatched_files_raises(tmp_path):
    model = build_from_config('slak_t_in1k.py')
    official = OfficialSLaK('LoRA').state_dict()
    # an unconverted official file: refused, with the converter named
    path = str(tmp_path / 'official.pth')
    torch.save(dict(model=official, args=official_args()), path)
    with pytest.raises(ValueError, match='slak_to_mmpretrain'):
        _checked_init(model, path)
    # weights left under `model` (no Namespace): nothing matches
    torch.save(dict(model=official), path)
    with pytest.raises(ValueError, match='no key matches'):
        _checked_init(model, path)
    # official names at the top level: refused, converter named
    torch.save(official, path)
    with pytest.raises(ValueError, match='official SLaK'):
        _checked_init(model, path)
    # a partial match loads, and the key lists are returned / logged
    converted, _ = convert_slak_state_dict(official, 'cls')
    del converted['head.fc.weight']
    converted['head.extra'] = torch.ones(1)
    torch.save(dict(state_dict=converted), path)
    missing, unexpected = check_checkpoint_keys(model,
                                                load_checkpoint_file(path))
    assert missing == ['head.fc.weight'] and unexpected == ['head.extra']
    _checked_init(model, path)
    loaded = model.state_dict()
    assert all(
        torch.equal(loaded[k], v) for k, v in converted.items()
        if k != 'head.extra')
    # a CheckedPretrained init_cfg with the wrong prefix fails instead of
    # warning
    backbone = build_from_config('slak_t_in1k.py').backbone
    with pytest.raises(ValueError, match='prefix `encoder.`'):
        _checked_init(backbone, path, prefix='encoder.')


@pytest.mark.slow
def test_converted_file_runs_through_tools_test(tmp_path, shared_data):
    """README row: official file -> converter -> tools/test.py output."""
    root = osp.join(shared_data, 'imagenet_mini')
    if not osp.isdir(root):
        pytest.skip(f'{root} not found')
    official = randomize(OfficialSLaK('LoRA'), seed=11)
    src, dst = str(tmp_path / 'official.pth'), str(tmp_path / 'mm.pth')
    torch.save(dict(model=official.state_dict(), args=official_args()), src)
    run_tool([
        sys.executable, 'tools/model_converters/slak_to_mmpretrain.py', src,
        dst
    ])
    out = run_tool([
        sys.executable, 'tools/test.py', 'configs/slak_t_in1k.py', dst,
        '--work-dir',
        str(tmp_path / 'work'), '--cfg-options',
        f'test_dataloader.dataset.data_root={root}',
        'test_dataloader.batch_size=16', 'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False',
        'test_dataloader.dataset.indices=32'
    ])
    assert 'accuracy/top1' in out
    assert 'model keys found; missing keys: [];' in out
    # the unconverted file is refused with the converter named (the
    # check runs as mmengine loads the file, after the test data is set up)
    with pytest.raises(AssertionError, match='slak_to_mmpretrain'):
        run_tool([
            sys.executable, 'tools/test.py', 'configs/slak_t_in1k.py', src,
            '--work-dir',
            str(tmp_path / 'work2'), '--cfg-options',
            f'test_dataloader.dataset.data_root={root}',
            'test_dataloader.num_workers=0',
            'test_dataloader.persistent_workers=False',
            'test_dataloader.dataset.indices=32'
        ])
