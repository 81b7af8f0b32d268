"""tools/analysis: FLOPs (dense / non-zero), ERF, sparsity report, curves."""
import csv
import json
import os.path as osp
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.runner import save_checkpoint
from PIL import Image

from slak_mm.analysis import complexity, high_contribution_area_ratios
from slak_mm.models import SLaK

from .conftest import REPO_ROOT
from .tool_runs import run_tool

MINI_CONFIG = osp.join(REPO_ROOT, 'tests', 'data', 'configs',
                       'upernet_slak_mini_ade20k.py')


def _run(args):
    return run_tool([sys.executable] + args, timeout=600)


class _FunctionalConv(nn.Module):
    """Calls F.conv2d with its child's weight (the child is never called),
    like a fused fast path."""

    def __init__(self):
        super().__init__()
        self.inner = nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False)

    def forward(self, x):
        return F.conv2d(x, self.inner.weight, padding=1, groups=4)


def test_nonzero_counting_matches_hand_count():
    conv = nn.Conv2d(2, 4, 3, bias=False)  # 6x6 input -> 4x4 output
    fconv = _FunctionalConv()
    linear = nn.Linear(64, 5, bias=False)
    model = nn.Sequential(conv, fconv, nn.Flatten(), linear)
    with torch.no_grad():
        conv.weight.fill_(1.)
        conv.weight[:, :, 0, :] = 0.  # 1/3 of the conv weights zero
        fconv.inner.weight.fill_(1.)
        fconv.inner.weight[:2] = 0.  # half of the depthwise weights zero
        linear.weight.fill_(1.)
        linear.weight[:, :16] = 0.  # a quarter zero
    result = complexity(model, (torch.randn(1, 2, 6, 6), ))
    conv_macs = 4 * 4 * 4 * 2 * 9  # out positions x out ch x in ch x k x k
    dw_macs = 4 * 4 * 4 * 9
    linear_macs = 64 * 5
    assert result['flops'] == conv_macs + dw_macs + linear_macs
    assert result['flops_nonzero'] == round(conv_macs * 2 / 3 +
                                            dw_macs * 1 / 2 +
                                            linear_macs * 3 / 4)
    assert result['params'] == 72 + 36 + 320
    assert result['params_nonzero'] == 48 + 18 + 240


def test_area_ratios():
    m = np.zeros((11, 11))
    m[5, 5] = 1.
    m[0, 0] = 1.
    ratios = high_contribution_area_ratios(m, (0.2, 0.5, 0.99))
    assert ratios[0.2] == pytest.approx(1 / 121)
    assert ratios[0.5] == pytest.approx(1 / 121)
    assert ratios[0.99] == pytest.approx(1.)


def test_get_flops_tool(tmp_path):
    out = _run([
        'tools/analysis/get_flops.py', MINI_CONFIG, '--shape', '64', '64',
        '--sparsity', '0.4', '--work-dir',
        str(tmp_path)
    ])
    assert 'non-zero' in out
    result = json.load(open(tmp_path / 'complexity.json'))
    assert result['input_shape'] == [3, 64, 64]
    assert 0.5 < result['params_nonzero'] / result['params'] < 0.75
    assert result['flops_nonzero'] < result['flops']
    assert (tmp_path / 'complexity.md').read_text().startswith('|')


def test_visualize_erf_tool(tmp_path, ade20k_mini):
    out_dir = tmp_path / 'erf'
    _run([
        'tools/analysis/visualize_erf.py', MINI_CONFIG, '--images',
        osp.join(ade20k_mini, 'images'), '--num-images', '2', '--size', '96',
        '--reference', 'tiny', '--out-dir',
        str(out_dir)
    ])
    name = 'upernet_slak_mini_ade20k'
    matrix = np.load(out_dir / f'erf_{name}.npy')
    assert matrix.shape == (96, 96) and matrix.min() >= 0 and matrix.max() > 0
    ratios = json.load(open(out_dir / 'erf_ratios.json'))
    assert set(ratios) == {name, 'convnext_tiny'}
    values = [ratios[name][t] for t in ('0.2', '0.3', '0.5', '0.99')]
    assert values == sorted(values) and 0 < values[0] <= values[-1] <= 1
    for png in (f'erf_{name}.png', 'erf_convnext_tiny.png',
                'erf_comparison.png'):
        assert Image.open(out_dir / png).size[0] > 0


def test_sparsity_report_tool(tmp_path):
    backbone = SLaK(
        dict(depths=[1, 1, 1, 1], channels=[8, 8, 16, 16]),
        kernel_size=[9, 7, 7, 5, 3])
    state = {}
    masks = {}
    gen = torch.Generator().manual_seed(0)
    for name, value in backbone.state_dict().items():
        if value.ndim == 4 and 'large_kernel' in name:
            mask = torch.rand(value.shape, generator=gen) < 0.6
            value = value * mask
            masks[f'backbone.{name}'] = mask
        state[f'backbone.{name}'] = value
    ckpt = tmp_path / 'sparse.pth'
    save_checkpoint(dict(state_dict=state, sparse_training=dict(masks=masks)),
                    str(ckpt))
    out_dir = tmp_path / 'report'
    out = _run(['tools/analysis/sparsity_report.py', str(ckpt),
                '--out-dir', str(out_dir)])
    assert '| total |' in out
    rows = list(csv.DictReader(open(out_dir / 'density_layers.csv')))
    by_name = {r['name']: r for r in rows}
    for name, mask in masks.items():
        row = by_name[name]
        assert int(row['nonzero']) == int(
            torch.count_nonzero(state[name]))
        assert float(row['mask_density']) == pytest.approx(
            mask.float().mean().item())
    assert by_name['backbone.stages.0.0.pointwise_conv1.weight'][
        'density'] == '1.0'
    for png in ('density.png', 'kernels.png'):
        assert Image.open(out_dir / png).size[0] > 0


def test_plot_logs_tool(tmp_path):
    run = tmp_path / '20260101_000000' / 'vis_data'
    run.mkdir(parents=True)
    with open(run / 'scalars.json', 'w') as f:
        for i in range(1, 6):
            # as LocalVisBackend writes them: with the global `step`
            f.write(json.dumps(dict(iter=i, loss=5. - i, lr=1e-3,
                                    sparse_density=0.6, step=i)) + '\n')
        f.write(json.dumps(dict(mIoU=3.2, step=5)) + '\n')
    out = _run(['tools/analysis/plot_logs.py', str(tmp_path)])
    assert 'loss' in out and 'mIoU' in out
    assert Image.open(tmp_path / 'curves.png').size[0] > 0
