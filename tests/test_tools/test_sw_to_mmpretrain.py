"""Tests of the official ShiftwiseConv checkpoint converter
(``slak_mm/converters/shiftwise.py`` and
``tools/model_converters/sw_to_mmpretrain.py``).

No official file is downloaded: :func:`official_key` writes our
classifier's keys in the official layout (``ShiftWise_v1`` of
``backbones/SW_v1_slak.py`` and ``ShiftWise_v2`` of
``backbones/SW_v2_unirep.py``, lidc54/shift-wiseConv), which is what a
``main.py`` checkpoint holds under ``model``.
"""
import argparse
import importlib
import os.path as osp
import re
import runpy
import sys

import pytest
import torch

import slak_mm  # noqa: F401  (registers slak_mm.ShiftWiseV1 / V2)
from slak_mm.converters import OfficialCheckpointError, convert_sw_state_dict
from ..conftest import REPO_ROOT
from slak_mm.apis import build_model

TINY = dict(depths=[1, 1, 2, 1], channels=[8, 16, 16, 24])
KERNELS = [9, 7, 5, 5, 3]
BUFFERS = ('rep_index', 'ghost_index', 'order_h', 'order_v', 'small_index')

#: slak_mm block children -> official ones, per version
_CHILDREN = {
    'v1': [('pointwise_conv1.', 'pwconv1.'), ('pointwise_conv2.', 'pwconv2.')],
    'v2': [('pointwise_conv1.', 'pwconv1.1.'), ('grn.', 'act.1.'),
           ('pointwise_conv2.', 'pwconv2.0.'), ('norm2.', 'pwconv2.2.'),
           ('se.conv1.conv.', 'se.down.'), ('se.conv2.conv.', 'se.up.')],
}
_LARGE_KERNEL = [('norm_h.', 'bn_lora1.'), ('norm_v.', 'bn_lora2.'),
                 ('norm_small.', 'bn_small.')]


def official_key(name, version, merged=False):
    """The official name of a key of our ``ImageClassifier`` (None for the
    SW index buffers, which the official layers do not save)."""
    if name.startswith('head.fc.'):
        return 'head.' + name[len('head.fc.'):]
    assert name.startswith('backbone.')
    name = name[len('backbone.'):]
    if re.match(r'^norm\d\.', name):
        return 'norm.' + name.split('.', 1)[1]
    if name.startswith('downsample_layers.'):
        return name
    block, rest = re.match(r'^(stages\.\d+\.\d+\.)(.+)$', name).groups()
    if rest.startswith('large_kernel.'):
        rest = rest[len('large_kernel.'):]
        if rest in BUFFERS:
            return None
        path = re.match(r'^paths\.(\d+)\.weight$', rest)
        if path is not None:
            rest = 'LoRA.weight' if merged else \
                f'LoRAs.{path.group(1)}.weight'
        for ours, theirs in _LARGE_KERNEL:
            if rest.startswith(ours):
                rest = theirs + rest[len(ours):]
        return block + 'large_kernel.' + rest
    for ours, theirs in _CHILDREN[version]:
        if rest.startswith(ours):
            rest = theirs + rest[len(ours):]
    return block + rest


def to_official(state_dict, version, merged=False):
    weights = {}
    for name, tensor in state_dict.items():
        new = official_key(name, version, merged)
        if new is None:
            continue
        if '.act.1.' in new:  # official GRNwithNHWC: (1, 1, 1, C)
            tensor = tensor.reshape(1, 1, 1, -1)
        weights[new] = tensor.clone()
    return weights


def build_classifier(version, seed=123, num_paths=2):
    """A toy SW-v1 / SW-v2 ``ImageClassifier`` (``TINY``, kernels
    ``KERNELS``)."""
    from mmengine.registry import DefaultScope
    from mmpretrain.models import ImageClassifier
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return ImageClassifier(
            backbone=dict(
                type=f'slak_mm.ShiftWise{version.upper()}',
                arch=TINY,
                kernel_size=KERNELS,
                mixer_cfg=dict(seed=seed, num_paths=num_paths),
                init_cfg=None),
            head=dict(
                type='LinearClsHead',
                num_classes=10,
                in_channels=TINY['channels'][-1]))


def randomize(model):
    torch.manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0, .3)
        for name, buffer in model.named_buffers():
            if name.endswith('running_var'):
                buffer.uniform_(.5, 2.)
            elif name.endswith('running_mean'):
                buffer.normal_(0, .3)


@pytest.mark.parametrize('version,merged', [('v1', False), ('v2', False),
                                            ('v2', True)])
def test_converted_official_weights_give_the_same_outputs(version, merged):
    source = build_classifier(version)
    randomize(source)
    if merged:  # official merge_branches: one `LoRA` conv per layer
        source.backbone.switch_to_deploy()
    source.eval()
    official = to_official(source.state_dict(), version, merged)
    assert not any('rep_index' in k or 'order_h' in k for k in official)
    assert 'stages.0.0.large_kernel.bn_lora1.weight' in official
    converted, summary = convert_sw_state_dict(official)
    assert summary['version'] == version and summary['dropped'] == []
    assert summary['num_head'] == 2
    # a target built with other random indices: the converter restores
    # the official (seed 123) ones
    target = build_classifier(
        version, seed=7, num_paths=1 if merged else 2).eval()
    assert not torch.equal(target.backbone.stages[0][0].large_kernel.order_h,
                           source.backbone.stages[0][0].large_kernel.order_h)
    target.load_state_dict(converted, strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = source(x, mode='tensor')
        out = target(x, mode='tensor')
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)
    for name, buffer in source.state_dict().items():
        torch.testing.assert_close(converted[name], buffer, rtol=0, atol=0)
    cfg = summary['backbone_cfg']
    assert cfg['type'] == f'slak_mm.ShiftWise{version.upper()}'
    assert cfg['arch'] == TINY and cfg['small_kernel_size'] == 3
    assert cfg['mixer_cfg']['num_paths'] == (1 if merged else 2)
    # nk = ceil(K / k) per stage
    assert [s['num_pieces'] for s in summary['stages']] == [3, 3, 2, 2]


def test_converted_sw_t_loads_into_the_published_config():
    """All keys and shapes of configs/sw_t_in1k.py (SW-v2-T, 1000 classes)
    are produced, and no other."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', 'sw_t_in1k.py'))
    model = build_model(cfg, init_cfg=None)
    state = model.state_dict()
    official = to_official(state, 'v2')
    assert 'downsample_layers.0.3.weight' in official
    assert official['stages.2.17.act.1.gamma'].shape == (1, 1, 1, 1280)
    converted, summary = convert_sw_state_dict(official)
    assert set(converted) == set(state)
    for name, tensor in converted.items():
        assert tensor.shape == state[name].shape, name
        assert tensor.dtype == state[name].dtype, name
    model.load_state_dict(converted, strict=True)
    assert summary['backbone_cfg']['arch'] == dict(
        depths=[3, 3, 18, 3], channels=[80, 160, 320, 640])
    # kernels 51 / 49 / 47 / 13 with k = 3
    assert [s['num_pieces'] for s in summary['stages']] == [17, 17, 16, 5]


def test_converter_errors():
    with pytest.raises(
            OfficialCheckpointError, match='no official ShiftwiseConv key'):
        convert_sw_state_dict({'foo.weight': torch.zeros(1)})
    with pytest.raises(OfficialCheckpointError, match='slak_to_mmpretrain'):
        convert_sw_state_dict(
            {'stages.0.0.large_kernel.LoRA1.conv.weight': torch.zeros(1)})
    source = build_classifier('v1')
    official = to_official(source.state_dict(), 'v1')
    with pytest.raises(OfficialCheckpointError, match='ghost-ratio'):
        convert_sw_state_dict(official, ghost_ratio=.5)
    with pytest.raises(OfficialCheckpointError, match='unexpected key'):
        convert_sw_state_dict(official, version='v2')
    with pytest.raises(OfficialCheckpointError, match='unknown SW version'):
        convert_sw_state_dict(official, version='v3')
    no_bn = {k: v for k, v in official.items() if '.bn_' not in k}
    with pytest.raises(OfficialCheckpointError, match='without BN'):
        convert_sw_state_dict(no_bn)


def test_tool_converts_a_main_py_checkpoint(tmp_path, monkeypatch, capsys):
    source = build_classifier('v2')
    randomize(source)
    official = to_official(source.state_dict(), 'v2')
    src = tmp_path / 'official.pth'
    # main.py layout; DDP-saved keys carry `module.`
    torch.save(
        dict(
            model={
                'module.' + k: v
                for k, v in official.items()
            },
            epoch=299,
            args=argparse.Namespace(model='ShiftWise_v2_tiny')), src)
    dst = tmp_path / 'converted.pth'
    folder = osp.join(REPO_ROOT, 'tools', 'model_converters')
    script = osp.join(folder, 'sw_to_mmpretrain.py')
    # run as a script: its folder first on sys.path
    monkeypatch.syspath_prepend(folder)
    monkeypatch.setattr(sys, 'argv', [script, str(src), str(dst)])
    runpy.run_path(script, run_name='__main__')
    out = capsys.readouterr().out
    assert 'ShiftWise_v2' in out and 'stage 0: depth 1' in out
    checkpoint = torch.load(dst)
    assert checkpoint['meta']['sw_version'] == 'v2'
    target = build_classifier('v2', seed=1)
    target.load_state_dict(checkpoint['state_dict'], strict=True)
    # a file without SW keys: a clear error, exit status 2
    bad = tmp_path / 'bad.pth'
    torch.save(dict(model={'foo.weight': torch.zeros(1)}), bad)
    tool = importlib.import_module('sw_to_mmpretrain')
    with pytest.raises(SystemExit) as exit_info:
        tool.main([str(bad), str(tmp_path / 'x.pth')])
    assert exit_info.value.code == 2
    assert 'no official ShiftwiseConv key' in capsys.readouterr().err
