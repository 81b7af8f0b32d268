"""DynamicSparseHook / StaticSparseHook in real mmengine Runners."""
import copy
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

import slak_mm  # noqa: F401
from slak_mm.engine import DynamicSparseHook
from slak_mm.models import SLaK
from slak_mm.sparse import SparseMasking


class ToyClassifier(BaseModel):

    def __init__(self):
        super().__init__()
        self.backbone = SLaK(
            dict(depths=[1, 1, 2, 1], channels=[8, 8, 16, 16]),
            kernel_size=[9, 7, 7, 5, 3])
        self.head = nn.Linear(20, 4)

    def forward(self, inputs, labels=None, mode='tensor'):
        logits = self.head(self.backbone(inputs)[0])
        if mode == 'loss':
            return dict(loss=F.cross_entropy(logits, labels))
        return logits


class ToyData(Dataset):

    def __init__(self, n=32):
        gen = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 3, 32, 32, generator=gen)
        self.y = torch.randint(0, 4, (n, ), generator=gen)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return dict(inputs=self.x[i], labels=self.y[i])


def _runner(work_dir, hook, max_iters=8, optim_wrapper=None, **kwargs):
    return Runner(
        model=ToyClassifier(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=ToyData(),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=4,
            num_workers=0,
            collate_fn=dict(type='default_collate')),
        optim_wrapper=optim_wrapper or dict(
            optimizer=dict(type='AdamW', lr=1e-2, weight_decay=0.05)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(
                type='CheckpointHook', interval=4, by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[hook],
        randomness=dict(seed=0),
        default_scope='mmengine',
        **kwargs)


def _hook(runner):
    return next(h for h in runner.hooks
                if isinstance(h, slak_mm.engine.hooks.sparse_training_hook.
                              _MaskedTrainingHook))


def _assert_sparse(model, masks):
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        assert torch.all(params[name].detach().cpu()[~mask] == 0), name


HOOK = dict(
    type='slak_mm.DynamicSparseHook',
    sparsity=0.4,
    init='snip',
    update_interval=2,
    prune_rate=0.5)


def test_dynamic_training_resume_is_bit_exact(tmp_path):
    # continuous run: 8 iterations, updates at steps 2, 4, 6
    runner = _runner(tmp_path / 'a', copy.deepcopy(HOOK))
    runner.train()
    hook = _hook(runner)
    overall, _ = hook.masking.group_densities()
    assert overall == pytest.approx(0.6, abs=0.01)
    _assert_sparse(runner.model, hook.masking.masks)
    final_a = hook.masking.state_dict()
    weights_a = {k: v.clone() for k, v in runner.model.state_dict().items()}

    ckpt4 = torch.load(tmp_path / 'a' / 'iter_4.pth', weights_only=True)
    ckpt8 = torch.load(tmp_path / 'a' / 'iter_8.pth', weights_only=True)
    saved4 = ckpt4['sparse_training']['masks']
    assert ckpt8['sparse_training']['masks'].keys() == final_a.keys()
    for k in final_a:
        assert torch.equal(ckpt8['sparse_training']['masks'][k], final_a[k])
    # masks changed between the two checkpoints (update at step 6)
    assert any(not torch.equal(saved4[k], final_a[k]) for k in final_a)

    # resumed run from iter_4: masks restored bit for bit, then the update
    # at step 6 gives the same masks and weights as the continuous run
    runner_b = _runner(
        tmp_path / 'b',
        copy.deepcopy(HOOK),
        resume=True,
        load_from=str(tmp_path / 'a' / 'iter_4.pth'))
    runner_b.train()
    hook_b = _hook(runner_b)
    final_b = hook_b.masking.state_dict()
    for k in final_a:
        assert torch.equal(final_a[k], final_b[k]), k
    for k, v in runner_b.model.state_dict().items():
        torch.testing.assert_close(v, weights_a[k], rtol=0, atol=0)


def test_schedule_and_counts(tmp_path):
    hook_cfg = dict(HOOK, init='erk', update_interval=3)
    runner = _runner(tmp_path, hook_cfg, max_iters=7)
    hook = _hook(runner)
    assert isinstance(hook, DynamicSparseHook)
    moved = []

    def spy(rate, growth, generator, grads=None, optimizer=None):
        before = {n: int(m.sum()) for n, m in masking.masks.items()}
        result = SparseMasking.prune_and_regrow(masking, rate, growth,
                                                generator, grads, optimizer)
        after = {n: int(m.sum()) for n, m in masking.masks.items()}
        assert before == after
        for name, (pruned, grown) in result.items():
            assert pruned == grown == math.ceil(rate * before[name])
        moved.append(rate)
        return result

    masking = None
    orig_before_train = hook.before_train

    def before_train(r):
        nonlocal masking
        orig_before_train(r)
        masking = hook.masking
        masking.prune_and_regrow = spy

    hook.before_train = before_train
    runner.train()
    # 7 steps, interval 3: updates at steps 3 and 6 with the cosine rates
    expected = [
        0.005 + 0.5 * (0.5 - 0.005) * (1 + math.cos(math.pi * s / 7))
        for s in (3, 6)
    ]
    assert moved == pytest.approx(expected)


def test_gradient_accumulation_and_gradient_growth(tmp_path):
    hook_cfg = dict(HOOK, init='uniform', growth='gradient')
    runner = _runner(
        tmp_path,
        hook_cfg,
        max_iters=8,
        optim_wrapper=dict(
            optimizer=dict(type='AdamW', lr=1e-2), accumulative_counts=2))
    runner.train()
    hook = _hook(runner)
    # 4 optimizer steps, interval 2: one update (step 2), sparse at the end
    overall, _ = hook.masking.group_densities()
    assert overall == pytest.approx(0.6, abs=0.01)
    _assert_sparse(runner.model, hook.masking.masks)
    assert not hook._grad_handles


def test_amp_optim_wrapper_stays_sparse(tmp_path, monkeypatch):
    """AmpOptimWrapper (here with CPU autocast; mmengine refuses it without
    a GPU, so that check is bypassed) still gets its masks applied."""
    from mmengine.optim.optimizer import amp_optimizer_wrapper
    monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available',
                        lambda: True)
    runner = _runner(
        tmp_path,
        dict(HOOK, init='uniform'),
        max_iters=4,
        optim_wrapper=dict(
            type='AmpOptimWrapper',
            dtype='bfloat16',
            optimizer=dict(type='AdamW', lr=1e-2)))
    runner.train()
    hook = _hook(runner)
    assert type(runner.optim_wrapper).__name__ == 'AmpOptimWrapper'
    _assert_sparse(runner.model, hook.masking.masks)
    optimizer = runner.optim_wrapper.optimizer
    params = dict(runner.model.named_parameters())
    for name, mask in hook.masking.masks.items():
        state = optimizer.state[params[name]]
        assert torch.all(state['exp_avg'][~mask] == 0)


def test_static_hook_keeps_zero_pattern(tmp_path):
    runner = _runner(tmp_path, dict(type='slak_mm.StaticSparseHook'))
    # a "sparse pretrained" backbone: zero 30% of each large kernel
    gen = torch.Generator().manual_seed(1)
    zeros = {}
    for name, p in runner.model.named_parameters():
        if name.startswith('backbone.') and p.ndim == 4:
            zeros[name] = torch.rand(p.shape, generator=gen) < 0.3
    orig = runner._init_model_weights

    def init_then_sparsify():
        orig()
        params = dict(runner.model.named_parameters())
        with torch.no_grad():
            for name, z in zeros.items():
                params[name][z] = 0.

    runner._init_model_weights = init_then_sparsify
    runner.train()
    params = dict(runner.model.named_parameters())
    for name, z in zeros.items():
        assert torch.all(params[name][z] == 0), name
        # the other weights trained
        assert torch.any(params[name][~z] != 0)
    assert 'head.weight' not in _hook(runner).masking.masks


def test_disabled_and_argument_errors(tmp_path):
    runner = _runner(tmp_path, dict(HOOK, enabled=False), max_iters=2)
    runner.train()
    assert _hook(runner).masking is None
    for kwargs, match in [(dict(sparsity=1.0), 'sparsity'),
                          (dict(init='random'), 'init'),
                          (dict(update_interval=0), 'update_interval'),
                          (dict(prune_rate=1.5), 'prune_rate'),
                          (dict(growth='momentum'), 'growth'),
                          (dict(include='heads'), 'include')]:
        with pytest.raises(ValueError, match=match):
            DynamicSparseHook(**kwargs)


class ToySW(ToyClassifier):

    def __init__(self):
        super().__init__()
        from slak_mm.models import ShiftWiseV1
        self.backbone = ShiftWiseV1(
            arch=dict(depths=[1, 1, 1, 1], channels=[8, 8, 16, 16]),
            kernel_size=[9, 7, 7, 5, 3])
        self.head = nn.Linear(16, 4)


def test_shiftwise_pieces_coarse_masks(tmp_path):
    runner = _runner(
        tmp_path,
        dict(HOOK, include='shiftwise_pieces', sparsity=0.3),
        max_iters=4)
    runner.model = ToySW()  # replaced before training builds anything
    runner.train()
    hook = _hook(runner)
    assert hook.masking.masks
    for name, mask in hook.masking.masks.items():
        assert '.paths.' in name
        flat = mask.flatten(1)
        # one bit per k x k piece
        assert torch.equal(flat.all(1), flat.any(1))
    overall, _ = hook.masking.group_densities()
    assert overall == pytest.approx(0.7, abs=0.02)
    _assert_sparse(runner.model, hook.masking.masks)
