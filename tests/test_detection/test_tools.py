"""End-to-end runs on the shared real VOC2007 / COCO samples:
tools/train.py, tools/test.py, tools/dist_train.sh and
tools/det_image_demo.py (one OpenMP thread per process)."""
import glob
import os
import os.path as osp
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ..tool_runs import (data_root_options, evaluation_metrics,
                         run_dist_train, run_tool, single_thread_env,
                         training_records)
from . import MINI_COCO_CONFIG, MINI_VOC_CONFIG


def _run(args):
    return run_tool(args, env=single_thread_env())


def _losses(work_dir):
    return [r['loss'] for r in training_records(work_dir)]


def _voc_options(root):
    return [
        f'train_dataloader.dataset.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}'
    ]


def _coco_options(root):
    ann = osp.join(root, 'annotations', 'instances_val2017.json')
    return data_root_options(root) + [
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
    metrics = evaluation_metrics(test_dir)
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
    out = run_dist_train(
        MINI_VOC_CONFIG, [
            '--work-dir',
            str(work_dir), '--no-validate', '--cfg-options',
            *_voc_options(voc2007_mini),
            'train_dataloader.dataset.dataset.indices=8',
            'train_cfg.max_epochs=1'
        ],
        port=29500 + os.getpid() % 1000 + 7,
        env=single_thread_env())
    assert 'Distributed training: True' in out
    assert 'GPU number: 2' in out
    # 8 images over 2 processes x 2 images: 2 iterations
    assert len(_losses(work_dir)) == 2
    assert (work_dir / 'epoch_1.pth').exists()
