"""The large-kernel fast path equals plain ``F.conv2d`` / the official
structure in forward and backward."""
import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from slak_mm.models import (DecomposedLargeKernelConv, SLaK,
                            depthwise_conv2d_same)
from slak_mm.ops.depthwise_conv import _depthwise_weight_grad

MINI_ARCH = dict(depths=[1, 1, 2, 1], channels=[8, 16, 32, 64])
MINI_KERNELS = [13, 11, 9, 7, 3]


def _reference(x, weight, bias=None, stride=1):
    kh, kw = weight.shape[-2:]
    return F.conv2d(x, weight, bias, stride, (kh // 2, kw // 2), 1,
                    x.shape[1])


def _randomize_bn(module):
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)


# (N, C, H, W, kh, kw, stride): tall, wide, square, kernel larger than the
# map, even-sized map, stride 2
GRADCHECK_CASES = [
    (2, 3, 9, 7, 5, 3, 1),
    (1, 2, 6, 11, 3, 7, 1),
    (2, 2, 5, 5, 5, 5, 1),
    (3, 2, 4, 6, 9, 3, 1),
    (1, 3, 5, 4, 3, 9, 1),
    (2, 2, 8, 7, 5, 3, 2),
    (2, 2, 7, 8, 3, 5, 2),
]


@pytest.mark.parametrize('n,c,h,w,kh,kw,stride', GRADCHECK_CASES)
@pytest.mark.parametrize('with_bias', [False, True])
def test_gradcheck_double(n, c, h, w, kh, kw, stride, with_bias):
    """Analytical gradients of the fast path match finite differences."""
    torch.manual_seed(0)
    x = torch.randn(n, c, h, w, dtype=torch.double, requires_grad=True)
    weight = torch.randn(
        c, 1, kh, kw, dtype=torch.double, requires_grad=True)
    bias = torch.randn(c, dtype=torch.double, requires_grad=True) \
        if with_bias else None
    assert torch.autograd.gradcheck(
        lambda *a: depthwise_conv2d_same(*a, stride=stride),
        (x, weight, bias))


@pytest.mark.parametrize('n,c,h,w,kh,kw,stride', GRADCHECK_CASES +
                         [(2, 8, 20, 17, 13, 5, 1), (2, 8, 20, 17, 5, 13, 1),
                          (3, 4, 9, 10, 51, 5, 1)])
def test_matches_conv2d_float32(n, c, h, w, kh, kw, stride):
    """fp32 output and all gradients equal plain ``F.conv2d``."""
    torch.manual_seed(0)
    x = torch.randn(n, c, h, w, requires_grad=True)
    weight = torch.randn(c, 1, kh, kw, requires_grad=True)
    bias = torch.randn(c, requires_grad=True)
    out = depthwise_conv2d_same(x, weight, bias, stride)
    ref = _reference(x, weight, bias, stride)
    assert out.shape == ref.shape == (n, c, (h - 1) // stride + 1,
                                      (w - 1) // stride + 1)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    grad = torch.randn_like(out)
    got = torch.autograd.grad(out, (x, weight, bias), grad)
    want = torch.autograd.grad(ref, (x, weight, bias), grad)
    for g, r in zip(got, want):
        torch.testing.assert_close(g, r, atol=1e-4, rtol=1e-5)


def test_weight_grad_helper_double():
    """The batch-folded weight gradient equals aten's, exactly in double."""
    torch.manual_seed(0)
    for n, c, h, w, kh, kw in [(3, 4, 10, 7, 7, 3), (1, 2, 5, 5, 5, 5),
                               (2, 3, 4, 9, 11, 3), (4, 2, 6, 6, 3, 1)]:
        x = torch.randn(n, c, h, w, dtype=torch.double)
        grad = torch.randn(n, c, h, w, dtype=torch.double)
        weight = torch.zeros(c, 1, kh, kw, dtype=torch.double)
        want = torch.ops.aten.convolution_backward(
            grad, x, weight, None, [1, 1], [kh // 2, kw // 2], [1, 1],
            False, [0, 0], c, [False, True, False])[1]
        got = _depthwise_weight_grad(x, grad, (kh, kw))
        torch.testing.assert_close(got, want, atol=1e-12, rtol=1e-12)


def test_only_some_inputs_need_grad():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 9, 9)
    weight = torch.randn(4, 1, 3, 7, requires_grad=True)
    out = depthwise_conv2d_same(x, weight)
    (gw, ) = torch.autograd.grad(out.sum(), weight)
    (rw, ) = torch.autograd.grad(_reference(x, weight).sum(), weight)
    torch.testing.assert_close(gw, rw, atol=1e-4, rtol=1e-5)
    x.requires_grad_()
    weight.requires_grad_(False)
    (gx, ) = torch.autograd.grad(depthwise_conv2d_same(x, weight).sum(), x)
    (rx, ) = torch.autograd.grad(_reference(x, weight).sum(), x)
    torch.testing.assert_close(gx, rx, atol=1e-5, rtol=1e-5)


def test_gradients_are_contiguous():
    """As with ``F.conv2d``, gradients (also those seen by tensor hooks,
    e.g. the sparse-training hooks) are contiguous for wide kernels."""
    x = torch.randn(2, 4, 9, 9, requires_grad=True)
    weight = torch.randn(4, 1, 3, 7, requires_grad=True)
    seen = []
    weight.register_hook(lambda g: seen.append(g.is_contiguous()))
    gx, gw = torch.autograd.grad(
        depthwise_conv2d_same(x, weight).sum(), (x, weight))
    assert gx.is_contiguous() and gw.is_contiguous() and seen == [True]


def test_cpu_autocast_uses_plain_conv():
    torch.manual_seed(0)
    m = DecomposedLargeKernelConv(4, 9, 3)
    x = torch.randn(2, 4, 10, 10, requires_grad=True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = m(x)
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    assert m.branch_sxk.conv.weight.grad.dtype == torch.float32


def test_fallbacks_are_plain_conv():
    """bfloat16, ``fast_path=False`` and jit tracing use ``F.conv2d``."""
    torch.manual_seed(0)
    x = torch.randn(1, 4, 8, 8)
    weight = torch.randn(4, 1, 3, 7)
    ref = _reference(x, weight)
    torch.testing.assert_close(
        depthwise_conv2d_same(x, weight, fast_path=False), ref)
    out = depthwise_conv2d_same(x.bfloat16(), weight.bfloat16())
    torch.testing.assert_close(out, _reference(x.bfloat16(),
                                               weight.bfloat16()))
    # tracing records a plain convolution, not an opaque Python op
    module = DecomposedLargeKernelConv(4, 7, 3).eval()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # torch.jit.trace is deprecated
        traced = torch.jit.trace(module, (x, ))
    graph = str(traced.graph)
    assert 'aten::_convolution' in graph and 'PythonOp' not in graph
    torch.testing.assert_close(traced(x), module(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('kernel_size,small,stride', [(13, 5, 1), (7, 3, 2),
                                                      (5, 5, 1), (51, 5, 1)])
@pytest.mark.parametrize('mode', ['train', 'eval', 'eval_with_grad'])
def test_module_fast_path_equals_official(kernel_size, small, stride, mode):
    """Outputs, gradients and BN statistics equal the ``fast_path=False``
    module (three conv + BN branches), in train mode, in eval mode (where
    the fast path merges the branches) and in eval mode with gradients
    (frozen BN fine-tuning)."""
    torch.manual_seed(0)
    fast = DecomposedLargeKernelConv(8, kernel_size, small, stride=stride)
    _randomize_bn(fast)
    slow = DecomposedLargeKernelConv(
        8, kernel_size, small, stride=stride, fast_path=False)
    slow.load_state_dict(fast.state_dict())
    for m in (fast, slow):
        m.train(mode == 'train')
    x = torch.randn(3, 8, 17, 14, requires_grad=True)
    if mode == 'eval':
        with torch.no_grad():
            torch.testing.assert_close(
                fast(x), slow(x), atol=1e-5, rtol=1e-5)
        return
    out, ref = fast(x), slow(x)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    grad = torch.randn_like(out)
    params = [p for _, p in sorted(fast.named_parameters())]
    ref_params = [p for _, p in sorted(slow.named_parameters())]
    got = torch.autograd.grad(out, [x] + params, grad)
    want = torch.autograd.grad(ref, [x] + ref_params, grad)
    for g, r in zip(got, want):
        torch.testing.assert_close(g, r, atol=1e-4, rtol=1e-4)
    for (name, b), (_, rb) in zip(
            sorted(fast.named_buffers()), sorted(slow.named_buffers())):
        torch.testing.assert_close(b, rb, msg=name)


def test_module_without_foldable_norm():
    """GroupNorm cannot be merged in eval mode: the fast path runs the
    branches one by one and still equals the official structure."""
    torch.manual_seed(0)
    cfg = dict(type='GN', num_groups=2)
    fast = DecomposedLargeKernelConv(4, 9, 3, norm_cfg=cfg).eval()
    slow = DecomposedLargeKernelConv(
        4, 9, 3, norm_cfg=cfg, fast_path=False).eval()
    slow.load_state_dict(fast.state_dict())
    x = torch.randn(2, 4, 11, 10)
    torch.testing.assert_close(fast(x), slow(x), atol=1e-5, rtol=1e-5)
    nonorm = DecomposedLargeKernelConv(4, 9, 3, norm_cfg=None).eval()
    slow = DecomposedLargeKernelConv(
        4, 9, 3, norm_cfg=None, fast_path=False).eval()
    slow.load_state_dict(nonorm.state_dict())
    torch.testing.assert_close(nonorm(x), slow(x), atol=1e-5, rtol=1e-5)


def test_syncbn_fast_path():
    """SyncBN (single process: plain batch statistics in training; BN
    behaviour in eval mode, merged on the fly, and foldable)."""
    torch.manual_seed(0)
    fast = DecomposedLargeKernelConv(4, 7, 3, norm_cfg=dict(type='SyncBN'))
    _randomize_bn(fast)
    slow = DecomposedLargeKernelConv(4, 7, 3, fast_path=False)
    slow.load_state_dict(fast.state_dict())
    x = torch.randn(2, 4, 10, 10)
    torch.testing.assert_close(fast(x), slow(x), atol=1e-5, rtol=1e-5)
    fast.eval()
    slow.eval()
    torch.testing.assert_close(fast(x), slow(x), atol=1e-5, rtol=1e-5)
    fast.switch_to_deploy()
    torch.testing.assert_close(fast(x), slow(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('with_cp', [False, True])
def test_backbone_fast_path_equals_official(with_cp):
    """Backbone level, train mode, with and without checkpointing."""
    torch.manual_seed(0)
    fast = SLaK(
        MINI_ARCH,
        kernel_size=MINI_KERNELS,
        out_indices=(0, 3),
        gap_before_final_norm=False,
        layer_scale_init_value=1.,
        with_cp=with_cp)
    _randomize_bn(fast)
    slow = SLaK(
        MINI_ARCH,
        kernel_size=MINI_KERNELS,
        out_indices=(0, 3),
        gap_before_final_norm=False,
        layer_scale_init_value=1.,
        mixer_cfg=dict(fast_path=False))
    slow.load_state_dict(fast.state_dict())
    x = torch.randn(2, 3, 64, 48, requires_grad=True)
    outs, refs = fast(x), slow(x)
    for out, ref in zip(outs, refs):
        torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)
    loss = sum((o * torch.linspace(-1, 1, o.numel()).view_as(o)).sum()
               for o in outs)
    ref_loss = sum((o * torch.linspace(-1, 1, o.numel()).view_as(o)).sum()
                   for o in refs)
    loss.backward()
    ref_loss.backward()
    for (name, p), (_, rp) in zip(fast.named_parameters(),
                                  slow.named_parameters()):
        torch.testing.assert_close(
            p.grad, rp.grad, atol=1e-4, rtol=1e-3, msg=name)
