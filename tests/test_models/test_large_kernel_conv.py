import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from slak_mm.models import DecomposedLargeKernelConv


def _fold_bn(conv_module):
    """Kernel and bias of conv + BN (eval) as one conv."""
    bn = conv_module.bn
    std = (bn.running_var + bn.eps).sqrt()
    kernel = conv_module.conv.weight * (bn.weight / std).reshape(-1, 1, 1, 1)
    bias = bn.bias - bn.running_mean * bn.weight / std
    return kernel, bias


def _randomize_bn(module):
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)


@pytest.mark.parametrize('kernel_size,small,stride', [(7, 3, 1), (13, 5, 1),
                                                      (5, 5, 1), (9, 3, 2)])
def test_equals_dense_centred_kernel(kernel_size, small, stride):
    """The three branches sum to one centred K x K depthwise conv."""
    torch.manual_seed(0)
    c = 6
    m = DecomposedLargeKernelConv(c, kernel_size, small, stride=stride)
    _randomize_bn(m)
    m.eval()
    x = torch.randn(2, c, 23, 18)

    dense = torch.zeros(c, 1, kernel_size, kernel_size)
    bias = torch.zeros(c)
    for branch in (m.branch_kxs, m.branch_sxk, m.branch_sxs):
        if branch is None:
            continue
        k, b = _fold_bn(branch)
        kh, kw = k.shape[-2:]
        top, left = (kernel_size - kh) // 2, (kernel_size - kw) // 2
        dense[:, :, top:top + kh, left:left + kw] += k
        bias += b
    expected = F.conv2d(
        x, dense, bias, stride=stride, padding=kernel_size // 2, groups=c)

    out = m(x)
    assert out.shape == (2, c, (23 - 1) // stride + 1, (18 - 1) // stride + 1)
    # fp32, sums of <= 169 products: tolerances 1e-5
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_branches_and_shapes():
    m = DecomposedLargeKernelConv(8, 51, 5)
    assert m.branch_kxs.conv.weight.shape == (8, 1, 51, 5)
    assert m.branch_sxk.conv.weight.shape == (8, 1, 5, 51)
    assert m.branch_sxs.conv.weight.shape == (8, 1, 5, 5)
    assert m.branch_kxs.conv.padding == (25, 2)
    assert m.branch_sxk.conv.padding == (2, 25)
    assert m.branch_kxs.conv.bias is None
    assert isinstance(m.branch_kxs.bn, nn.BatchNorm2d)
    out = m(torch.randn(1, 8, 17, 9))
    assert out.shape == (1, 8, 17, 9)
    # no small branch when s == K
    m = DecomposedLargeKernelConv(8, 5, 5)
    assert m.branch_sxs is None
    assert m(torch.randn(1, 8, 7, 7)).shape == (1, 8, 7, 7)


def test_syncbn_by_config():
    m = DecomposedLargeKernelConv(4, 7, 3, norm_cfg=dict(type='SyncBN'))
    for branch in (m.branch_kxs, m.branch_sxk, m.branch_sxs):
        assert isinstance(branch.bn, nn.SyncBatchNorm)


@pytest.mark.parametrize(
    'kwargs,field',
    [(dict(channels=0, kernel_size=7), 'channels'),
     (dict(channels=-3, kernel_size=7), 'channels'),
     (dict(channels=4.0, kernel_size=7), 'channels'),
     (dict(channels=4, kernel_size=8), 'kernel_size'),
     (dict(channels=4, kernel_size=0), 'kernel_size'),
     (dict(channels=4, kernel_size=7, small_kernel_size=4),
      'small_kernel_size'),
     (dict(channels=4, kernel_size=7, small_kernel_size=9),
      'small_kernel_size'),
     (dict(channels=4, kernel_size=7, stride=0), 'stride')])
def test_argument_validation(kwargs, field):
    with pytest.raises(ValueError, match=f'`{field}`'):
        DecomposedLargeKernelConv(**kwargs)


def test_gradients_reach_every_branch():
    m = DecomposedLargeKernelConv(3, 9, 3)
    m(torch.randn(2, 3, 12, 12)).sum().backward()
    for branch in (m.branch_kxs, m.branch_sxk, m.branch_sxs):
        assert branch.conv.weight.grad is not None
        assert branch.conv.weight.grad.abs().sum() > 0
