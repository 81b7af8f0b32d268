"""Sparse training hooks: SLaK's dynamic sparsity and fixed-mask
fine-tuning, for any mmengine Runner (mmpretrain, mmseg, mmdet)."""
import math
import time
from typing import Dict, Optional

import torch
import torch.distributed as torch_dist
from mmengine.dist import all_gather_object, get_dist_info, is_distributed
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from slak_mm.registry import HOOKS
from slak_mm.sparse import (SparseMasking, erk_densities,
                            select_sparse_weights, snip_densities,
                            uniform_densities)
from slak_mm.sparse.shiftwise import (PieceSparseMasking, piece_scores,
                                      select_shiftwise_pieces)

CHECKPOINT_KEY = 'sparse_training'


class _MaskedTrainingHook(Hook):
    """Shared machinery: candidate weights, masks applied after every
    optimizer step, masks saved in / restored from checkpoints, consistency
    across processes. Subclasses implement ``init_masks(runner)``."""
    priority = 'NORMAL'  # before LoggerHook and CheckpointHook
    includes = ('all', 'large_kernels', 'shiftwise_pieces')

    def __init__(self,
                 include: str = 'all',
                 prefix: str = '',
                 enabled: bool = True,
                 check_consistency: bool = True) -> None:
        if include not in self.includes:
            raise ValueError(f'`include` must be one of {self.includes}, '
                             f'got {include!r}.')
        self.include = include
        self.prefix = prefix
        self.enabled = enabled
        self.check_consistency = check_consistency
        self.masking: Optional[SparseMasking] = None
        self._loaded: Optional[dict] = None

    # -- helpers --------------------------------------------------------
    @staticmethod
    def _model(runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    @staticmethod
    def _optimizer(runner):
        return getattr(runner.optim_wrapper, 'optimizer', None)

    @staticmethod
    def _accumulation(runner) -> int:
        return int(getattr(runner.optim_wrapper, '_accumulative_counts', 1))

    def _stepped(self, runner) -> bool:
        """Whether the optimizer stepped in the iteration just finished."""
        done = runner.iter + 1
        return done % self._accumulation(runner) == 0 or \
            done == runner.max_iters

    def _log_state(self, runner, prefix: str) -> None:
        overall, groups = self.masking.group_densities()
        per_group = ', '.join(f'{g} {d:.4f}' for g, d in groups.items())
        runner.logger.info(
            f'{prefix}: {len(self.masking.masks)}/'
            f'{len(self.masking.params)} weights masked, density '
            f'{overall:.4f} ({per_group}), masks sha1 '
            f'{self.masking.digest()}')
        runner.message_hub.update_scalar('train/sparse_density', overall)

    def _check_consistency(self, runner) -> None:
        if not (self.check_consistency and is_distributed()):
            return
        digests = all_gather_object(self.masking.digest())
        if len(set(digests)) != 1:
            raise RuntimeError(
                f'sparse masks differ between processes: {digests}')
        runner.logger.info(f'sparse masks identical on {len(digests)} '
                           f'processes (sha1 {digests[0][:12]})')

    # -- hook points ----------------------------------------------------
    def before_train(self, runner) -> None:
        if not self.enabled:
            runner.logger.info(f'{type(self).__name__} disabled.')
            return
        model = self._model(runner)
        if self.include == 'shiftwise_pieces':
            # ShiftwiseConv: one mask bit per k x k piece (published SW)
            names = select_shiftwise_pieces(model, self.prefix)
            self.masking = PieceSparseMasking(model, names)
        else:
            names = select_sparse_weights(model, self.include, self.prefix)
            self.masking = SparseMasking(model, names)
        if self._loaded is not None:
            state = {
                n: m
                for n, m in self._loaded['masks'].items()
                if n in self.masking.params
            }
            ignored = len(self._loaded['masks']) - len(state)
            self.masking.load_state_dict(state)
            runner.logger.info(
                f'{type(self).__name__}: {len(state)} masks restored from '
                f'the checkpoint' +
                (f' ({ignored} for other weights ignored)'
                 if ignored else ''))
        else:
            self.init_masks(runner)
        self.masking.apply(self._optimizer(runner))
        self._log_state(runner, type(self).__name__)
        self._check_consistency(runner)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        if self.masking is None or not self._stepped(runner):
            return
        self.masking.apply(self._optimizer(runner))

    def after_train(self, runner) -> None:
        if self.masking is not None:
            self._log_state(runner, f'{type(self).__name__} (end)')
            self._check_consistency(runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.masking is not None:
            checkpoint[CHECKPOINT_KEY] = dict(
                hook=type(self).__name__, masks=self.masking.state_dict())

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get(CHECKPOINT_KEY)
        if state is None:
            return
        self._loaded = state
        if self.masking is not None:  # loaded after training started
            self.masking.load_state_dict({
                n: m
                for n, m in state['masks'].items()
                if n in self.masking.params
            })


@HOOKS.register_module()
class DynamicSparseHook(_MaskedTrainingHook):
    """SLaK's dynamic sparse training (paper Sec. 4, "dynamic sparsity"),
    as an mmengine hook usable in any config::

        custom_hooks = [dict(type='slak_mm.DynamicSparseHook', sparsity=0.4,
                             init='snip', update_interval=2000,
                             prune_rate=0.5, growth='random')]

    - Candidate weights: every conv / linear weight (``include='all'``, the
      published default) or only the large-kernel branches
      (``'large_kernels'``); layers whose allocated density is ``>= 0.99``
      stay dense.
    - Layer-wise density: ``'snip'`` (one batch of the train loader, global
      top-k of ``|w * grad|``; scores summed over processes), ``'erk'`` or
      ``'uniform'``; inside a layer the positions are random.
    - Every ``update_interval`` optimizer steps, per layer: magnitude prune
      of ``ceil(rate * nnz)`` active weights and regrowth of the same count
      (``growth='random'`` or ``'gradient'``: largest dense ``|grad|`` of
      that step, summed over processes); regrown weights start at zero. The
      prune rate follows a cosine decay from ``prune_rate`` to
      ``prune_rate_min`` over the optimizer steps of the whole run.
    - After every optimizer step (plain, AMP or accumulated) masked weights
      and their Adam / momentum state are zeroed.
    - Masks are saved in checkpoints (``checkpoint['sparse_training']``) and
      restored by ``--resume``; the schedule is a function of the optimizer
      step, so it continues from the resumed iteration.
    - Random decisions use a generator seeded with ``seed`` (default: the
      runner's seed) and the step, so all processes make identical choices
      without exchanging masks; ``check_consistency`` compares mask hashes
      across processes at each update.

    The official code's defects this avoids: masks not saved (resume redrew
    them), no masking on its AMP path, masks broadcast from rank 0 every
    step, Adam moments of pruned weights left in place.

    Args:
        sparsity (float): Fraction of candidate weights set to zero, in
            [0, 1). Defaults to 0.4 (density 0.6, the published setting).
        init (str): ``'snip'``, ``'erk'`` or ``'uniform'``.
            Defaults to ``'snip'``.
        update_interval (int): Optimizer steps between mask updates
            (SLaK-T 2000, S/B 100). Defaults to 2000.
        prune_rate (float): Initial fraction of active weights moved per
            update, in [0, 1] (T 0.5, S/B 0.3). Defaults to 0.5.
        prune_rate_min (float): Final prune rate of the cosine decay.
            Defaults to 0.005.
        growth (str): ``'random'`` or ``'gradient'``. Defaults to
            ``'random'``.
        include (str): ``'all'``, ``'large_kernels'`` or
            ``'shiftwise_pieces'`` (the k x k pieces of ShiftwiseConv layers,
            one mask bit per piece, L1 pruning: the published SW setting).
            Defaults to ``'all'``.
        prefix (str): Only weights whose name starts with it (e.g.
            ``'backbone.'``). Defaults to ''.
        erk_power_scale (float): Exponent for ``init='erk'``.
        seed (int, optional): Seed of the mask decisions. Defaults to the
            runner's seed.
        enabled (bool): Switch; ``False`` makes the hook a no-op
            (``--cfg-options custom_hooks.0.enabled=False``).
        check_consistency (bool): Compare mask hashes across processes.

    Raises:
        ValueError: For arguments outside the ranges above.
    """

    def __init__(self,
                 sparsity: float = 0.4,
                 init: str = 'snip',
                 update_interval: int = 2000,
                 prune_rate: float = 0.5,
                 prune_rate_min: float = 0.005,
                 growth: str = 'random',
                 include: str = 'all',
                 prefix: str = '',
                 erk_power_scale: float = 1.0,
                 seed: Optional[int] = None,
                 enabled: bool = True,
                 check_consistency: bool = True) -> None:
        super().__init__(include, prefix, enabled, check_consistency)
        if not 0. <= sparsity < 1.:
            raise ValueError(
                f'`sparsity` must be in [0, 1), got {sparsity}.')
        if init not in ('snip', 'erk', 'uniform'):
            raise ValueError("`init` must be 'snip', 'erk' or 'uniform', "
                             f'got {init!r}.')
        if not isinstance(update_interval, int) or update_interval < 1:
            raise ValueError('`update_interval` must be a positive int, got '
                             f'{update_interval!r}.')
        if not 0. <= prune_rate_min <= prune_rate <= 1.:
            raise ValueError('need 0 <= `prune_rate_min` <= `prune_rate` <= '
                             f'1, got {prune_rate_min} and {prune_rate}.')
        if growth not in ('random', 'gradient'):
            raise ValueError("`growth` must be 'random' or 'gradient', got "
                             f'{growth!r}.')
        self.sparsity = sparsity
        self.init = init
        self.update_interval = update_interval
        self.prune_rate = prune_rate
        self.prune_rate_min = prune_rate_min
        self.growth = growth
        self.erk_power_scale = erk_power_scale
        self.seed = seed
        self._grads: Dict[str, torch.Tensor] = {}
        self._grad_handles = []

    # -- schedule -------------------------------------------------------
    def total_steps(self, runner) -> int:
        return int(math.ceil(runner.max_iters / self._accumulation(runner)))

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
        shapes = {n: tuple(p.shape) for n, p in self.masking.params.items()}
        if self.init == 'uniform':
            densities = uniform_densities(shapes, density)
        elif self.init == 'erk':
            densities = erk_densities(shapes, density, self.erk_power_scale)
        else:
            densities = snip_densities(self._snip_scores(runner), density)
        self.masking.init_random(densities, self._generator(runner, 0))

    @staticmethod
    def _first_batch(runner):
        """One training batch (this process's share), collated by the train
        loader's ``collate_fn``. Read from the dataset directly: a second
        iterator over a loader with persistent workers would reset the
        training loop's own iterator."""
        loader = runner.train_dataloader
        dataset = loader.dataset
        batch_size = loader.batch_size or 1
        rank, _ = get_dist_info()
        start = rank * batch_size
        samples = [
            dataset[(start + i) % len(dataset)] for i in range(batch_size)
        ]
        return loader.collate_fn(samples)

    def _snip_scores(self, runner) -> Dict[str, torch.Tensor]:
        """``|w * dL/dw|`` on one batch of the train loader, summed over
        processes (model buffers such as BN statistics are restored)."""
        model = self._model(runner)
        buffers = {k: v.clone() for k, v in model.named_buffers()}
        model.zero_grad(set_to_none=True)
        data = model.data_preprocessor(self._first_batch(runner), True)
        losses = model._run_forward(data, mode='loss')
        loss, _ = model.parse_losses(losses)
        loss.backward()
        scores = {}
        for name, param in self.masking.params.items():
            grad = param.grad if param.grad is not None else \
                torch.zeros_like(param)
            score = (param.detach() * grad).abs()
            if self.include == 'shiftwise_pieces':
                score = piece_scores(score)
            scores[name] = score
        model.zero_grad(set_to_none=True)
        with torch.no_grad():
            for name, buf in model.named_buffers():
                buf.copy_(buffers[name])
        if is_distributed():
            for score in scores.values():
                torch_dist.all_reduce(score)
        return scores

    # -- updates --------------------------------------------------------
    def _is_update_step(self, runner, step: int) -> bool:
        return step % self.update_interval == 0 and \
            0 < step < self.total_steps(runner)

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        """For gradient growth, record the dense gradients of the
        iterations whose optimizer step triggers an update."""
        if self.masking is None or self.growth != 'gradient':
            return
        acc = self._accumulation(runner)
        step = runner.iter // acc + 1
        if self._is_update_step(runner, step) and not self._grad_handles:
            self._grads = {}

            def make_hook(name):

                def hook(grad):
                    if name in self._grads:
                        self._grads[name] = self._grads[name] + grad.detach()
                    else:
                        self._grads[name] = grad.detach().clone()
                    return grad

                return hook

            for name in self.masking.masks:
                self._grad_handles.append(
                    self.masking.params[name].register_hook(make_hook(name)))

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        if self.masking is None or not self._stepped(runner):
            return
        optimizer = self._optimizer(runner)
        self.masking.apply(optimizer)
        step = int(math.ceil((runner.iter + 1) / self._accumulation(runner)))
        if not self._is_update_step(runner, step):
            return
        start = time.perf_counter()
        for handle in self._grad_handles:
            handle.remove()
        self._grad_handles = []
        if self.growth == 'gradient' and is_distributed():
            for grad in self._grads.values():
                torch_dist.all_reduce(grad)
        rate = self.prune_rate_at(step, self.total_steps(runner))
        moved = self.masking.prune_and_regrow(
            rate,
            self.growth,
            self._generator(runner, step),
            grads=self._grads,
            optimizer=optimizer)
        self._grads = {}
        pruned = sum(p for p, _ in moved.values())
        regrown = sum(r for _, r in moved.values())
        elapsed = time.perf_counter() - start
        runner.message_hub.update_scalar('train/sparse_prune_rate', rate)
        runner.message_hub.update_scalar('train/sparse_moved', pruned)
        self._log_state(
            runner, f'sparse update at step {step} (prune rate {rate:.4f}, '
            f'pruned {pruned}, regrown {regrown}, {elapsed * 1000:.0f} ms)')
        self._check_consistency(runner)


@HOOKS.register_module()
class StaticSparseHook(_MaskedTrainingHook):
    """Fine-tuning with a fixed sparse pattern (the published downstream
    behaviour of SLaK): the masks are the zero pattern of the weights when
    training starts, i.e. after the sparse pretrained backbone was loaded,
    and are applied after every optimizer step. Layers that are at least
    99% non-zero (e.g. randomly initialised heads) stay dense, so with a
    dense model the hook does nothing. Masks are saved in checkpoints and
    restored by ``--resume``.

    Args:
        include (str): ``'all'`` or ``'large_kernels'``. Defaults to
            ``'all'``.
        prefix (str): Only weights whose name starts with it. Defaults to
            ``'backbone.'``.
        enabled (bool): Switch; ``False`` makes the hook a no-op.
        check_consistency (bool): Compare mask hashes across processes.
    """

    def __init__(self,
                 include: str = 'all',
                 prefix: str = 'backbone.',
                 enabled: bool = True,
                 check_consistency: bool = True) -> None:
        super().__init__(include, prefix, enabled, check_consistency)

    def init_masks(self, runner) -> None:
        self.masking.init_from_weights()
