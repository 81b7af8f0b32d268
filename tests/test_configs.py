"""Every config in configs/ builds its model and optimizer (no weights);
the configs inherit their backbones instead of restating them."""
import ast
import glob
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

from slak_mm.models import LargeKernelConvNeXt
from slak_mm.utils import fall_back_to_fp32_without_cuda

from .conftest import REPO_ROOT
from slak_mm.apis import build_model

ALL_CONFIG_FILES = sorted(
    glob.glob(osp.join(REPO_ROOT, 'configs', '**', '*.py'), recursive=True))
CONFIGS = [p for p in ALL_CONFIG_FILES if '_base_' not in p]
TEST_CONFIGS = sorted(
    glob.glob(osp.join(REPO_ROOT, 'tests', 'data', 'configs', '*.py')))
SW_T_BASE = osp.join(REPO_ROOT, 'configs', '_base_', 'models', 'sw_t.py')
BACKBONE_TYPES = ('slak_mm.SLaK', 'slak_mm.ShiftWiseV1', 'slak_mm.ShiftWiseV2')
SYNC_BN = dict(type='SyncBN', requires_grad=True)


def _ids(paths):
    return [osp.relpath(p, REPO_ROOT) for p in paths]


def test_configs_found():
    names = {osp.relpath(p, REPO_ROOT) for p in CONFIGS}
    for size in 'tsb':
        assert f'configs/upernet_slak_{size}_ade20k.py' in names


@pytest.mark.parametrize(
    'path', CONFIGS, ids=[osp.relpath(p, REPO_ROOT) for p in CONFIGS])
def test_config_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.custom_imports == dict(
        imports=['slak_mm'], allow_failed_imports=False)
    assert cfg.model.backbone.type in BACKBONE_TYPES
    model = build_model(cfg)
    assert isinstance(model.backbone, LargeKernelConvNeXt)
    assert type(model.backbone).__name__ == \
        cfg.model.backbone.type.split('.', 1)[1]
    if cfg.default_scope == 'mmseg':
        assert model.backbone.channels == list(
            cfg.model.decode_head.in_channels)
        assert model.backbone.channels[2] == \
            cfg.model.auxiliary_head.in_channels
        model.eval()
        with torch.no_grad():
            logits = model(torch.randn(1, 3, 64, 64), mode='tensor')
        assert logits.shape == (1, cfg.model.decode_head.num_classes, 16, 16)
    fall_back_to_fp32_without_cuda(cfg)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    n_params = sum(
        len(g['params']) for g in optim_wrapper.optimizer.param_groups)
    assert n_params == sum(1 for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize('size,arch,drop_path,num_layers,channels', [
    ('t', 'tiny', 0.4, 6, [124, 249, 499, 998]),
    ('s', 'small', 0.3, 12, [124, 249, 499, 998]),
    ('b', 'base', 0.4, 12, [166, 332, 665, 1331]),
])
def test_published_ade20k_recipe(size, arch, drop_path, num_layers, channels):
    cfg = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', f'upernet_slak_{size}_ade20k.py'))
    backbone = cfg.model.backbone
    assert backbone.arch == arch
    assert backbone.kernel_size == [51, 49, 47, 13, 5]
    assert backbone.width_factor == 1.3
    assert backbone.drop_path_rate == drop_path
    assert backbone.out_indices == [0, 1, 2, 3]
    assert backbone.init_cfg.type == 'CheckedPretrained'
    assert backbone.init_cfg.prefix == 'backbone.'
    assert backbone.init_cfg.checkpoint == \
        f'checkpoints/slak_{arch}_in1k_300e.pth'
    assert cfg.model.decode_head.type == 'UPerHead'
    assert cfg.model.decode_head.channels == 512
    assert cfg.model.decode_head.in_channels == channels
    assert cfg.model.auxiliary_head.type == 'FCNHead'
    assert cfg.model.auxiliary_head.in_index == 2
    assert cfg.model.test_cfg == dict(
        mode='slide', crop_size=(512, 512), stride=(341, 341))
    assert cfg.crop_size == (512, 512)
    optim = cfg.optim_wrapper
    # fp32 as the official configs (tools/train.py --amp switches to AMP)
    assert optim.type == 'OptimWrapper'
    assert 'loss_scale' not in optim
    assert optim.optimizer.type == 'AdamW'
    assert optim.optimizer.lr == 1e-4
    assert optim.optimizer.weight_decay == 0.05
    assert optim.constructor == 'slak_mm.LearningRateDecayOptimizerConstructor'
    assert optim.paramwise_cfg == dict(
        decay_rate=0.9, decay_type='stage_wise', num_layers=num_layers)
    warmup, poly = cfg.param_scheduler
    assert (warmup.type, warmup.end) == ('LinearLR', 1500)
    assert (poly.type, poly.begin, poly.end) == ('PolyLR', 1500, 160000)
    assert cfg.train_cfg.max_iters == 160000
    # 16 images per iteration as 8 GPUs x 2
    assert cfg.train_dataloader.batch_size == 2
    # downstream fine-tuning keeps the pretrained sparse pattern
    assert cfg.custom_hooks == [
        dict(type='slak_mm.StaticSparseHook', prefix='backbone.')
    ]


def _header(path):
    """The leading comment block of a config file, as one line."""
    lines = []
    with open(path) as f:
        for line in f:
            if not line.startswith('#'):
                break
            lines.append(line.lstrip('#').strip())
    return ' '.join(lines)


@pytest.mark.parametrize(
    'path', CONFIGS, ids=[osp.relpath(p, REPO_ROOT) for p in CONFIGS])
def test_official_norms_precision_and_out_norms(path):
    """As the official code: SyncBN in the large-kernel / SW branches (and
    the ShiftWise v2 block BNs) of every config (the Runner reverts it to
    BN when not distributed), fp32 downstream, and dense-prediction
    backbones whose norm0..3 are not loaded from the classification
    checkpoint. A header mentions mixed precision only as the `--amp`
    option."""
    cfg = Config.fromfile(path)
    backbone = cfg.model.backbone
    assert backbone.mixer_cfg.norm_cfg == SYNC_BN
    if backbone.type == 'slak_mm.ShiftWiseV2':
        assert backbone.block_norm_cfg == SYNC_BN
    optim = cfg.optim_wrapper
    if cfg.default_scope in ('mmseg', 'mmdet'):
        assert backbone.gap_before_final_norm is False
        assert backbone.pretrained_out_norms is False
        assert optim.type == 'OptimWrapper'
        assert 'loss_scale' not in optim
    else:
        assert backbone.get('pretrained_out_norms', True) is True
    header = _header(path)
    assert 'AmpOptimWrapper' not in header
    for match in re.finditer('mixed precision', header):
        assert '--amp' in header[max(0, match.start() - 80):match.end()], \
            header


@pytest.mark.parametrize(
    'path', CONFIGS + TEST_CONFIGS, ids=_ids(CONFIGS + TEST_CONFIGS))
def test_backbone_args_use_the_mixer_cfg_api(path):
    """`norm_cfg` of a backbone is its LayerNorms (never a BN); the branch
    norm and the SW options live in `mixer_cfg`."""
    backbone = Config.fromfile(path).model.backbone
    assert backbone.type in BACKBONE_TYPES
    assert 'BN' not in backbone.get('norm_cfg', {}).get('type', 'LN2d')
    for old_name in ('sw_cfg', 'fast_path', 'decompose'):
        assert old_name not in backbone, old_name
    assert 'BN' in backbone.mixer_cfg.norm_cfg.type


def _string_constants(path):
    with open(path) as f:
        tree = ast.parse(f.read())
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def _backbone_dicts_with_delete(path):
    """`backbone=dict(_delete_=True, ...)` calls in a config's code."""
    with open(path) as f:
        tree = ast.parse(f.read())
    return [
        node for node in ast.walk(tree)
        if isinstance(node, ast.keyword) and node.arg == 'backbone'
        and isinstance(node.value, ast.Call) and any(
            k.arg == '_delete_' for k in node.value.keywords)
    ]


def test_backbones_are_defined_once_in_base_files():
    """Backbone types are named only in configs/_base_/models/ (SW-T in
    sw_t.py alone); no config replaces an inherited backbone wholesale."""
    where = {}
    for path in ALL_CONFIG_FILES:
        for name in _string_constants(path) & set(BACKBONE_TYPES):
            where.setdefault(name, []).append(osp.relpath(path, REPO_ROOT))
    assert where.pop('slak_mm.ShiftWiseV2') == [
        'configs/_base_/models/sw_t.py'
    ]
    assert 'slak_mm.ShiftWiseV1' not in where
    assert sorted(where.pop('slak_mm.SLaK')) == [
        f'configs/_base_/models/{name}.py'
        for name in ('cascade_mask_rcnn_slak_fpn', 'faster_rcnn_slak_fpn',
                     'slak_cls', 'upernet_slak')
    ]
    for path in ALL_CONFIG_FILES + TEST_CONFIGS:
        assert not _backbone_dicts_with_delete(path), path


def test_sw_t_leaves_inherit_the_one_sw_t_backbone():
    """The four SW-T recipes take their backbone from _base_/models/sw_t.py
    and build on the shared _base_ files, not on SLaK leaf configs."""
    sw_t = Config.fromfile(SW_T_BASE).sw_t_backbone.to_dict()
    leaves = {}
    for path in CONFIGS:
        cfg = Config.fromfile(path)
        if cfg.model.backbone.type == 'slak_mm.ShiftWiseV2':
            leaves[osp.relpath(path, REPO_ROOT)] = cfg
    assert sorted(leaves) == [
        'configs/cascade_mask_rcnn_sw_t_coco_3x.py',
        'configs/faster_rcnn_sw_t_voc2007.py', 'configs/sw_t_in1k.py',
        'configs/upernet_sw_t_ade20k.py'
    ]
    for name, cfg in leaves.items():
        backbone = cfg.model.backbone.to_dict()
        assert {k: backbone[k] for k in sw_t} == sw_t, name
        with open(osp.join(REPO_ROOT, name)) as f:
            bases = ast.literal_eval(
                re.search(r'^_base_ = (\[.*?\])', f.read(),
                          re.M | re.S).group(1))
        assert './_base_/models/sw_t.py' in bases, name
        assert all(b.startswith('./_base_/') for b in bases), (name, bases)
