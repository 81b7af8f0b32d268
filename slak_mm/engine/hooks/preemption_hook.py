"""Save a checkpoint and stop when the scheduler announces that the job
ends (preemption, time limit), so that the requeued job resumes there."""
import logging
import os
import signal
import threading
from typing import Optional, Sequence, Union

import torch
from torch.utils.data import get_worker_info
from mmengine.dist import all_reduce, barrier, is_distributed
from mmengine.hooks import Hook
from mmengine.logging import print_log

from slak_mm.registry import HOOKS
from .checkpoint_hook import AtomicCheckpointHook

__all__ = ['PreemptionHook', 'REQUEUE_EXIT_CODE']

#: Exit status after a preemption checkpoint: ``EX_TEMPFAIL`` of
#: ``sysexits.h`` ("temporary failure, try again"); tools/slurm_train.sh
#: requeues the job on it.
REQUEUE_EXIT_CODE = 75


@HOOKS.register_module()
class PreemptionHook(Hook):
    """On SIGTERM / SIGUSR1, save the state at the end of the current
    iteration and exit with a status a scheduler can requeue on::

        default_hooks = dict(preemption=dict(type='slak_mm.PreemptionHook'))

    SLURM sends SIGTERM when it preempts or cancels a job (then SIGKILL
    after ``KillWait``, 30 s by default) and, with ``--signal=USR1@120``,
    SIGUSR1 two minutes before the time limit. The signal handler only
    records the signal; after every training iteration (lowest priority,
    so after the EMA, sparse-mask and checkpoint hooks) the processes agree
    with an ``all_reduce`` (max) whether any of them received one, so all
    stop after the same iteration. Then the checkpoint hook saves that
    state (:meth:`AtomicCheckpointHook.save_now`; nothing is saved twice if
    it has just saved), the processes wait for the main one to finish
    writing, and every process raises ``SystemExit(exit_code)``.
    ``--resume`` continues from there; see docs/long_runs.md.

    The handlers are installed when the hook is built, before the
    data-loader workers are forked, so that workers inherit them and
    survive a signal sent to the whole process group (as SLURM does); a
    data-loader worker ignores the signal, and the main process stops them
    at exit. Any other forked process (e.g. the ``multiprocessing.Pool``
    of mmdet's ``VOCMetric``, which ``Pool.terminate()`` stops with
    SIGTERM) gets the signal's default effect.
    Outside training (before ``before_train``, after ``after_train``, or
    in a Runner that only tests) a signal has its previous effect.

    Args:
        signals (str | Sequence[str]): Names of the signals to catch.
            Defaults to ``('SIGTERM', 'SIGUSR1')``.
        exit_code (int): Exit status after the checkpoint, in [0, 255].
            Defaults to :data:`REQUEUE_EXIT_CODE` (75).

    Raises:
        ValueError: For unknown or uncatchable signal names, or an exit code
            outside [0, 255].
    """

    priority = 'LOWEST'

    def __init__(self,
                 signals: Union[str, Sequence[str]] = ('SIGTERM', 'SIGUSR1'),
                 exit_code: int = REQUEUE_EXIT_CODE) -> None:
        names = [signals] if isinstance(signals, str) else list(signals)
        known = {s.name for s in signal.Signals} - {'SIGKILL', 'SIGSTOP'}
        unknown = [name for name in names if name not in known]
        if unknown or not names:
            raise ValueError(
                f'signals must name catchable signals, e.g. SIGTERM, '
                f'SIGUSR1, SIGUSR2, SIGINT; got {unknown or names}.')
        if not isinstance(exit_code, int) or not 0 <= exit_code <= 255:
            raise ValueError(
                f'exit_code must be an int in [0, 255], got {exit_code!r}.')
        self.signals = [signal.Signals[name] for name in names]
        self.exit_code = exit_code
        #: Number of the signal received during training, or None.
        self.received: Optional[int] = None
        self._training = False
        self._pid = os.getpid()
        self._previous = {}
        self._checkpoint_hook: Optional[AtomicCheckpointHook] = None
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._on_signal)
        else:
            print_log(
                'PreemptionHook built outside the main thread: signals '
                'cannot be caught there, preemption will not save.',
                logger='current',
                level=logging.WARNING)

    def _on_signal(self, signum, frame) -> None:
        """Record the signal during training; ignore it in forked
        data-loader workers, give it its default effect in other forked
        processes and its previous effect otherwise."""
        if os.getpid() != self._pid:
            if get_worker_info() is not None:
                return
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        if self._training:
            self.received = signum
            return
        self._restore_handlers()
        os.kill(os.getpid(), signum)

    def _restore_handlers(self) -> None:
        """Put back the handlers that were installed before this hook."""
        for sig, previous in self._previous.items():
            signal.signal(sig,
                          signal.SIG_DFL if previous is None else previous)
        self._previous = {}

    def before_train(self, runner) -> None:
        """Find the checkpoint hook and start recording signals.

        Raises:
            TypeError: If the runner has no
                :class:`AtomicCheckpointHook`.
        """
        hooks = [
            h for h in runner.hooks if isinstance(h, AtomicCheckpointHook)
        ]
        if not hooks:
            found = [type(h).__name__ for h in runner.hooks]
            raise TypeError(
                'PreemptionHook needs default_hooks.checkpoint of type '
                f'slak_mm.AtomicCheckpointHook; the runner has {found}.')
        self._checkpoint_hook = hooks[0]
        self._training = True

    def _agreed_signal(self) -> int:
        """The largest signal number received by any process (0: none)."""
        flag = torch.tensor([self.received or 0], dtype=torch.int64)
        if is_distributed():
            all_reduce(flag, op='max')
        return int(flag.item())

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        """Save and exit if any process received a signal.

        Raises:
            SystemExit: With ``exit_code``, after the checkpoint is saved.
        """
        signum = self._agreed_signal()
        if not signum:
            return
        path = self._checkpoint_hook.save_now(runner)
        if is_distributed():
            # the main process writes; the others must not exit before it
            # is done (srun --kill-on-bad-exit and torchrun kill the rest
            # when one process exits with an error status)
            barrier()
        runner.logger.warning(
            f'{signal.Signals(signum).name} received: the state after '
            f'iteration {runner.iter + 1} is in {path}; exiting with status '
            f'{self.exit_code} (continue with --resume).')
        self._training = False
        self._restore_handlers()
        raise SystemExit(self.exit_code)

    def after_train(self, runner) -> None:
        """Stop recording signals; restore the previous handlers."""
        self._training = False
        self._restore_handlers()
