"""Detectors built from the configs: the layer-wise lr decay groups and
``forward`` (loss, predict) on real images."""
import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from slak_mm.apis import build_model
from slak_mm.utils import fall_back_to_fp32_without_cuda

from . import COCO_1X_CONFIG, MINI_COCO_CONFIG, MINI_VOC_CONFIG, VOC_CONFIG


def _mmdet_scope():
    """mmdet as default scope inside the block, the previous one after."""
    return DefaultScope.overwrite_default_scope('mmdet')


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
