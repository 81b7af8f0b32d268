"""SLaK image classification with mmpretrain: the ImageNet-1k configs,
their published recipe, and end-to-end runs of tools/train.py,
tools/test.py and mmpretrain's inference API on real ImageNet images."""
import glob
import json
import os.path as osp
import re
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

from slak_mm.apis import build_model
from slak_mm.models import SLaK
from slak_mm.utils import (checkpoint_safe_globals, load_checkpoint_file,
                           scale_lr_with_accumulation)

from .conftest import REPO_ROOT
from .tool_runs import data_root_options as _data_options
from .tool_runs import run_tool as _run

CONFIG_DIR = osp.join(REPO_ROOT, 'configs')
MINI_CONFIG = osp.join(REPO_ROOT, 'tests', 'data', 'configs',
                       'slak_mini_in1k.py')
# (tests/test_configs.py builds every config; the 31/51 ablations differ
# from these only in kernel size or schedule)
CLS_CONFIGS = [
    'slak_t_in1k.py', 'slak_s_in1k.py', 'slak_b_in1k.py',
    'ablation/slak_t_k61_in1k_120e.py', 'demo/slak_t_in1k_sample.py'
]
# size: (arch, drop path, channels, per-GPU batch, accumulative_counts)
RECIPES = {
    't': ('tiny', 0.1, [124, 249, 499, 998], 128, 4),
    's': ('small', 0.4, [124, 249, 499, 998], 64, 8),
    'b': ('base', 0.5, [166, 332, 665, 1331], 32, 16),
}


def _load(name):
    return Config.fromfile(osp.join(CONFIG_DIR, name))


@pytest.mark.parametrize('name', CLS_CONFIGS)
def test_classifier_builds_and_forwards(name):
    from mmpretrain.models import ImageClassifier
    from mmpretrain.structures import DataSample
    cfg = _load(name)
    assert cfg.default_scope == 'mmpretrain'
    model = build_model(cfg)
    assert isinstance(model, ImageClassifier)
    assert isinstance(model.backbone, SLaK)
    assert model.neck is None
    backbone = model.backbone
    assert backbone.kernel_size == list(cfg.model.backbone.kernel_size)
    assert backbone.out_indices == [3]
    assert backbone.gap_before_final_norm
    num_classes = cfg.model.head.num_classes
    assert cfg.data_preprocessor.num_classes == num_classes
    assert model.head.fc.in_features == backbone.channels[-1]
    assert model.head.fc.out_features == num_classes

    model.eval()
    images = torch.randint(0, 256, (2, 3, 64, 64)).float()
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=images), False)
        feats = model(data['inputs'], mode='tensor')
        preds = model(data['inputs'], [DataSample(), DataSample()],
                      mode='predict')
    assert feats.shape == (2, num_classes)
    assert len(preds) == 2
    for pred in preds:
        assert pred.pred_score.shape == (num_classes, )
        assert float(pred.pred_score.sum()) == pytest.approx(1., abs=1e-4)
        assert 0 <= int(pred.pred_label) < num_classes


@pytest.mark.parametrize('size', sorted(RECIPES))
def test_published_in1k_recipe(size):
    arch, drop_path, channels, batch, counts = RECIPES[size]
    cfg = _load(f'slak_{size}_in1k.py')
    model = cfg.model
    assert cfg.custom_imports == dict(
        imports=['slak_mm'], allow_failed_imports=False)
    assert model.type == 'ImageClassifier'
    backbone = model.backbone
    assert backbone.type == 'slak_mm.SLaK'
    assert backbone.arch == arch
    assert backbone.kernel_size == [51, 49, 47, 13, 5]
    assert backbone.width_factor == 1.3
    assert backbone.drop_path_rate == drop_path
    assert backbone.layer_scale_init_value == 1e-6
    assert backbone.out_indices == -1
    assert backbone.gap_before_final_norm is True
    assert model.neck is None
    head = model.head
    assert head.type == 'LinearClsHead'
    assert (head.num_classes, head.in_channels) == (1000, channels[-1])
    assert head.loss == dict(
        type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')
    assert head.init_cfg.type == 'TruncNormal' and head.init_cfg.std == .02
    assert model.train_cfg.augments == [
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0)
    ]

    optim = cfg.optim_wrapper
    assert optim.optimizer.type == 'AdamW'
    assert optim.optimizer.lr == 4e-3
    assert optim.optimizer.weight_decay == 0.05
    assert optim.paramwise_cfg == dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        flat_decay_mult=0.0,
        custom_keys={'grn': dict(decay_mult=1.0)})
    assert optim.get('clip_grad') is None
    # 4096 images per optimizer step = 8 GPUs x batch x accumulation
    assert cfg.train_dataloader.batch_size == batch
    assert optim.accumulative_counts == counts
    assert 8 * batch * counts == 4096 == cfg.auto_scale_lr.base_batch_size
    warmup, cosine = cfg.param_scheduler
    assert (warmup.type, warmup.begin, warmup.end) == ('LinearLR', 0, 20)
    assert (cosine.type, cosine.begin, cosine.end) == ('CosineAnnealingLR',
                                                       20, 300)
    assert cosine.eta_min == 1e-6
    assert warmup.convert_to_iter_based and cosine.convert_to_iter_based
    assert cfg.train_cfg.max_epochs == 300
    sparse, ema = cfg.custom_hooks
    # dynamic sparse training as published: T updates every 2000 steps
    # with prune rate 0.5, S/B every 100 with 0.3
    assert sparse == dict(
        type='slak_mm.DynamicSparseHook',
        sparsity=0.4,
        init='snip',
        update_interval=2000 if size == 't' else 100,
        prune_rate=0.5 if size == 't' else 0.3,
        growth='random')
    assert ema.type == 'EMAHook' and ema.momentum == 1e-4
    # one EMA update per optimizer step, BN statistics averaged too
    assert ema.interval == counts and ema.update_buffers

    train = {t.type: t for t in cfg.train_dataloader.dataset.pipeline}
    assert train['RandomResizedCrop'].scale == 224
    assert train['RandomResizedCrop'].interpolation == 'bicubic'
    rand_aug = train['RandAugment']
    assert (rand_aug.policies, rand_aug.num_policies, rand_aug.total_level,
            rand_aug.magnitude_level,
            rand_aug.magnitude_std) == ('timm_increasing', 2, 10, 9, 0.5)
    assert train['RandomErasing'].erase_prob == 0.25
    test = {t.type: t for t in cfg.test_dataloader.dataset.pipeline}
    # crop ratio 0.875: 224 / 0.875 = 256
    assert test['ResizeEdge'].scale == 256
    assert test['ResizeEdge'].interpolation == 'bicubic'
    assert test['CenterCrop'].crop_size == 224
    assert cfg.val_evaluator == dict(type='Accuracy', topk=(1, 5))
    assert cfg.test_evaluator == cfg.val_evaluator
    assert cfg.test_dataloader.dataset.type == 'ImageNet'


@pytest.mark.parametrize('kernels', [31, 51, 61])
def test_kernel_ablation_configs(kernels):
    cfg = _load(f'ablation/slak_t_k{kernels}_in1k_120e.py')
    expected = [kernels, kernels - 2, kernels - 4, 13, 5]
    assert cfg.model.backbone.kernel_size == expected
    assert cfg.model.backbone.arch == 'tiny'
    assert cfg.train_cfg.max_epochs == 120
    warmup, cosine = cfg.param_scheduler
    assert (warmup.end, cosine.begin, cosine.end) == (20, 20, 120)
    base = _load('slak_t_in1k.py')
    for key in ('optim_wrapper', 'custom_hooks', 'train_dataloader'):
        assert cfg[key] == base[key], key


def _weight_decays(optim_wrapper):
    """``{id(param): weight decay}`` over the optimizer's groups."""
    return {
        id(param): group['weight_decay']
        for group in optim_wrapper.optimizer.param_groups
        for param in group['params']
    }


def test_weight_decay_skips_1d_parameters():
    """As the official optimizer factory: no weight decay for 1-D
    parameters (norms, layer scale gamma, BN) and biases."""
    cfg = _load('slak_t_in1k.py')
    from mmengine.registry import DefaultScope
    from mmpretrain.models import ImageClassifier
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = ImageClassifier(
            backbone=dict(
                type='slak_mm.SLaK',
                arch=dict(depths=[1, 1, 2, 1], channels=[8, 16, 24, 32]),
                kernel_size=[7, 7, 5, 5, 3]),
            head=dict(type='LinearClsHead', num_classes=10, in_channels=41))
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    decay = _weight_decays(optim_wrapper)
    names = dict(model.named_parameters())
    assert len(decay) == len(names)
    assert any(n.endswith('gamma') for n in names)
    for name, param in names.items():
        expected = 0. if param.ndim == 1 else 0.05
        assert decay[id(param)] == expected, name


@pytest.mark.parametrize('grn_decay_mult', [None, 0.])
def test_sw_weight_decay_on_grn(grn_decay_mult):
    """configs/sw_t_in1k.py decays the GRN gamma / beta of ShiftWise v2
    as the official code (whose (1, 1, 1, 4C) GRN tensors are not 1-D),
    and no other 1-D parameter; custom_keys.grn.decay_mult=0 exempts
    them."""
    from mmengine.registry import DefaultScope
    from mmpretrain.models.utils import GRN
    cfg = _load('sw_t_in1k.py')
    if grn_decay_mult is not None:
        cfg.merge_from_dict({
            'optim_wrapper.paramwise_cfg.custom_keys.grn.decay_mult':
            grn_decay_mult
        })
    assert cfg.model.backbone.block_norm_cfg == dict(
        type='SyncBN', requires_grad=True)
    model = build_model(
        cfg,
        arch=dict(depths=[1, 1, 2, 1], channels=[8, 16, 16, 24]),
        kernel_size=[9, 7, 5, 5, 3])
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    decay = _weight_decays(optim_wrapper)
    names = dict(model.named_parameters())
    assert len(decay) == len(names)
    grn = {
        id(p)
        for m in model.modules() if isinstance(m, GRN) for p in m.parameters()
    }
    assert len(grn) == 2 * 5  # gamma and beta of the 5 blocks
    grn_wd = 0.05 if grn_decay_mult is None else 0.
    for name, param in names.items():
        if id(param) in grn:
            assert param.ndim == 1 and '.grn.' in name, name
            expected = grn_wd
        elif param.ndim == 1:
            expected = 0.  # BN, LN, layer scale, biases
        else:
            expected = 0.05
        assert decay[id(param)] == expected, name


def test_documented_layer_decay_with_mmpretrain_constructor():
    """The layer-decay snippet of configs/slak_t_in1k.py and
    docs/classification.md: mmpretrain's constructor through
    SLaK.get_layer_depth (6 layer ids + 2 for SLaK-T)."""
    from mmengine.registry import DefaultScope
    cfg = _load('demo/slak_t_in1k_sample.py')
    cfg.optim_wrapper.constructor = (
        'LearningRateDecayOptimWrapperConstructor')
    cfg.optim_wrapper.paramwise_cfg = dict(
        layer_decay_rate=0.8,
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        flat_decay_mult=0.0)
    model = build_model(cfg)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    base_lr = cfg.optim_wrapper.optimizer.lr
    scales, decay = {}, {}
    for group in optim_wrapper.optimizer.param_groups:
        for param in group['params']:
            scales[id(param)] = group['lr'] / base_lr
            decay[id(param)] = group['weight_decay']
    names = dict(model.named_parameters())
    assert len(scales) == len(names)
    expected = {
        'head.fc.weight': 1.0,  # id 7
        'backbone.norm3.weight': 1.0,  # id 7
        'backbone.stages.3.0.pointwise_conv1.weight': 0.8,  # id 6
        'backbone.stages.2.8.large_kernel.branch_kxs.conv.weight':
        0.8**2,  # id 5
        'backbone.stages.0.0.gamma': 0.8**6,  # id 1
        'backbone.downsample_layers.0.0.weight': 0.8**7,  # id 0
    }
    for name, scale in expected.items():
        assert scales[id(names[name])] == pytest.approx(scale), name
    assert decay[id(names['backbone.stages.0.0.gamma'])] == 0.
    assert decay[id(names['head.fc.weight'])] == 0.05


def test_auto_scale_lr_counts_accumulation():
    cfg = _load('slak_t_in1k.py')
    assert not scale_lr_with_accumulation(cfg)  # not enabled
    cfg.auto_scale_lr.enable = True
    assert scale_lr_with_accumulation(cfg)
    # mmengine's ratio world_size * batch_size / base_batch_size is then
    # 8 * 128 / 1024 = 1 for the documented 8 x 128 x 4 set-up
    assert cfg.auto_scale_lr.base_batch_size == 1024
    demo = _load('demo/slak_t_in1k_sample.py')
    demo.auto_scale_lr.enable = True
    assert not scale_lr_with_accumulation(demo)
    assert demo.auto_scale_lr.base_batch_size == 4096


# ----------------------------------------------------------------------
# end to end on real images (shared imagenet_mini)
# ----------------------------------------------------------------------
@pytest.fixture(scope='module')
def trained(tmp_path_factory, imagenet_mini):
    """Train the scaled-down classifier for 4 epochs with tools/train.py."""
    work_dir = tmp_path_factory.mktemp('cls_train')
    out = _run([
        sys.executable, 'tools/train.py', MINI_CONFIG, '--work-dir',
        str(work_dir), '--cfg-options', *_data_options(imagenet_mini)
    ])
    return work_dir, out


@pytest.mark.slow
def test_train_loss_decreases(trained):
    work_dir, out = trained
    files = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    assert len(files) == 1, files
    records = [json.loads(line) for line in open(files[0])]
    losses = [r['loss'] for r in records if 'loss' in r]
    # 160 images / 16 per iteration = 10 iterations per epoch, 4 epochs
    assert len(losses) == 40
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    # starts near ln(1000) = 6.9 (1000-way head, label smoothing 0.1)
    assert first > 6., losses
    assert last < 0.85 * first, losses
    # validation ran mmpretrain's Accuracy on the EMA weights
    assert 'accuracy/top1' in out
    ckpt = load_checkpoint_file(osp.join(work_dir, 'epoch_4.pth'))
    assert 'ema_state_dict' in ckpt
    assert ckpt['meta']['dataset_meta']['classes'][0].startswith('tench')


@pytest.mark.slow
def test_test_reports_top1_and_dumps_predictions(trained, imagenet_mini,
                                                 tmp_path):
    work_dir, _ = trained
    out_file = tmp_path / 'preds.pkl'
    out = _run([
        sys.executable, 'tools/test.py', MINI_CONFIG,
        str(work_dir / 'epoch_4.pth'), '--work-dir',
        str(tmp_path), '--out',
        str(out_file), '--cfg-options', *_data_options(imagenet_mini)
    ])
    metrics = glob.glob(str(tmp_path / '*' / '*.json'))
    assert len(metrics) == 1, out[-3000:]
    result = json.load(open(metrics[0]))
    for key in ('accuracy/top1', 'accuracy/top5'):
        assert 0. <= result[key] <= 100., result
    assert result['accuracy/top5'] >= result['accuracy/top1']
    import pickle
    with open(out_file, 'rb') as f:
        preds = pickle.load(f)
    # the first 100 validation images (indices=100 in the config)
    assert len(preds) == 100
    assert preds[0]['pred_score'].shape == (1000, )


@pytest.mark.slow
def test_inference_api_on_real_image(trained, imagenet_mini):
    from mmpretrain import ImageClassificationInferencer
    from mmpretrain.apis import get_model
    work_dir, _ = trained
    ckpt = str(work_dir / 'epoch_4.pth')
    rel = open(osp.join(imagenet_mini, 'meta', 'val.txt')).readline().split()
    image = osp.join(imagenet_mini, 'val', rel[0])

    with checkpoint_safe_globals():  # a Runner checkpoint
        inferencer = ImageClassificationInferencer(
            model=MINI_CONFIG, pretrained=ckpt, device='cpu')
    result, = inferencer(image)
    assert isinstance(result['pred_label'], int)
    assert 0 <= result['pred_label'] < 1000
    assert 0. <= result['pred_score'] <= 1.
    assert result['pred_scores'].shape == (1000, )
    # class names come from the checkpoint's dataset_meta (ImageNet)
    assert isinstance(result['pred_class'], str) and result['pred_class']

    # the same with a model object (mmpretrain's `inference_model` only
    # knows model-zoo models)
    with checkpoint_safe_globals():
        model = get_model(MINI_CONFIG, pretrained=ckpt, device='cpu')
    again, = ImageClassificationInferencer(model)(image)
    assert again['pred_label'] == result['pred_label']
    assert again['pred_score'] == pytest.approx(result['pred_score'])


@pytest.mark.slow
def test_dynamic_sparse_run_saves_masked_ema(imagenet_mini, tmp_path):
    """A short real DST run (SNIP, prune / regrow at steps 5, 10, 15) with
    the mask-aware EMA: the saved `state_dict` (EMA weights) and
    `ema_state_dict` are zero exactly where the masks are, and (nearly)
    dense where they are active."""
    config = osp.join(REPO_ROOT, 'tests', 'data', 'configs',
                      'slak_mini_dst_in1k.py')
    out = _run([
        sys.executable, 'tools/train.py', config, '--work-dir',
        str(tmp_path), '--cfg-options', *_data_options(imagenet_mini)
    ])
    assert 'sparse update 3 at step 15' in out, out[-3000:]
    assert 'EMA (MaskedExponentialMovingAverage) follows the masks' in out
    ckpt = load_checkpoint_file(osp.join(tmp_path, 'epoch_2.pth'))
    masks = ckpt['sparse_training']['masks']
    assert masks
    ema = {k[len('module.'):]: v for k, v in ckpt['ema_state_dict'].items()
           if k.startswith('module.')}
    # EMAHook swaps them in the file: `state_dict` holds the EMA weights,
    # `ema_state_dict` the trained ones
    for name, mask in masks.items():
        averaged, trained = ckpt['state_dict'][name], ema[name]
        for weights in (averaged, trained):
            assert torch.all(weights[~mask] == 0), name
        # where the mask is active the average is non-zero exactly where
        # the trained weight is (a weight whose gradient is always 0, e.g.
        # behind a fully masked unit, stays 0 in both)
        same = (averaged != 0) == (trained != 0)
        assert same[mask].float().mean() >= 0.999, name
    # overall density of all candidate weights (dense layers included)
    # at the start (SNIP, exact) and at the end (Bernoulli regrowth)
    start, end = (float(m) for m in re.findall(
        r'DynamicSparseHook(?: \(end\))?: \d+/\d+ weights masked, density '
        r'([0-9.]+)', out))
    assert start == pytest.approx(0.6, abs=1e-3)
    assert end == pytest.approx(0.6, abs=0.01)
