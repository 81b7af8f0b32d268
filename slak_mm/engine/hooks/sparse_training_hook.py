"""SLaK's dynamic sparse training as an mmengine hook, for any Runner
(mmpretrain, mmseg, mmdet)."""
import copy
import math
import time
from typing import Dict, Optional

import torch
import torch.distributed as torch_dist
import torch.nn.functional as F
from mmengine.dataset import InfiniteSampler
from mmengine.dist import is_distributed

from slak_mm.registry import HOOKS
from slak_mm.sparse import erk_densities, snip_densities, uniform_densities
from slak_mm.sparse.masking import GROWTH_MODES
from .masked_training_hook import (CHECKPOINT_KEY, MaskedTrainingHook,
                                   StaticSparseHook)

__all__ = ['DynamicSparseHook', 'StaticSparseHook']


@HOOKS.register_module()
class DynamicSparseHook(MaskedTrainingHook):
    """SLaK's dynamic sparse training (paper Sec. 4, "dynamic sparsity"),
    as an mmengine hook usable in any config::

        custom_hooks = [dict(type='slak_mm.DynamicSparseHook', sparsity=0.4,
                             init='snip', update_interval=2000,
                             prune_rate=0.5, growth='random')]

    The defaults reproduce the official SLaK / ShiftwiseConv ``Masking``
    (SLaK ``sparse_core.py`` / ``funcs.py``, lidc54/shift-wiseConv
    ``sparse_core.py``); see docs/fidelity.md:

    - Candidate weights: every conv / linear weight (``include='all'``, the
      published default), only the large-kernel strips
      (``'large_kernels'``, official ``--only-L``) or the ``k x k`` pieces of
      ShiftwiseConv layers (``'shiftwise_pieces'``, one mask bit per piece,
      official ``--sparse_type rep_coarse --only_L``). Weights whose
      allocated density is ``>= 0.99`` stay dense.
    - Layer-wise density: ``'snip'`` (the first batch of the shuffled
      training loader, plain cross-entropy on hard labels without batch
      augmentation, global top-k of ``|w * grad|``; scores summed over
      processes), ``'erk'`` or ``'uniform'``; inside a weight the active
      positions are random.
    - After every optimizer step the weights are multiplied by the masks
      (inside the step, see :class:`MaskedTrainingHook`); gradients and
      Adam moments are not masked, SGD momentum is.
    - Every ``update_interval`` optimizer steps, per weight: magnitude
      pruning of ``ceil(rate * active)`` active units, then regrowth at
      inactive ones (``growth``); regrown weights keep their current value.
      The prune rate decays with a cosine from ``prune_rate`` to
      ``prune_rate_min`` over the optimizer steps of the whole run.
    - ShiftwiseConv (``'shiftwise_pieces'``): one density per layer from
      the SNIP scores of all its paths; path 0 gets a random mask that all
      paths copy; in between the paths evolve separately, and every
      ``sparse_gap``-th update path 0 is pruned on ``sum_p |w_p|`` and its
      mask copied to all paths again.
    - Masks are saved in checkpoints (``checkpoint['sparse_training']``) and
      restored by ``--resume``; the schedule is a function of the optimizer
      step, so a resumed run continues bit-exactly. Random decisions use a
      generator seeded with ``seed`` (default: the runner's seed) and the
      step, so all processes make identical choices without exchanging
      masks; ``check_consistency`` compares mask hashes across processes at
      each update.
    - An ``EMAHook`` must use ``slak_mm.MaskedExponentialMovingAverage``,
      which the hook keeps exactly as sparse as the masks.

    The official code's defects this avoids: masks not saved (resume redrew
    them), no masking on its AMP path, masks broadcast from rank 0 every
    step.

    Args:
        sparsity (float): Fraction of candidate weights set to zero, in
            [0, 1). Defaults to 0.4 (density 0.6, the published setting).
        init (str): ``'snip'``, ``'erk'`` or ``'uniform'``.
            Defaults to ``'snip'``.
        update_interval (int, optional): Optimizer steps between mask
            updates (SLaK-T 2000, S/B 100, SW 100). ``None``: the initial
            masks stay fixed (official ``--fix``). Defaults to 2000.
        prune_rate (float): Initial fraction of active units moved per
            update, in [0, 1] (T 0.5, S/B 0.3). Defaults to 0.5.
        prune_rate_min (float): Final prune rate of the cosine decay.
            Defaults to 0.005.
        growth (str): ``'random'`` (official: each inactive unit regrows
            with probability ``pruned / inactive``), ``'random_exact'``
            (option: exactly as many as pruned) or ``'gradient'`` (largest
            ``|grad|`` of the update step). Defaults to ``'random'``.
        include (str): ``'all'``, ``'large_kernels'`` or
            ``'shiftwise_pieces'``. Defaults to ``'all'``.
        prefix (str): Only weights whose name starts with it (e.g.
            ``'backbone.'``). Defaults to ''.
        erk_power_scale (float): Exponent for ``init='erk'``.
        snip_loss (str): ``'ce'`` (official: cross-entropy of the logits
            on the hard labels of an un-augmented batch; for models with
            mmpretrain-style ``gt_label`` data samples) or ``'model'`` (the
            model's own training loss, batch augmentation included). Models
            without ``gt_label`` always use ``'model'``. Defaults to
            ``'ce'``.
        sparse_gap (int, optional): Every ``sparse_gap``-th update is a
            sync of the mask groups (with ``'shiftwise_pieces'``: path 0
            pruned on the paths' summed magnitude, its mask copied to all
            paths; official ``--sparse_gap 131``). Without groups (SLaK
            weights) a sync is a plain update. ``None`` never syncs.
            Defaults to 131.
        mask_optimizer_state (bool): Option: also zero Adam moments of
            masked and regrown weights. Defaults to False (official).
        zero_regrown (bool): Option: regrown weights start at 0. Defaults
            to False (official).
        seed (int, optional): Seed of the mask decisions. Defaults to the
            runner's seed.
        accumulative_counts (int, optional): Iterations per optimizer step
            (gradient accumulation), which converts iterations into the
            optimizer steps of the schedule. Defaults to the config's
            ``optim_wrapper.accumulative_counts`` (1 if unset); set it when
            the Runner is built without a config. Checked at every
            iteration against the optimizer wrapper's ``should_update()``.
        enabled (bool): Switch; ``False`` makes the hook a no-op
            (``--cfg-options custom_hooks.0.enabled=False``).
        check_consistency (bool): Compare mask hashes across processes.

    Raises:
        ValueError: For arguments outside the ranges above.
    """

    def __init__(self,
                 sparsity: float = 0.4,
                 init: str = 'snip',
                 update_interval: Optional[int] = 2000,
                 prune_rate: float = 0.5,
                 prune_rate_min: float = 0.005,
                 growth: str = 'random',
                 include: str = 'all',
                 prefix: str = '',
                 erk_power_scale: float = 1.0,
                 snip_loss: str = 'ce',
                 sparse_gap: Optional[int] = 131,
                 mask_optimizer_state: bool = False,
                 zero_regrown: bool = False,
                 seed: Optional[int] = None,
                 accumulative_counts: Optional[int] = None,
                 enabled: bool = True,
                 check_consistency: bool = True) -> None:
        super().__init__(include, prefix, enabled, check_consistency,
                         mask_optimizer_state)
        if not 0. <= sparsity < 1.:
            raise ValueError(
                f'`sparsity` must be in [0, 1), got {sparsity}.')
        if init not in ('snip', 'erk', 'uniform'):
            raise ValueError("`init` must be 'snip', 'erk' or 'uniform', "
                             f'got {init!r}.')
        if update_interval is not None and (
                not isinstance(update_interval, int) or update_interval < 1):
            raise ValueError('`update_interval` must be a positive int or '
                             f'None, got {update_interval!r}.')
        if not 0. <= prune_rate_min <= prune_rate <= 1.:
            raise ValueError('need 0 <= `prune_rate_min` <= `prune_rate` <= '
                             f'1, got {prune_rate_min} and {prune_rate}.')
        if growth not in GROWTH_MODES:
            raise ValueError(f'`growth` must be one of {GROWTH_MODES}, got '
                             f'{growth!r}.')
        if snip_loss not in ('ce', 'model'):
            raise ValueError("`snip_loss` must be 'ce' or 'model', got "
                             f'{snip_loss!r}.')
        if accumulative_counts is not None and (
                not isinstance(accumulative_counts, int)
                or accumulative_counts < 1):
            raise ValueError('`accumulative_counts` must be a positive int '
                             f'or None, got {accumulative_counts!r}.')
        if sparse_gap is not None and (not isinstance(sparse_gap, int)
                                       or sparse_gap < 1):
            raise ValueError('`sparse_gap` must be a positive int or None, '
                             f'got {sparse_gap!r}.')
        self.sparsity = sparsity
        self.init = init
        self.update_interval = update_interval
        self.prune_rate = prune_rate
        self.prune_rate_min = prune_rate_min
        self.growth = growth
        self.erk_power_scale = erk_power_scale
        self.snip_loss = snip_loss
        self.sparse_gap = sparse_gap
        self.zero_regrown = zero_regrown
        self.seed = seed
        self.accumulative_counts = accumulative_counts
        self._last_update = 0

    def _masking_kwargs(self) -> dict:
        kwargs = dict(super()._masking_kwargs(), zero_regrown=self.zero_regrown)
        if self.include == 'shiftwise_pieces':
            kwargs['share_paths'] = True
        return kwargs

    # -- schedule -------------------------------------------------------
    def _accumulation(self, runner) -> int:
        """Iterations per optimizer step (see ``accumulative_counts``)."""
        if self.accumulative_counts is not None:
            return self.accumulative_counts
        optim_cfg = runner.cfg.get('optim_wrapper') or {}
        return int(optim_cfg.get('accumulative_counts', 1))

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        """Check that the optimizer stepped exactly where the schedule's
        step count assumes (public ``OptimWrapper.should_update()``).

        Raises:
            RuntimeError: If it did not: ``accumulative_counts`` is wrong.
        """
        should_update = getattr(runner.optim_wrapper, 'should_update', None)
        if self.masking is None or should_update is None:
            return
        done = runner.iter + 1
        expected = done % self._accumulation(runner) == 0 or \
            done == runner.max_iters
        if should_update() != expected:
            raise RuntimeError(
                f'{type(self).__name__}: the optimizer wrapper '
                f'{"stepped" if should_update() else "did not step"} at '
                f'iteration {done}, but accumulative_counts='
                f'{self._accumulation(runner)} says otherwise; set the '
                "hook's `accumulative_counts` to the optimizer wrapper's.")

    def total_steps(self, runner) -> int:
        """Optimizer steps of the whole run."""
        return int(math.ceil(runner.max_iters / self._accumulation(runner)))

    def current_step(self, runner) -> int:
        """Optimizer steps done when the current iteration's step ends."""
        return int(math.ceil((runner.iter + 1) / self._accumulation(runner)))

    def prune_rate_at(self, step: int, total_steps: int) -> float:
        """Cosine decay from ``prune_rate`` (step 0) to ``prune_rate_min``
        (last step)."""
        progress = min(step / max(total_steps, 1), 1.)
        return self.prune_rate_min + 0.5 * (
            self.prune_rate - self.prune_rate_min) * (
                1 + math.cos(math.pi * progress))

    def _generator(self, runner, step: int) -> torch.Generator:
        seed = self.seed if self.seed is not None else runner.seed
        return torch.Generator().manual_seed(int(seed) * 1000003 + step)

    # -- initialisation -------------------------------------------------
    def init_masks(self, runner) -> None:
        density = 1. - self.sparsity
        if self.init == 'snip':
            densities = self._snip_densities(runner, density)
        else:
            shapes = {n: tuple(p.shape) for n, p in self.masking.params.items()}
            if self.init == 'uniform':
                densities = uniform_densities(shapes, density)
            else:
                densities = erk_densities(shapes, density,
                                          self.erk_power_scale)
        self.masking.init_random(densities, self._generator(runner, 0))

    def _snip_densities(self, runner, density: float) -> Dict[str, float]:
        """Layer densities from the SNIP scores, ranked globally per unit
        (the mean ``|w * g|`` of a SW piece) and pooled over the weights of
        a mask group (the official SW SNIP ranks every (piece, path))."""
        masking = self.masking
        scores = {
            n: masking.unit_scores(s) * masking.num_units(n) / s.numel()
            for n, s in self.snip_scores(runner).items()
        }
        return masking.expand_group_values(
            snip_densities(masking.group_scores(scores), density))

    def first_batch(self, runner):
        """The first batch of this process's shuffled training loader (the
        batch ``next(iter(train_loader))`` of the official SNIP), built from
        the loader's batch sampler and collate function. The loader itself
        is not iterated: a second iterator over a loader with persistent
        workers would reset the training loop's own iterator.

        mmengine's ``InfiniteSampler`` (iteration-based runs) gives all its
        iterators one shared index stream, which the training loop's
        workers have already started to read (and which closing a second
        iterator would end); the batch is then drawn through a fresh
        sampler with the same dataset, shuffle and seed, i.e. the same
        stream from its start."""
        loader = runner.train_dataloader
        batch_sampler = loader.batch_sampler
        sampler = getattr(batch_sampler, 'sampler', None)
        if isinstance(sampler, InfiniteSampler):
            fresh = InfiniteSampler(
                sampler.dataset, shuffle=sampler.shuffle, seed=sampler.seed)
            batch_sampler = copy.deepcopy(batch_sampler, {id(sampler): fresh})
        indices = next(iter(batch_sampler))
        return loader.collate_fn([loader.dataset[i] for i in indices])

    def _snip_loss(self, model, batch) -> torch.Tensor:
        samples = batch.get('data_samples') if isinstance(batch,
                                                          dict) else None
        if self.snip_loss == 'ce' and samples and all(
                hasattr(s, 'gt_label') for s in samples):
            data = model.data_preprocessor(batch, False)  # no Mixup/CutMix
            logits = model(data['inputs'], data['data_samples'],
                           mode='tensor')
            labels = torch.cat([s.gt_label for s in data['data_samples']])
            return F.cross_entropy(logits, labels.to(logits.device))
        data = model.data_preprocessor(batch, True)
        losses = model(**data, mode='loss') if isinstance(data, dict) \
            else model(*data, mode='loss')
        loss, _ = model.parse_losses(losses)
        return loss

    def snip_scores(self, runner) -> Dict[str, torch.Tensor]:
        """``|w * dL/dw|`` of every candidate weight on
        :meth:`first_batch`, summed over processes. The model stays in
        training mode (drop path, batch statistics) as in the official
        code; its buffers (BN statistics) are restored afterwards."""
        model = self._model(runner)
        buffers = {k: v.clone() for k, v in model.named_buffers()}
        model.zero_grad(set_to_none=True)
        self._snip_loss(model, self.first_batch(runner)).backward()
        scores = {}
        for name, param in self.masking.params.items():
            grad = param.grad if param.grad is not None else \
                torch.zeros_like(param)
            scores[name] = (param.detach() * grad).abs()
        model.zero_grad(set_to_none=True)
        with torch.no_grad():
            for name, buf in model.named_buffers():
                buf.copy_(buffers[name])
        if is_distributed():
            for score in scores.values():
                torch_dist.all_reduce(score)
        return scores

    # -- updates --------------------------------------------------------
    def _due_update(self, runner) -> int:
        """The update step due now (0 if none): the last multiple of
        ``update_interval`` not yet done. A step that AMP's ``GradScaler``
        skipped defers its update to the next real step."""
        if self.update_interval is None:
            return 0
        due = self.current_step(runner) // self.update_interval * \
            self.update_interval
        if due <= self._last_update or not 0 < due < self.total_steps(runner):
            return 0
        return due

    @torch.no_grad()
    def after_optimizer_step(self, runner) -> None:
        """Mask the weights; at an update step, prune and regrow."""
        optimizer = self._optimizer(runner)
        self.masking.apply(optimizer)
        step = self._due_update(runner)
        if not step:
            return
        start = time.perf_counter()
        grads = None
        if self.growth == 'gradient':
            grads = {
                n: p.grad
                for n, p in self.masking.params.items() if p.grad is not None
            }
        rate = self.prune_rate_at(step, self.total_steps(runner))
        update = step // self.update_interval
        sync = self.sparse_gap is not None and update % self.sparse_gap == 0
        moved = self.masking.prune_and_regrow(
            rate,
            self.growth,
            self._generator(runner, step),
            grads=grads,
            optimizer=optimizer,
            sync=sync)
        self._last_update = step
        pruned = sum(p for p, _ in moved.values())
        regrown = sum(r for _, r in moved.values())
        elapsed = time.perf_counter() - start
        runner.message_hub.update_scalar('train/sparse_prune_rate', rate)
        runner.message_hub.update_scalar('train/sparse_moved', pruned)
        self._log_state(
            runner, f'sparse update {update} at step {step} (prune rate '
            f'{rate:.4f}, pruned {pruned}, regrown {regrown}'
            f'{", groups re-shared" if sync else ""}, '
            f'{elapsed * 1000:.0f} ms)')
        self._check_consistency(runner)

    def before_train(self, runner) -> None:
        if self._loaded is None:
            self._last_update = 0
        super().before_train(runner)

    def _extra_state(self) -> dict:
        return dict(last_update=self._last_update)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        super().after_load_checkpoint(runner, checkpoint)
        state = checkpoint.get(CHECKPOINT_KEY)
        if state is None:
            return
        if 'last_update' in state:
            self._last_update = int(state['last_update'])
        elif self.update_interval is not None:  # older checkpoints
            done = int(math.ceil(
                checkpoint.get('meta', {}).get('iter', 0) /
                self._accumulation(runner)))
            self._last_update = done // self.update_interval * \
                self.update_interval
