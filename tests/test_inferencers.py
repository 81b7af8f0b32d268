"""The toolboxes' own inferencers with slak_mm configs and checkpoints, on
real images: mmpretrain's ``ImageClassificationInferencer``, mmseg's
``MMSegInferencer`` and mmdet's ``DetInferencer``.

Each test builds the scaled-down model of a test config, saves its weights
as a checkpoint in the Runner's layout (``state_dict``,
``meta.dataset_meta``) and runs the inferencer from the config path and
that checkpoint, as the README's "Inference" lines do: the predictions'
structure, a batch of images (and that batching does not change a
prediction), and the painted outputs written to disk. The weights are
random: only structure is checked, never accuracy.
"""
import glob
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.runner import save_checkpoint

from slak_mm.apis import build_model
from .conftest import REPO_ROOT

CONFIGS = osp.join(REPO_ROOT, 'tests', 'data', 'configs')


def _save_checkpoint(config, dataset_meta, path):
    """Save the randomly initialised model of ``config`` as a Runner would
    (weights under ``state_dict``, class names under
    ``meta.dataset_meta``); return the path as a string."""
    torch.manual_seed(0)
    model = build_model(config, init_cfg=None)
    save_checkpoint(
        dict(
            meta=dict(dataset_meta=dataset_meta),
            state_dict=model.state_dict()), str(path))
    return str(path)


def _files(folder, pattern='*'):
    return sorted(glob.glob(osp.join(str(folder), pattern)))


def _first_lines(path, count):
    with open(path) as f:
        return [next(f).split()[0] for _ in range(count)]


def test_image_classification_inferencer(tmp_path, imagenet_mini):
    from mmpretrain import ImageClassificationInferencer
    from mmpretrain.datasets.categories import IMAGENET_CATEGORIES
    config = osp.join(CONFIGS, 'slak_mini_in1k.py')
    ckpt = _save_checkpoint(config, dict(classes=IMAGENET_CATEGORIES),
                            tmp_path / 'cls.pth')
    images = [
        osp.join(imagenet_mini, 'val', name) for name in _first_lines(
            osp.join(imagenet_mini, 'meta', 'val.txt'), 3)
    ]
    # mmpretrain builds the test pipeline in the *current* default scope;
    # another toolbox's inferencer or runner earlier in the process (e.g.
    # mmdet) would leave its own scope current
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        inferencer = ImageClassificationInferencer(
            config, pretrained=ckpt, device='cpu')
    show_dir = tmp_path / 'vis'
    results = inferencer(images, batch_size=2, show_dir=str(show_dir))

    assert len(results) == 3
    for result in results:
        assert result['pred_scores'].shape == (1000, )
        assert result['pred_scores'].sum() == pytest.approx(1., rel=1e-5)
        assert 0 <= result['pred_label'] < 1000
        assert result['pred_label'] == int(result['pred_scores'].argmax())
        assert result['pred_score'] == pytest.approx(
            float(result['pred_scores'].max()))
        # class names come from the checkpoint's dataset_meta
        assert result['pred_class'] == \
            IMAGENET_CATEGORIES[result['pred_label']]
    # one painted image per input, named after it
    assert [osp.basename(p) for p in _files(show_dir)] == sorted(
        osp.basename(p).rsplit('.', 1)[0] + '.png' for p in images)
    # batching (2 + 1) does not change a prediction
    single, = inferencer(images[2])
    np.testing.assert_allclose(
        single['pred_scores'], results[2]['pred_scores'], rtol=1e-4, atol=1e-6)


def test_metafile_names(imagenet_mini):
    """Model names of metafile.yml: mmpretrain resolves them once the file
    is registered with its ``ModelHub``; mmseg's and mmdet's inferencers
    only read the model index inside their own package and reject them."""
    from mmdet.apis import DetInferencer
    from mmpretrain.apis import ModelHub, list_models
    from mmseg.apis import MMSegInferencer
    name = 'slak-tiny_in1k_300e'
    if not ModelHub.has(name):  # registering twice raises
        ModelHub.register_model_index(osp.join(REPO_ROOT, 'metafile.yml'))
    assert name in list_models('slak*')
    metainfo = ModelHub.get(name)
    assert metainfo.config.filename == osp.join(REPO_ROOT, 'configs',
                                                'slak_t_in1k.py')
    # the official weights are Google Drive pages, not files to download
    assert metainfo.weights is None

    with pytest.raises(ValueError, match='Cannot find model'):
        MMSegInferencer('upernet_slak-tiny_ade20k_160k', device='cpu')
    with pytest.raises(ValueError, match='Cannot find model'):
        DetInferencer('cascade-mask-rcnn_slak-tiny_coco_1x', device='cpu')


def test_mmseg_inferencer(tmp_path, ade20k_coco_mini):
    import mmcv
    from mmseg.apis import MMSegInferencer
    from mmseg.datasets import ADE20KDataset
    config = osp.join(CONFIGS, 'upernet_slak_mini_ade20k.py')
    ckpt = _save_checkpoint(config, ADE20KDataset.METAINFO,
                            tmp_path / 'seg.pth')
    files = _files(osp.join(ade20k_coco_mini, 'images', 'validation'), '*.jpg')
    shapes = {path: mmcv.imread(path).shape[:2] for path in files}
    images = [path for path in files if shapes[path] == (480, 640)][:3]
    assert len(images) == 3
    inferencer = MMSegInferencer(config, weights=ckpt, device='cpu')
    out_dir = tmp_path / 'out'
    result = inferencer(images, batch_size=2, out_dir=str(out_dir))

    predictions = result['predictions']
    assert len(predictions) == 3
    for pred in predictions:
        # a label map of the input's size (the model resizes back)
        assert pred.shape == (480, 640)
        assert pred.min() >= 0 and pred.max() < 150
    names = [osp.basename(p) for p in images]
    assert [osp.basename(p) for p in _files(out_dir / 'vis')] == names
    # label maps (PNG) are numbered in call order by mmseg
    assert [osp.basename(p) for p in _files(out_dir / 'pred')
            ] == [f'{i:08d}_pred.png' for i in range(3)]
    # one image alone gets the label map it got in the batch
    assert np.array_equal(inferencer(images[2])['predictions'], predictions[2])
    # mmseg 1.2.2's SegDataPreProcessor batches only images that have one
    # size after the test pipeline (it checks before any padding)
    other = next(p for p in files if shapes[p][0] != 480)
    with pytest.raises(AssertionError, match='should be the same'):
        inferencer([images[0], other], batch_size=2)


def _check_det_predictions(predictions, images, num_classes):
    import mmcv
    assert len(predictions) == len(images)
    for image, pred in zip(images, predictions):
        height, width = mmcv.imread(image).shape[:2]
        count = len(pred['labels'])
        assert len(pred['scores']) == len(pred['bboxes']) == count
        assert count > 0
        labels = np.asarray(pred['labels'])
        assert labels.min() >= 0 and labels.max() < num_classes
        boxes = np.asarray(pred['bboxes'])
        assert boxes.shape == (count, 4)
        # x1 <= x2 and y1 <= y2, inside the original image
        assert np.all(boxes[:, 2] >= boxes[:, 0])
        assert np.all(boxes[:, 3] >= boxes[:, 1])
        assert boxes.min() >= 0
        assert boxes[:, [0, 2]].max() <= width
        assert boxes[:, [1, 3]].max() <= height


@pytest.mark.parametrize('config, dataset', [
    ('faster_rcnn_slak_mini_voc.py', 'voc'),
    ('cascade_mask_rcnn_slak_mini_coco.py', 'coco'),
])
def test_det_inferencer(config, dataset, tmp_path, request):
    from mmdet.apis import DetInferencer
    from mmdet.datasets import CocoDataset, VOCDataset
    if dataset == 'voc':
        root = osp.join(request.getfixturevalue('voc2007_mini'), 'VOC2007')
        images = [
            osp.join(root, 'JPEGImages', f'{name}.jpg')
            for name in _first_lines(
                osp.join(root, 'ImageSets', 'Main', 'test.txt'), 3)
        ]
        meta = VOCDataset.METAINFO
    else:
        root = request.getfixturevalue('coco_mini')
        images = _files(osp.join(root, 'val2017'), '*.jpg')[:3]
        meta = CocoDataset.METAINFO
    ckpt = _save_checkpoint(
        osp.join(CONFIGS, config), meta, tmp_path / 'det.pth')
    inferencer = DetInferencer(
        osp.join(CONFIGS, config), weights=ckpt, device='cpu')
    out_dir = tmp_path / 'out'
    # random weights: keep every box (score threshold 0 when painting)
    result = inferencer(
        images,
        batch_size=2,
        out_dir=str(out_dir),
        no_save_pred=False,
        pred_score_thr=0.)

    predictions = result['predictions']
    _check_det_predictions(predictions, images, len(meta['classes']))
    if dataset == 'coco':
        # instance masks as COCO RLE, one per box
        for pred in predictions:
            assert len(pred['masks']) == len(pred['labels'])
            assert {'size', 'counts'} <= set(pred['masks'][0])
    stems = sorted(osp.basename(p).rsplit('.', 1)[0] for p in images)
    assert [osp.basename(p) for p in _files(out_dir / 'vis')] == \
        [f'{s}.jpg' for s in stems]
    assert [osp.basename(p) for p in _files(out_dir / 'preds')] == \
        [f'{s}.json' for s in stems]
    # one image alone gives the boxes it got in the batch
    single = inferencer(images[2])['predictions'][0]
    np.testing.assert_allclose(
        single['bboxes'], predictions[2]['bboxes'], rtol=1e-4, atol=1e-2)
    assert single['labels'] == predictions[2]['labels']
