"""UperNet-SLaK-T trained with DynamicSparseHook through tools/train.py and
tools/dist_train.sh on real images (real-size model: marked slow, run in
CI)."""
import os
import os.path as osp
import re
import sys

import pytest
import torch

from slak_mm.utils import load_checkpoint_file

from ..conftest import REPO_ROOT
from ..tool_runs import data_root_options, run_dist_train, run_tool

CONFIG = osp.join(REPO_ROOT, 'tests', 'data', 'configs',
                  'upernet_slak_t_sparse_ade20k.py')


def _options(root):
    return data_root_options(root, ('train_dataloader', 'test_dataloader'))


def _run(cmd):
    return run_tool(cmd, timeout=1200)


@pytest.mark.slow
def test_upernet_slak_t_dynamic_sparsity(tmp_path, ade20k_coco_mini):
    work_dir = tmp_path / 'sparse'
    out = _run([
        sys.executable, 'tools/train.py', CONFIG, '--work-dir',
        str(work_dir), '--cfg-options', *_options(ade20k_coco_mini)
    ])
    assert re.search(r'sparse update \d+ at step 2 ', out), out[-3000:]
    end = re.search(r'DynamicSparseHook \(end\): \d+/\d+ weights masked, '
                    r'density ([0-9.]+)', out)
    assert end, out[-3000:]
    assert float(end.group(1)) == pytest.approx(0.6, abs=0.01)
    # the checkpoint holds the masks and the weights obey them
    ckpt = load_checkpoint_file(str(work_dir / 'iter_4.pth'))
    masks = ckpt['sparse_training']['masks']
    assert any('large_kernel.branch_sxk' in n for n in masks)
    kept = sum(int(m.sum()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    assert 0.5 < kept / total < 0.7
    for name, mask in masks.items():
        weight = ckpt['state_dict'][name]
        assert torch.all(weight[~mask] == 0), name


@pytest.mark.slow
@pytest.mark.skipif(
    torch.cuda.is_available(), reason='checks the CPU (gloo) path')
def test_two_processes_hold_identical_masks(tmp_path, ade20k_coco_mini):
    work_dir = tmp_path / 'dist'
    out = run_dist_train(
        CONFIG, [
            '--work-dir',
            str(work_dir), '--cfg-options', *_options(ade20k_coco_mini)
        ],
        port=29600 + os.getpid() % 1000,
        timeout=1200)
    assert 'GPU number: 2' in out
    # the hook compares the SHA-1 of all masks across processes at start,
    # at every update and at the end (it raises if they differ)
    identical = re.findall(r'sparse masks identical on 2 processes '
                           r'\(sha1 ([0-9a-f]+)\)', out)
    assert len(identical) >= 3, out[-3000:]
    assert re.search(r'sparse update \d+ at step 2 ', out), out[-3000:]
