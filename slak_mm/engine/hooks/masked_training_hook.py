"""The base of the sparse training hooks (masks applied inside every
optimizer step, saved in checkpoints, followed by the model EMA) and
:class:`StaticSparseHook`, fixed-mask fine-tuning."""
from typing import Optional

import torch
from mmengine.dist import all_gather_object, is_distributed
from mmengine.hooks import EMAHook, Hook
from mmengine.model import is_model_wrapper

from slak_mm.registry import HOOKS
from slak_mm.sparse import SparseMasking, select_sparse_weights
from slak_mm.sparse.shiftwise import (PieceSparseMasking,
                                      select_shiftwise_pieces)

CHECKPOINT_KEY = 'sparse_training'


class MaskedTrainingHook(Hook):
    """Shared machinery: candidate weights, masks applied inside every
    optimizer step, masks saved in / restored from checkpoints, the model
    EMA kept as sparse as the masks, consistency across processes.
    Subclasses implement ``init_masks(runner)`` and may extend
    ``after_optimizer_step(runner)``.

    The masks are applied by a post-step hook of the optimizer
    (``torch.optim.Optimizer.register_step_post_hook``), i.e. right after
    every real optimizer step (plain, accumulated, or AMP: a step that
    ``GradScaler`` skips changes nothing) and before any other hook runs,
    so an ``EMAHook`` of any priority averages masked weights.
    """
    priority = 'NORMAL'  # before LoggerHook and CheckpointHook
    includes = ('all', 'large_kernels', 'shiftwise_pieces')

    def __init__(self,
                 include: str = 'all',
                 prefix: str = '',
                 enabled: bool = True,
                 check_consistency: bool = True,
                 mask_optimizer_state: bool = False) -> None:
        if include not in self.includes:
            raise ValueError(f'`include` must be one of {self.includes}, '
                             f'got {include!r}.')
        self.include = include
        self.prefix = prefix
        self.enabled = enabled
        self.check_consistency = check_consistency
        self.mask_optimizer_state = mask_optimizer_state
        self.masking: Optional[SparseMasking] = None
        self._loaded: Optional[dict] = None
        self._runner = None
        self._step_handle = None

    # -- helpers --------------------------------------------------------
    @staticmethod
    def _model(runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    @staticmethod
    def _optimizer(runner):
        return getattr(runner.optim_wrapper, 'optimizer', None)

    def _masking_kwargs(self) -> dict:
        return dict(mask_optimizer_state=self.mask_optimizer_state)

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

    def _attach_ema(self, runner) -> None:
        """Give the masks to the averaged model of every ``EMAHook``.

        Raises:
            TypeError: If an EMA model cannot take masks: its weights would
                drift away from the sparse pattern.
        """
        for hook in runner.hooks:
            if not isinstance(hook, EMAHook):
                continue
            ema = getattr(hook, 'ema_model', None)
            if ema is None:
                continue
            if not hasattr(ema, 'set_masks'):
                raise TypeError(
                    f'{type(self).__name__} with an EMAHook needs a '
                    'mask-aware averaged model: set EMAHook\'s '
                    "ema_type='slak_mm.MaskedExponentialMovingAverage' (got "
                    f'{type(ema).__name__}).')
            ema.set_masks(self.masking.masks)
            runner.logger.info(f'{type(self).__name__}: EMA '
                               f'({type(ema).__name__}) follows the masks.')

    # -- hook points ----------------------------------------------------
    def before_train(self, runner) -> None:
        if not self.enabled:
            runner.logger.info(f'{type(self).__name__} disabled.')
            return
        model = self._model(runner)
        if self.include == 'shiftwise_pieces':
            # ShiftwiseConv: one mask bit per k x k piece (published SW)
            names = select_shiftwise_pieces(model, self.prefix)
            self.masking = PieceSparseMasking(model, names,
                                              **self._masking_kwargs())
        else:
            names = select_sparse_weights(model, self.include, self.prefix)
            self.masking = SparseMasking(model, names,
                                         **self._masking_kwargs())
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
        optimizer = self._optimizer(runner)
        self.masking.apply(optimizer)
        self._attach_ema(runner)
        self._runner = runner
        if optimizer is not None:
            self._step_handle = optimizer.register_step_post_hook(
                lambda opt, args, kwargs: self.after_optimizer_step(
                    self._runner))
        self._log_state(runner, type(self).__name__)
        self._check_consistency(runner)

    @torch.no_grad()
    def after_optimizer_step(self, runner) -> None:
        """Called right after every real optimizer step: mask the weights
        (and the masked optimizer state)."""
        self.masking.apply(self._optimizer(runner))

    def after_train(self, runner) -> None:
        if self._step_handle is not None:
            self._step_handle.remove()
            self._step_handle = None
        if self.masking is not None:
            self._log_state(runner, f'{type(self).__name__} (end)')
            self._check_consistency(runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.masking is not None:
            checkpoint[CHECKPOINT_KEY] = dict(
                hook=type(self).__name__,
                masks=self.masking.state_dict(),
                **self._extra_state())

    def _extra_state(self) -> dict:
        return {}

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
class StaticSparseHook(MaskedTrainingHook):
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
