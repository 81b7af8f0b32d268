"""End-to-end runs of tools/train.py, tools/test.py and tools/dist_train.sh
on real images (shared ADE20K-format sample) with a scaled-down SLaK."""
import argparse
import glob
import importlib.util
import json
import os
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config

from slak_mm.utils import (checkpoint_safe_globals,
                           fall_back_to_fp32_without_cuda)
from ..conftest import REPO_ROOT
from ..tool_runs import data_root_options as _data_options
from ..tool_runs import run_dist_train
from ..tool_runs import run_tool as _run
from ..tool_runs import training_records as _scalars

MINI_CONFIG = osp.join(REPO_ROOT, 'tests', 'data', 'configs',
                       'upernet_slak_mini_ade20k.py')


def _train(work_dir, data_root, cfg_options=(), args=(), max_iters=None):
    cmd = [
        sys.executable, 'tools/train.py', MINI_CONFIG, '--work-dir',
        str(work_dir), *args, '--cfg-options', *_data_options(data_root),
        *cfg_options
    ]
    if max_iters is not None:
        cmd += [
            f'train_cfg.max_iters={max_iters}',
            f'train_cfg.val_interval={max_iters}'
        ]
    return _run(cmd)


@pytest.mark.parametrize('name', [
    'upernet_slak_t_ade20k.py', 'upernet_sw_t_ade20k.py',
    'cascade_mask_rcnn_slak_t_coco_1x.py', 'faster_rcnn_slak_t_voc2007.py'
])
def test_amp_option_on_the_fp32_recipes(name, monkeypatch):
    """The downstream recipes are fp32 (OptimWrapper) as the official
    configs; `tools/train.py --amp` switches them to AmpOptimWrapper with
    dynamic loss scaling (same optimizer and constructor), which a machine
    without CUDA turns back into fp32."""
    monkeypatch.syspath_prepend(osp.join(REPO_ROOT, 'tools'))  # runner_cli
    spec = importlib.util.spec_from_file_location(
        'slak_mm_tools_train', osp.join(REPO_ROOT, 'tools', 'train.py'))
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    path = osp.join(REPO_ROOT, 'configs', name)
    cfg = Config.fromfile(path)
    fp32 = cfg.optim_wrapper.to_dict()
    assert fp32['type'] == 'OptimWrapper' and 'loss_scale' not in fp32
    args = argparse.Namespace(
        config=path,
        launcher='none',
        cfg_options=None,
        work_dir='work_dirs/unused',
        amp=True,
        resume=None,
        auto_scale_lr=False,
        no_validate=False)
    cfg = train.merge_args(cfg, args)
    amp = cfg.optim_wrapper.to_dict()
    assert amp.pop('type') == 'AmpOptimWrapper'
    assert amp.pop('loss_scale') == 'dynamic'
    assert amp == {k: v for k, v in fp32.items() if k != 'type'}
    replaced = fall_back_to_fp32_without_cuda(cfg)
    assert replaced is not torch.cuda.is_available()
    if replaced:
        assert cfg.optim_wrapper.to_dict() == fp32


def test_train_loss_decreases_and_test_reports_miou(tmp_path,
                                                    ade20k_coco_mini):
    work_dir = tmp_path / 'train'
    out = _train(work_dir, ade20k_coco_mini)
    records = _scalars(work_dir)
    losses = [r['loss'] for r in records]
    assert len(losses) == 60
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    # the real-data loss drops well below its start (~7 = cross-entropy of
    # 150 classes for the decode head + 0.4 x the auxiliary head)
    assert first > 5., losses
    assert last < 0.85 * first, losses
    # validation at the end of training ran the real IoUMetric
    assert 'mIoU' in out
    # the optimizer used the layer-wise decay groups
    assert 'stage_wise lr decay' in out

    ckpt = work_dir / 'iter_60.pth'
    assert ckpt.exists()
    test_dir = tmp_path / 'test'
    show_dir = tmp_path / 'overlays'
    out = _run([
        sys.executable, 'tools/test.py', MINI_CONFIG,
        str(ckpt), '--work-dir',
        str(test_dir), '--show-dir',
        str(show_dir), '--out',
        str(tmp_path / 'pred'), '--cfg-options',
        *_data_options(ade20k_coco_mini)
    ])
    metrics = sorted(glob.glob(str(test_dir / '*' / '*.json')))
    assert metrics, out[-3000:]
    result = json.load(open(metrics[-1]))
    for key in ('aAcc', 'mIoU', 'mAcc'):
        assert 0. <= result[key] <= 100., result
    n_val = len(os.listdir(osp.join(ade20k_coco_mini, 'images', 'validation')))
    overlays = glob.glob(str(show_dir / '**' / '*.png'), recursive=True)
    assert len(overlays) == n_val
    preds = glob.glob(str(tmp_path / 'pred' / '*.png'))
    assert len(preds) == n_val


def test_resume_continues_from_checkpoint(tmp_path, ade20k_coco_mini):
    work_dir = tmp_path / 'resume'
    common = [
        'default_hooks.checkpoint.interval=2', 'val_cfg=None',
        'val_dataloader=None', 'val_evaluator=None'
    ]
    _train(work_dir, ade20k_coco_mini, common, max_iters=4)
    with checkpoint_safe_globals():
        first = torch.load(str(work_dir / 'iter_4.pth'), weights_only=True)
    assert first['meta']['iter'] == 4
    out = _train(work_dir, ade20k_coco_mini, common, ['--resume'], max_iters=6)
    assert 'resumed epoch: 0, iter: 4' in out
    resumed = _scalars(work_dir)
    assert [r['iter'] for r in resumed] == [5, 6]
    with checkpoint_safe_globals():
        last = torch.load(str(work_dir / 'iter_6.pth'), weights_only=True)
    assert last['meta']['iter'] == 6
    # the optimizer state was restored, not re-created: AdamW step counts
    # continue from 4
    steps = {int(s['step']) for s in last['optimizer']['state'].values()}
    assert steps == {6}


@pytest.mark.skipif(
    torch.cuda.is_available(), reason='checks the CPU (gloo) path')
def test_dist_train_two_cpu_processes(tmp_path, ade20k_coco_mini):
    work_dir = tmp_path / 'dist'
    out = run_dist_train(
        MINI_CONFIG, [
            '--work-dir',
            str(work_dir), '--cfg-options', *_data_options(ade20k_coco_mini),
            'train_cfg.max_iters=4', 'val_cfg=None', 'val_dataloader=None',
            'val_evaluator=None', 'default_hooks.checkpoint.interval=4'
        ],
        port=29500 + os.getpid() % 1000)
    assert 'Distributed training: True' in out
    # mmengine reports the world size as the 'GPU number'
    assert 'GPU number: 2' in out
    assert (work_dir / 'iter_4.pth').exists()
