"""DynamicSparseHook / StaticSparseHook in real mmengine Runners."""
import copy
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.hooks import EMAHook, Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

import slak_mm  # noqa: F401
from slak_mm.engine import DynamicSparseHook, MaskedExponentialMovingAverage
from slak_mm.models import SLaK
from slak_mm.sparse import SparseMasking
from slak_mm.utils import checkpoint_safe_globals


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
    torch.manual_seed(0)  # the same initial head weights in every run
    kwargs.setdefault(
        'train_dataloader',
        dict(
            dataset=ToyData(),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=4,
            num_workers=0,
            collate_fn=dict(type='default_collate')))
    return Runner(
        model=ToyClassifier(),
        work_dir=str(work_dir),
        optim_wrapper=optim_wrapper or dict(
            optimizer=dict(type='AdamW', lr=1e-2, weight_decay=0.05)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(
                type='CheckpointHook', interval=4, by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=hook if isinstance(hook, list) else [hook],
        randomness=dict(seed=0),
        default_scope='mmengine',
        **kwargs)


def _hook(runner):
    return next(h for h in runner.hooks if isinstance(
        h, slak_mm.engine.hooks.MaskedTrainingHook))


def _ema_hook(runner):
    return next(h for h in runner.hooks if isinstance(h, EMAHook))


def _load(path):
    """A Runner checkpoint, through the safe loader (mmengine's objects
    allowed only here)."""
    with checkpoint_safe_globals():
        return torch.load(path, weights_only=True)


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

    ckpt4 = _load(tmp_path / 'a' / 'iter_4.pth')
    ckpt8 = _load(tmp_path / 'a' / 'iter_8.pth')
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
    with checkpoint_safe_globals():  # --resume loads a Runner checkpoint
        runner_b.train()
    hook_b = _hook(runner_b)
    final_b = hook_b.masking.state_dict()
    for k in final_a:
        assert torch.equal(final_a[k], final_b[k]), k
    for k, v in runner_b.model.state_dict().items():
        assert torch.equal(v, weights_a[k]), k  # bit for bit


def test_schedule_and_counts(tmp_path):
    hook_cfg = dict(HOOK, init='erk', update_interval=3,
                    growth='random_exact')
    runner = _runner(tmp_path, hook_cfg, max_iters=7)
    hook = _hook(runner)
    assert isinstance(hook, DynamicSparseHook)
    moved = []

    def spy(rate, growth, generator, grads=None, optimizer=None, sync=False):
        before = {n: int(m.sum()) for n, m in masking.masks.items()}
        result = SparseMasking.prune_and_regrow(masking, rate, growth,
                                                generator, grads, optimizer,
                                                sync)
        assert optimizer is runner.optim_wrapper.optimizer
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
    accumulate = dict(
        optimizer=dict(type='AdamW', lr=1e-2), accumulative_counts=2)
    hook_cfg = dict(HOOK, init='uniform', growth='gradient')
    # A Runner built without a config does not tell the hook about the
    # accumulation: the first iteration without a step is an error.
    with pytest.raises(RuntimeError, match='did not step at iteration 1'):
        _runner(tmp_path / 'unset', hook_cfg, max_iters=8,
                optim_wrapper=accumulate).train()
    runner = _runner(
        tmp_path,
        dict(hook_cfg, accumulative_counts=2),
        max_iters=8,
        optim_wrapper=accumulate)
    runner.train()
    hook = _hook(runner)
    # 4 optimizer steps, interval 2: one update (step 2), sparse at the end
    overall, _ = hook.masking.group_densities()
    assert overall == pytest.approx(0.6, abs=0.01)
    _assert_sparse(runner.model, hook.masking.masks)
    assert hook._last_update == 2


def test_amp_optim_wrapper_stays_sparse(tmp_path, monkeypatch):
    """AmpOptimWrapper (here with CPU autocast; mmengine refuses it without
    a GPU, so that check is bypassed) still gets its masks applied."""
    from mmengine.optim.optimizer import amp_optimizer_wrapper
    monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available',
                        lambda: True)
    runner = _runner(
        tmp_path,
        dict(HOOK, init='uniform', mask_optimizer_state=True),
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
                          (dict(snip_loss='mse'), 'snip_loss'),
                          (dict(sparse_gap=0), 'sparse_gap'),
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
    """SW: one bit per piece, path masks shared at initialisation and
    re-shared at every `sparse_gap`-th update (here updates at steps 1, 2,
    3 with sparse_gap 2: only update 2 syncs)."""
    runner = _runner(
        tmp_path,
        dict(HOOK, include='shiftwise_pieces', sparsity=0.3,
             update_interval=1, sparse_gap=2),
        max_iters=4)
    runner.model = ToySW()  # replaced before training builds anything
    hook = _hook(runner)
    calls = []
    orig_before_train = hook.before_train

    def shared(masking):
        return all(
            torch.equal(masking.masks[m[0]], masking.masks[n])
            for m in masking.groups.values() for n in m[1:])

    def before_train(r):
        orig_before_train(r)
        masking = hook.masking
        calls.append(('init', shared(masking)))
        update = masking.prune_and_regrow

        def spy(*args, sync=False, **kwargs):
            result = update(*args, sync=sync, **kwargs)
            calls.append((sync, shared(masking)))
            return result

        masking.prune_and_regrow = spy

    hook.before_train = before_train
    runner.train()
    assert calls[0] == ('init', True)
    assert [c[0] for c in calls[1:]] == [False, True, False]
    assert calls[2] == (True, True)
    for name, mask in hook.masking.masks.items():
        assert '.paths.' in name
        flat = mask.flatten(1)
        # one bit per k x k piece
        assert torch.equal(flat.all(1), flat.any(1))
    overall, _ = hook.masking.group_densities()
    assert overall == pytest.approx(0.7, abs=0.05)
    _assert_sparse(runner.model, hook.masking.masks)


# ----------------------------------------------------------------------
# fidelity to the official recipe (FIDELITY.md F1, F6, F8, S1)
# ----------------------------------------------------------------------
def test_masked_ema_hand_computed():
    """Official ModelEma.update(model, mask): ema = (d * ema + (1 - d) * w)
    * mask, and positions active in the mask but 0 in the EMA before the
    update (just regrown) take the current weight."""
    model = nn.Linear(4, 1, bias=False)
    ema = MaskedExponentialMovingAverage(model, momentum=0.25)
    d = 0.75
    mask = torch.tensor([[True, True, False, True]])
    masks = {'weight': mask}
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1., 2., 3., 4.]]) * mask)
    ema.set_masks(masks)
    ema.update_parameters(model)  # first update: a copy
    expected = torch.tensor([[1., 2., 0., 4.]])
    torch.testing.assert_close(ema.module.weight, expected)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[2., 1., 0., 8.]]))
    ema.update_parameters(model)
    expected = torch.tensor([[d * 1 + (1 - d) * 2, d * 2 + (1 - d) * 1, 0.,
                              d * 4 + (1 - d) * 8]])
    torch.testing.assert_close(ema.module.weight, expected)
    # prune position 0, regrow position 2 (the weight there is now 5)
    masks['weight'] = torch.tensor([[False, True, True, True]])
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0., 3., 5., 6.]]))
    ema.update_parameters(model)
    expected = torch.tensor([[0., d * expected[0, 1] + (1 - d) * 3, 5.,
                              d * expected[0, 3] + (1 - d) * 6]])
    torch.testing.assert_close(ema.module.weight, expected)
    with pytest.raises(KeyError, match='does not have'):
        ema.set_masks({'bias': mask})


def _ema_cfg(**kwargs):
    return dict(
        type='EMAHook',
        ema_type='slak_mm.MaskedExponentialMovingAverage',
        momentum=0.1,
        update_buffers=True,
        **kwargs)


def _assert_ema_follows_masks(ema_state, masks, model_state):
    for name, mask in masks.items():
        assert torch.all(ema_state[name].cpu()[~mask] == 0), name
        # and the average is not empty where the mask is active (weights
        # whose kernel taps never see the tiny feature maps stay 0)
        assert torch.count_nonzero(ema_state[name].cpu()[mask]) >= \
            0.9 * torch.count_nonzero(model_state[name].cpu()[mask]), name


def test_ema_obeys_masks_whatever_the_priority(tmp_path):
    """The averaged model has zeros exactly where the masks have zeros in
    memory and in both checkpoint entries (state_dict = EMA weights,
    ema_state_dict), with the EMAHook before or after the sparse hook and
    with gradient accumulation; the result does not depend on the
    priority."""
    saved = {}
    for priority in ('VERY_HIGH', 'LOW'):
        runner = _runner(
            tmp_path / priority,
            [dict(HOOK, update_interval=1, accumulative_counts=2),
             _ema_cfg(priority=priority)],
            max_iters=8,
            optim_wrapper=dict(
                optimizer=dict(type='AdamW', lr=1e-2),
                accumulative_counts=2))
        runner.train()
        masks = _hook(runner).masking.state_dict()
        ema = _ema_hook(runner).ema_model
        weights = runner.model.state_dict()
        _assert_ema_follows_masks(ema.module.state_dict(), masks, weights)
        ckpt = _load(tmp_path / priority / 'iter_8.pth')
        # EMAHook swaps them: `state_dict` holds the EMA weights,
        # `ema_state_dict` the trained ones
        _assert_ema_follows_masks(ckpt['state_dict'], masks, weights)
        _assert_ema_follows_masks(
            {k[len('module.'):]: v
             for k, v in ckpt['ema_state_dict'].items() if k != 'steps'},
            masks, weights)
        for name, mask in ckpt['sparse_training']['masks'].items():
            assert torch.equal(mask, masks[name])
        saved[priority] = ckpt
    for key, value in saved['VERY_HIGH']['ema_state_dict'].items():
        # bit for bit: the same computation in another hook order
        assert torch.equal(saved['LOW']['ema_state_dict'][key], value), key


def test_plain_ema_with_sparse_hook_is_an_error(tmp_path):
    runner = _runner(tmp_path, [dict(HOOK), dict(type='EMAHook')],
                     max_iters=2)
    with pytest.raises(TypeError, match='MaskedExponentialMovingAverage'):
        runner.train()


def test_resume_is_bit_exact_with_ema(tmp_path):
    hooks = [dict(HOOK, update_interval=3), _ema_cfg()]
    runner = _runner(tmp_path / 'a', copy.deepcopy(hooks), max_iters=8)
    runner.train()
    final = _load(tmp_path / 'a' / 'iter_8.pth')
    runner_b = _runner(
        tmp_path / 'b',
        copy.deepcopy(hooks),
        max_iters=8,
        resume=True,
        load_from=str(tmp_path / 'a' / 'iter_4.pth'))
    with checkpoint_safe_globals():  # --resume loads a Runner checkpoint
        runner_b.train()
    resumed = _load(tmp_path / 'b' / 'iter_8.pth')
    for key in ('state_dict', 'ema_state_dict'):
        assert final[key].keys() == resumed[key].keys()
        for name, value in final[key].items():  # bit for bit
            assert torch.equal(resumed[key][name], value), (key, name)
    assert final['sparse_training']['last_update'] == 6
    for name, mask in final['sparse_training']['masks'].items():
        assert torch.equal(resumed['sparse_training']['masks'][name], mask)
    for idx, state in final['optimizer']['state'].items():
        for key, value in state.items():  # bit for bit
            assert torch.equal(resumed['optimizer']['state'][idx][key],
                               value), (idx, key)


class _FirstBatch(Hook):

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter == 0:
            self.batch = data_batch


@pytest.mark.parametrize('sampler', ['DefaultSampler', 'InfiniteSampler'])
@pytest.mark.parametrize('num_workers', [0, 2])
def test_snip_uses_the_first_shuffled_batch(tmp_path, sampler, num_workers):
    """The SNIP batch is the one the training loop gets first (epoch 0 of
    the shuffled sampler), not the first samples of the dataset; with an
    InfiniteSampler (one index stream shared by its iterators) and loader
    workers reading ahead, too, and the training stream is left intact
    (the run goes on past the batches the workers had prefetched)."""
    spy = _FirstBatch()
    runner = _runner(
        tmp_path,
        dict(HOOK),
        max_iters=12,
        train_dataloader=dict(
            dataset=ToyData(),
            sampler=dict(type=sampler, shuffle=True),
            batch_size=4,
            num_workers=num_workers,
            persistent_workers=num_workers > 0,
            collate_fn=dict(type='default_collate')))
    runner.register_hook(spy)
    seen = {}
    hook = _hook(runner)
    orig = hook.first_batch

    def first_batch(r):
        seen['batch'] = orig(r)
        return seen['batch']

    hook.first_batch = first_batch
    runner.train()
    assert torch.equal(seen['batch']['inputs'], spy.batch['inputs'])
    assert not torch.equal(seen['batch']['labels'], ToyData().y[:4]) or \
        not torch.equal(seen['batch']['inputs'], ToyData().x[:4])


def test_fixed_masks_with_update_interval_none(tmp_path):
    runner = _runner(tmp_path, dict(HOOK, update_interval=None), max_iters=6)
    hook = _hook(runner)
    seen = []
    orig = hook.before_train

    def before_train(r):
        orig(r)
        seen.append(hook.masking.state_dict())

    hook.before_train = before_train
    runner.train()
    for name, mask in hook.masking.state_dict().items():
        assert torch.equal(mask, seen[0][name])
    _assert_sparse(runner.model, hook.masking.masks)


def test_snip_is_plain_ce_without_batch_augments():
    """Official SNIP loss: cross-entropy of the logits on the hard labels
    of the un-augmented batch, although the classifier trains with Mixup
    and label smoothing (`snip_loss='model'` uses those)."""
    from mmengine.registry import MODELS, DefaultScope
    from mmpretrain.structures import DataSample
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(
            dict(
                type='ImageClassifier',
                backbone=dict(
                    type='slak_mm.SLaK',
                    arch=dict(depths=[1, 1, 1, 1], channels=[8, 8, 16, 16]),
                    kernel_size=[9, 7, 7, 5, 3]),
                head=dict(
                    type='LinearClsHead',
                    num_classes=4,
                    in_channels=20,
                    loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1,
                              mode='original')),
                data_preprocessor=dict(
                    type='ClsDataPreprocessor', num_classes=4,
                    mean=[0., 0., 0.], std=[255., 255., 255.]),
                train_cfg=dict(augments=dict(type='Mixup', alpha=0.8))))
    model.eval()  # deterministic forward for the comparison
    gen = torch.Generator().manual_seed(0)
    images = [torch.randint(0, 256, (3, 32, 32), generator=gen,
                            dtype=torch.uint8) for _ in range(4)]
    labels = [0, 1, 2, 3]
    batch = dict(inputs=images,
                 data_samples=[DataSample().set_gt_label(i) for i in labels])
    expected = F.cross_entropy(
        model(torch.stack(images).float() / 255., mode='tensor'),
        torch.tensor(labels))
    hook = DynamicSparseHook()
    torch.testing.assert_close(hook._snip_loss(model, batch), expected,
                               rtol=1e-5, atol=1e-6)
    torch.manual_seed(0)
    with_model_loss = DynamicSparseHook(snip_loss='model')._snip_loss(
        model, batch)
    assert not torch.allclose(with_model_loss, expected, rtol=1e-3)
