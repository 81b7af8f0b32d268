"""mmengine's CheckpointHook with files that survive a kill at any moment,
and checkpoints in the middle of an epoch that resume exactly."""
import logging
import os
import os.path as osp
from typing import List, Optional

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop

from slak_mm.registry import HOOKS
from ..checkpoint_files import ATOMIC_BACKEND, atomic_write, temp_files

__all__ = ['AtomicCheckpointHook']

#: File name of a checkpoint saved in the middle of an epoch.
MID_EPOCH_TMPL = 'iter_{}.pth'
#: Message-hub entry naming the mid-epoch checkpoint that the next regular
#: checkpoint replaces.
MID_EPOCH_KEY = 'mid_epoch_ckpt'


class _SkipDone:
    """The train dataloader of a resumed epoch: iterates the dataloader
    from the start and discards the first ``done`` batches, which the run
    trained on before it stopped. Other attributes (``sampler``,
    ``dataset``, ...) are the dataloader's."""

    def __init__(self, dataloader, done: int):
        self.dataloader = dataloader
        self.done = done

    def __iter__(self):
        batches = iter(self.dataloader)
        for _ in range(self.done):
            next(batches)
        return batches

    def __len__(self) -> int:
        return len(self.dataloader) - self.done

    def __getattr__(self, name):
        return getattr(self.dataloader, name)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` whose checkpoints and
    ``last_checkpoint`` are never seen half-written, usable in any config::

        default_hooks = dict(checkpoint=dict(
            type='slak_mm.AtomicCheckpointHook', interval=16000,
            by_epoch=False, max_keep_ckpts=3))

    It takes every argument of ``CheckpointHook`` (mmengine 0.10.7) and
    changes four things:

    - Files are written through :class:`~slak_mm.engine.checkpoint_files.
      AtomicLocalBackend` (a temporary file in the same folder, ``fsync``,
      ``os.replace``) unless ``backend_args`` / ``file_client_args`` or a
      URI ``out_dir`` select another storage; ``last_checkpoint`` is written
      the same way (``CheckpointHook`` uses a plain ``open``).
    - With ``max_keep_ckpts``, the oldest checkpoint is deleted after the new
      one is in place (``CheckpointHook`` deletes it first, so a kill during
      the save could leave no checkpoint).
    - Temporary files of writes that were killed are deleted at
      ``before_train`` (main process).
    - :meth:`save_now` saves the state after the current iteration (used by
      :class:`~slak_mm.engine.PreemptionHook`). In an epoch-based run that
      is a checkpoint inside an epoch, ``iter_{N}.pth``; a run resumed from
      it re-iterates the epoch's dataloader and skips the batches already
      trained on (as mmengine's ``IterBasedTrainLoop`` does when resuming),
      where mmengine would train on the whole epoch again. It is deleted
      when the next regular checkpoint is in place.

    Args:
        interval (int): As ``CheckpointHook``. Defaults to -1.
        by_epoch (bool): As ``CheckpointHook``. Defaults to True.
        backend_args (dict, optional): As ``CheckpointHook``. Defaults to
            ``dict(backend='slak_mm_atomic_local')`` for a local ``out_dir``.
        **kwargs: Other arguments of ``CheckpointHook``.
    """

    def __init__(self,
                 interval: int = -1,
                 by_epoch: bool = True,
                 backend_args: Optional[dict] = None,
                 **kwargs) -> None:
        out_dir = str(kwargs.get('out_dir') or '')
        if backend_args is None and kwargs.get('file_client_args') is None \
                and '://' not in out_dir:
            backend_args = dict(backend=ATOMIC_BACKEND)
        super().__init__(
            interval=interval,
            by_epoch=by_epoch,
            backend_args=backend_args,
            **kwargs)
        # iterations completed when this hook last saved (its meta['iter'])
        self._saved_iters: Optional[int] = None

    def before_train(self, runner) -> None:
        """Set up as ``CheckpointHook`` and delete the temporary files of
        killed writes (main process, local storage)."""
        super().before_train(runner)
        if not is_main_process() or \
                not isinstance(self.file_backend, LocalBackend):
            return
        for path in set(
                temp_files(self.out_dir) + temp_files(runner.work_dir)):
            os.remove(path)
            print_log(
                f'Deleted {path}, left by a checkpoint write that was killed.',
                logger='current',
                level=logging.WARNING)

    def before_train_epoch(self, runner) -> None:
        """Skip the batches already trained on when an epoch-based run
        resumes from a checkpoint inside the epoch."""
        loop = runner.train_loop
        if not isinstance(loop, EpochBasedTrainLoop):
            return
        done = runner.iter - runner.epoch * len(loop.dataloader)
        if done <= 0:
            return
        if done > len(loop.dataloader):
            raise RuntimeError(
                f'Resumed at iteration {runner.iter} of epoch '
                f'{runner.epoch + 1}, but an epoch has only '
                f'{len(loop.dataloader)} iterations: the train dataloader '
                'differs from the one of the checkpoint.')
        print_log(
            f'Advance the dataloader {done} steps to skip data of epoch '
            f'{runner.epoch + 1} that has already been trained',
            logger='current',
            level=logging.WARNING)
        loop.dataloader = _SkipDone(loop.dataloader, done)

    def after_train_epoch(self, runner) -> None:
        """Restore the dataloader of a resumed epoch, then save as
        ``CheckpointHook``."""
        loop = runner.train_loop
        if isinstance(getattr(loop, 'dataloader', None), _SkipDone):
            loop.dataloader = loop.dataloader.dataloader
        super().after_train_epoch(runner)

    def save_now(self, runner) -> str:
        """Save the state after the current iteration (call it from
        ``after_train_iter``), unless this hook has just saved it.

        Returns:
            str: The path of the checkpoint holding that state.
        """
        if self._saved_iters == runner.iter + 1:
            return self.last_ckpt
        if not self.by_epoch:
            self._save_checkpoint(runner)
            return self.last_ckpt
        name = MID_EPOCH_TMPL.format(runner.iter + 1)
        stale = self._take_mid_epoch_checkpoint(runner)
        runner.message_hub.update_info(MID_EPOCH_KEY, name)
        self._write_checkpoint(runner, name, None, False, stale)
        return self.last_ckpt

    def _take_mid_epoch_checkpoint(self, runner) -> List[str]:
        """The name of the mid-epoch checkpoint to replace, if any; it is
        no longer recorded in the message hub."""
        name = runner.message_hub.get_info(MID_EPOCH_KEY)
        if name is None:
            return []
        runner.message_hub.update_info(MID_EPOCH_KEY, None)
        return [name]

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        """``CheckpointHook``'s save with ``max_keep_ckpts``, deleting the
        files it replaces only after the new one is in place."""
        stale = self._take_mid_epoch_checkpoint(runner)
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                stale.append(
                    self.filename_tmpl.format(self.keep_ckpt_ids.popleft()))
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))
        self._write_checkpoint(runner, self.filename_tmpl.format(step), meta,
                               self.by_epoch, stale)

    def _write_checkpoint(self, runner, filename: str, meta: Optional[dict],
                          by_epoch: bool, stale: List[str]) -> None:
        """Save ``filename`` in ``out_dir`` (``Runner.save_checkpoint``),
        point ``last_checkpoint`` at it, then delete the ``stale`` files."""
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir,
            filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=by_epoch,
            backend_args=self.backend_args,
            **self.args)
        # Runner.save_checkpoint's meta['iter']
        self._saved_iters = runner.iter if by_epoch else runner.iter + 1
        if not is_main_process():
            return
        atomic_write(self.last_ckpt,
                     osp.join(runner.work_dir, 'last_checkpoint'))
        for name in stale:
            path = self.file_backend.join_path(self.out_dir, name)
            if path == self.last_ckpt:
                continue
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):  # saved by deepspeed
                self.file_backend.rmtree(path)
