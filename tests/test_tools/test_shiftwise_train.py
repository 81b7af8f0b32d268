"""End-to-end training of a scaled-down UperNet-ShiftWise on real images
(shared ADE20K-format sample), as test_train_test.py does for SLaK."""
import os.path as osp
import sys

from ..conftest import REPO_ROOT
from ..tool_runs import data_root_options as _data_options
from ..tool_runs import evaluation_metrics
from ..tool_runs import run_tool as _run
from ..tool_runs import training_records as _scalars

SW_MINI_CONFIG = osp.join(REPO_ROOT, 'tests', 'data', 'configs',
                          'upernet_sw_mini_ade20k.py')


def test_sw_train_loss_decreases_and_test_reports_miou(
        tmp_path, ade20k_coco_mini):
    work_dir = tmp_path / 'train'
    out = _run([
        sys.executable, 'tools/train.py', SW_MINI_CONFIG, '--work-dir',
        str(work_dir), '--cfg-options', *_data_options(ade20k_coco_mini)
    ])
    losses = [r['loss'] for r in _scalars(work_dir)]
    assert len(losses) == 60
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    # same check as the SLaK run: the real-data loss drops well below its
    # start (~7 = cross-entropy of 150 classes + 0.4 x the auxiliary head)
    assert first > 5., losses
    assert last < 0.85 * first, losses
    assert 'mIoU' in out
    assert 'stage_wise lr decay' in out

    ckpt = work_dir / 'iter_60.pth'
    assert ckpt.exists()
    test_dir = tmp_path / 'test'
    out = _run([
        sys.executable, 'tools/test.py', SW_MINI_CONFIG,
        str(ckpt), '--work-dir',
        str(test_dir), '--cfg-options', *_data_options(ade20k_coco_mini)
    ])
    result = evaluation_metrics(test_dir)
    for key in ('aAcc', 'mIoU', 'mAcc'):
        assert 0. <= result[key] <= 100., result
