"""The GPU path: large kernels, backbones and sparse training on CUDA.

Every test here needs a CUDA device (marker ``cuda``); without one they are
skipped. ``tools/gpu_check.sh`` runs them on a GPU machine. CPU results are
the reference: fp32 on both devices with TF32 off, tolerances scaled to the
magnitude of the compared tensors.
"""
import copy
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.runner import Runner

from slak_mm.models import (DecomposedLargeKernelConv, ShiftWiseV1,
                            ShiftWiseV2, SLaK)
from .tool_runs import run_tool
from .test_engine.test_sparse_hook import (HOOK, ToyClassifier, ToyData,
                                                _assert_sparse, _hook)

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(
        not torch.cuda.is_available(), reason='needs a CUDA device')
]
ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(depths=[1, 1, 2, 1], channels=[16, 16, 32, 32])


@pytest.fixture(autouse=True)
def no_tf32():
    """fp32 on the GPU, not TF32: the comparisons below are fp32 vs fp32."""
    saved = (torch.backends.cuda.matmul.allow_tf32,
             torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    yield
    (torch.backends.cuda.matmul.allow_tf32,
     torch.backends.cudnn.allow_tf32) = saved


def assert_close(actual, expected, rtol=1e-4):
    """``actual`` (any device) equals the CPU ``expected`` up to ``rtol``
    of the largest magnitude in ``expected``."""
    expected = expected.detach().float().cpu()
    scale = expected.abs().max().clamp_min(1e-12).item()
    torch.testing.assert_close(
        actual.detach().float().cpu(), expected, rtol=rtol,
        atol=rtol * scale)


def _backbones():
    return {
        'slak': lambda: SLaK(SMALL, kernel_size=[13, 11, 9, 7, 3],
                             width_factor=1.0, out_indices=(0, 1, 2, 3),
                             gap_before_final_norm=False),
        'sw_v1': lambda: ShiftWiseV1(SMALL, kernel_size=[13, 11, 9, 7, 3],
                                     out_indices=(0, 1, 2, 3),
                                     gap_before_final_norm=False),
        'sw_v2': lambda: ShiftWiseV2(SMALL, kernel_size=[13, 11, 9, 7, 3],
                                     out_indices=(0, 1, 2, 3),
                                     gap_before_final_norm=False),
    }


def _randomize_bn(model):
    """Non-trivial BN statistics, so that deploy-form folding is tested."""
    gen = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.copy_(torch.randn(
                module.num_features, generator=gen) * 0.1)
            module.running_var.copy_(torch.rand(
                module.num_features, generator=gen) + 0.5)


@pytest.mark.parametrize('deploy', [False, True])
def test_large_kernel_conv_matches_cpu(deploy):
    """Forward and input / weight gradients of the module (train mode) and
    of its deploy form (eval mode) on CUDA equal the CPU ones."""
    torch.manual_seed(0)
    cpu = DecomposedLargeKernelConv(24, 31, 5)
    _randomize_bn(cpu)
    x = torch.randn(2, 24, 40, 36)
    if deploy:
        cpu.eval()
        cpu.switch_to_deploy()
    gpu = copy.deepcopy(cpu).cuda()
    outs = []
    for module, inputs in ((cpu, x.clone()), (gpu, x.cuda())):
        inputs.requires_grad_(True)
        out = module(inputs)
        out.square().mean().backward()
        outs.append((out, inputs.grad,
                     {n: p.grad for n, p in module.named_parameters()}))
    assert_close(outs[1][0], outs[0][0])
    assert_close(outs[1][1], outs[0][1])
    for name, grad in outs[0][2].items():
        assert_close(outs[1][2][name], grad)


@pytest.mark.parametrize('name', ['slak', 'sw_v1', 'sw_v2'])
def test_backbones_and_deploy_match_cpu(name):
    """Backbone outputs on CUDA (plain and channels_last inputs, train-form
    and deploy-form) equal the CPU outputs of the same weights."""
    torch.manual_seed(0)
    cpu = _backbones()[name]()
    cpu.init_weights()
    _randomize_bn(cpu)
    cpu.eval()
    x = torch.randn(2, 3, 96, 80)
    gpu = copy.deepcopy(cpu).cuda()
    with torch.no_grad():
        expected = cpu(x)
        for inputs in (x.cuda(),
                       x.cuda().to(memory_format=torch.channels_last)):
            for out, ref in zip(gpu(inputs), expected):
                assert out.shape == ref.shape
                assert_close(out, ref)
        gpu.switch_to_deploy()
        cpu.switch_to_deploy()
        expected_deploy = cpu(x)
        for out, ref, train_form in zip(gpu(x.cuda()), expected_deploy,
                                        expected):
            assert_close(out, ref)
            assert_close(out, train_form, rtol=1e-3)


class BlowUpAt(Hook):
    """Makes the loss of the given iterations infinite: fp16's GradScaler
    then skips those optimizer steps."""

    def __init__(self, iters):
        self.iters = set(iters)
        self.before = {}

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        runner.model.blow_up = runner.iter in self.iters
        if runner.model.blow_up:
            self.before[runner.iter] = {
                n: p.detach().clone()
                for n, p in runner.model.named_parameters()
            }


class ToyWithOverflow(ToyClassifier):
    blow_up = False

    def forward(self, inputs, labels=None, mode='tensor'):
        out = super().forward(inputs, labels, mode)
        if mode == 'loss' and self.blow_up:
            out = dict(loss=out['loss'] * float('inf'))
        return out


@pytest.mark.parametrize('dtype', ['float16', 'bfloat16'])
def test_amp_training_keeps_masks_exact(tmp_path, dtype):
    """AMP training on CUDA with DynamicSparseHook: the weights are exactly
    zero outside the masks after every kind of step, including fp16 steps
    that GradScaler skips on overflow (weights unchanged there), and the
    mask update due at a skipped step still happens."""
    torch.manual_seed(0)
    blow_up = BlowUpAt([1, 2] if dtype == 'float16' else [])
    runner = Runner(
        model=ToyWithOverflow(),
        work_dir=str(tmp_path),
        train_dataloader=dict(
            dataset=ToyData(),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=4,
            num_workers=0,
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(
            type='AmpOptimWrapper',
            dtype=dtype,
            optimizer=dict(type='AdamW', lr=1e-2)),
        train_cfg=dict(by_epoch=False, max_iters=6),
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[dict(HOOK, init='uniform', update_interval=2),
                      blow_up],
        randomness=dict(seed=0),
        default_scope='mmengine')
    runner.train()
    hook = _hook(runner)
    assert next(runner.model.parameters()).is_cuda
    _assert_sparse(runner.model, hook.masking.masks)
    overall, _ = hook.masking.group_densities()
    assert overall == pytest.approx(0.6, abs=0.01)
    # fp16: the update due at step 2 (skipped) is done at step 4
    assert hook._last_update == 4
    if dtype == 'float16':
        # iteration 2 started from the weights iteration 1 left: both of
        # their steps were skipped
        for name, param in blow_up.before[2].items():
            assert torch.equal(param, blow_up.before[1][name]), name


def _tiny_imagenet(root, num_images=16):
    """An ImageNet-layout folder of random 64x64 images in 4 classes
    (``train/``, ``meta/train.txt``): the GPU machine has no datasets."""
    from PIL import Image
    gen = torch.Generator().manual_seed(0)
    (root / 'meta').mkdir(parents=True)
    lines = []
    for i in range(num_images):
        name = f'c{i % 4}/img{i}.png'
        (root / 'train' / name).parent.mkdir(parents=True, exist_ok=True)
        pixels = torch.randint(0, 256, (64, 64, 3), generator=gen)
        Image.fromarray(pixels.to(torch.uint8).numpy()).save(
            root / 'train' / name)
        lines.append(f'{name} {i % 4}')
    (root / 'meta' / 'train.txt').write_text('\n'.join(lines) + '\n')
    return root


def test_syncbn_training_in_torchrun_with_nccl(tmp_path):
    """A one-process torchrun job (nccl) trains the mini classification
    config with SyncBN branch norms (mmengine keeps SyncBN when
    distributed) and DynamicSparseHook, and finishes with a checkpoint."""
    data = _tiny_imagenet(tmp_path / 'data')
    log = run_tool([
        sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=1',
        '--master_port=29531', 'tools/train.py',
        'tests/data/configs/slak_mini_dst_in1k.py', '--launcher', 'pytorch',
        '--work-dir',
        str(tmp_path / 'work'), '--cfg-options',
        f'train_dataloader.dataset.data_root={data}',
        'train_dataloader.batch_size=4', 'train_cfg.max_epochs=1',
        'train_cfg.val_interval=2', 'val_cfg=None', 'val_dataloader=None',
        'val_evaluator=None', 'default_hooks.checkpoint.interval=1',
        "model.backbone.mixer_cfg.norm_cfg.type='SyncBN'",
        "env_cfg.dist_cfg.backend='nccl'"
    ], timeout=600)
    assert 'Distributed training: True' in log, log[-4000:]
    assert "'backend': 'nccl'" in log, log[-4000:]
    assert 'DynamicSparseHook' in log, log[-4000:]
    assert (tmp_path / 'work' / 'epoch_1.pth').exists()
