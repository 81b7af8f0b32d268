"""The detection configs: they build (SLaK backbone, FPN widths, class
counts) and hold the published recipes."""
import os.path as osp

import pytest
from mmengine.config import Config

from slak_mm.apis import build_model
from slak_mm.models import SLaK

from . import B_CHANNELS, CONFIGS, T_CHANNELS, VOC_CONFIG

DET_CONFIGS = [
    'faster_rcnn_slak_t_voc2007.py', 'faster_rcnn_slak_t_voc0712.py',
    'cascade_mask_rcnn_slak_t_coco_1x.py',
    'cascade_mask_rcnn_slak_t_coco_3x.py',
    'cascade_mask_rcnn_slak_s_coco_3x.py',
    'cascade_mask_rcnn_slak_b_coco_3x.py',
    'demo/faster_rcnn_slak_t_voc2007_sample.py',
    'demo/cascade_mask_rcnn_slak_t_coco_sample.py'
]


@pytest.mark.parametrize('name', DET_CONFIGS)
def test_detection_config_builds(name):
    cfg = Config.fromfile(osp.join(CONFIGS, name))
    assert cfg.default_scope == 'mmdet'
    assert cfg.custom_imports == dict(
        imports=['slak_mm'], allow_failed_imports=False)
    assert cfg.model.backbone.type == 'slak_mm.SLaK'
    assert '_delete_' not in cfg.model.backbone
    assert cfg.optim_wrapper.constructor == \
        'slak_mm.LearningRateDecayOptimizerConstructor'
    assert cfg.custom_hooks == [
        dict(type='slak_mm.StaticSparseHook', prefix='backbone.')
    ]
    model = build_model(cfg)
    assert isinstance(model.backbone, SLaK)
    assert model.backbone.out_indices == [0, 1, 2, 3]
    assert list(cfg.model.neck.in_channels) == model.backbone.channels
    assert [conv.conv.in_channels for conv in model.neck.lateral_convs
            ] == model.backbone.channels
    expected = B_CHANNELS if '_b_' in name else T_CHANNELS
    assert model.backbone.channels == expected
    if 'voc' in name:
        assert type(model).__name__ == 'FasterRCNN'
        assert model.roi_head.bbox_head.num_classes == 20
    else:
        assert type(model).__name__ == 'CascadeRCNN'
        assert [h.num_classes for h in model.roi_head.bbox_head] == [80] * 3
        assert [h.num_classes for h in model.roi_head.mask_head] == [80] * 3


def test_voc_recipe():
    cfg = Config.fromfile(VOC_CONFIG)
    backbone = cfg.model.backbone
    assert (backbone.arch, backbone.kernel_size, backbone.width_factor) == (
        'tiny', [51, 49, 47, 13, 5], 1.3)
    assert backbone.drop_path_rate == 0.4
    assert backbone.layer_scale_init_value == 1.0
    assert backbone.gap_before_final_norm is False
    assert backbone.init_cfg == dict(
        type='CheckedPretrained',
        checkpoint='checkpoints/slak_tiny_in1k_300e.pth',
        prefix='backbone.')
    # mmdet's faster-rcnn_r50_fpn_1x_voc0712 schedule: 4 epochs over the
    # training set repeated 3 times, lr x0.1 after epoch 3
    train = cfg.train_dataloader
    assert train.batch_size == 2
    assert (train.dataset.type, train.dataset.times) == ('RepeatDataset', 3)
    assert train.dataset.dataset.ann_file == \
        'VOC2007/ImageSets/Main/trainval.txt'
    assert cfg.train_cfg.max_epochs == 4
    multistep = cfg.param_scheduler[-1]
    assert (multistep.type, multistep.milestones) == ('MultiStepLR', [3])
    test = cfg.test_dataloader.dataset
    assert (test.type, test.ann_file) == ('VOCDataset',
                                          'VOC2007/ImageSets/Main/test.txt')
    assert cfg.test_evaluator == dict(
        type='VOCMetric', metric='mAP', eval_mode='11points')
    optim = cfg.optim_wrapper
    assert optim.optimizer.type == 'AdamW'
    assert optim.optimizer.weight_decay == 0.05
    assert optim.paramwise_cfg == dict(
        decay_rate=0.7, decay_type='layer_wise', num_layers=6)
    # the 07+12 sibling: VOC2007 + VOC2012 trainval, everything else equal
    cfg0712 = Config.fromfile(
        osp.join(CONFIGS, 'faster_rcnn_slak_t_voc0712.py'))
    inner = cfg0712.train_dataloader.dataset.dataset
    assert inner.type == 'ConcatDataset'
    assert [d.ann_file for d in inner.datasets] == [
        'VOC2007/ImageSets/Main/trainval.txt',
        'VOC2012/ImageSets/Main/trainval.txt'
    ]
    assert cfg0712.train_dataloader.dataset.times == 3
    assert cfg0712.test_dataloader == cfg.test_dataloader
    assert cfg0712.optim_wrapper == cfg.optim_wrapper


@pytest.mark.parametrize('name,epochs,milestones', [
    ('cascade_mask_rcnn_slak_t_coco_1x.py', 12, [8, 11]),
    ('cascade_mask_rcnn_slak_t_coco_3x.py', 36, [27, 33]),
])
def test_published_coco_recipe(name, epochs, milestones):
    cfg = Config.fromfile(osp.join(CONFIGS, name))
    backbone = cfg.model.backbone
    assert (backbone.arch, backbone.kernel_size, backbone.width_factor) == (
        'tiny', [51, 49, 47, 13, 5], 1.3)
    assert backbone.drop_path_rate == 0.4
    assert backbone.layer_scale_init_value == 1.0
    assert cfg.model.neck.in_channels == T_CHANNELS
    heads = cfg.model.roi_head.bbox_head
    assert len(heads) == 3
    for head, stds in zip(heads, ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1],
                                  [0.033, 0.033, 0.067, 0.067])):
        assert head.type == 'Shared4Conv1FCBBoxHead'
        assert head.reg_decoded_bbox is True
        assert head.reg_class_agnostic is False
        assert head.loss_bbox == dict(type='GIoULoss', loss_weight=10.0)
        assert head.norm_cfg.type == 'SyncBN'
        assert head.bbox_coder.target_stds == stds
    # multi-scale 480..800 or resize -> random crop 384..600 -> resize
    choice = cfg.train_dataloader.dataset.pipeline[3]
    assert choice.type == 'RandomChoice'
    plain, crop = choice.transforms
    assert [s[0] for s in plain[0].scales] == list(range(480, 801, 32))
    assert [t.type for t in crop] == [
        'RandomChoiceResize', 'RandomCrop', 'RandomChoiceResize'
    ]
    assert crop[1].crop_size == (384, 600)
    assert cfg.train_dataloader.batch_size == 2  # x 8 GPUs
    optim = cfg.optim_wrapper
    assert optim.type == 'OptimWrapper'  # fp32 as the official configs
    assert 'loss_scale' not in optim
    assert optim.optimizer == dict(
        type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=0.05)
    assert optim.paramwise_cfg == dict(
        decay_rate=0.7, decay_type='layer_wise', num_layers=6)
    assert cfg.train_cfg.max_epochs == epochs
    warmup, multistep = cfg.param_scheduler
    assert (warmup.type, warmup.end, warmup.start_factor) == ('LinearLR', 500,
                                                              0.001)
    assert (multistep.milestones, multistep.end) == (milestones, epochs)
    assert cfg.test_evaluator.metric == ['bbox', 'segm']


@pytest.mark.parametrize('size,arch,drop_path,decay,channels', [
    ('s', 'small', 0.6, 0.7, T_CHANNELS),
    ('b', 'base', 0.7, 0.8, B_CHANNELS),
])
def test_coco_s_b_variants(size, arch, drop_path, decay, channels):
    cfg = Config.fromfile(
        osp.join(CONFIGS, f'cascade_mask_rcnn_slak_{size}_coco_3x.py'))
    t_cfg = Config.fromfile(
        osp.join(CONFIGS, 'cascade_mask_rcnn_slak_t_coco_3x.py'))
    assert cfg.model.backbone.arch == arch
    assert cfg.model.backbone.drop_path_rate == drop_path
    assert cfg.model.neck.in_channels == channels
    assert cfg.optim_wrapper.paramwise_cfg == dict(
        decay_rate=decay, decay_type='layer_wise', num_layers=12)
    assert cfg.model.backbone.init_cfg.checkpoint == \
        f'checkpoints/slak_{arch}_in1k_300e.pth'
    assert cfg.train_dataloader == t_cfg.train_dataloader
    assert cfg.param_scheduler == t_cfg.param_scheduler
    assert cfg.model.roi_head == t_cfg.model.roi_head
