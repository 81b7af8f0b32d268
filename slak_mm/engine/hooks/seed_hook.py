"""Random numbers of a training iteration that do not depend on whether
the run was resumed."""
import hashlib
import random

import numpy as np
import torch
from mmengine.hooks import Hook

from slak_mm.registry import HOOKS

__all__ = ['PerIterationSeedHook', 'iteration_seed']


def iteration_seed(seed: int, iteration: int) -> int:
    """A 63-bit seed for one iteration, from the run's seed and the
    iteration index (SHA-256 of both, so that neighbouring runs and
    iterations get unrelated streams, and none coincides with the
    ``seed * 1000003 + step`` generators of the sparse-training hooks)."""
    digest = hashlib.sha256(f'{seed}:{iteration}'.encode()).digest()
    return int.from_bytes(digest[:8], 'little') >> 1


@HOOKS.register_module()
class PerIterationSeedHook(Hook):
    """Seed ``random``, ``numpy`` and ``torch`` (all devices) before every
    training iteration with :func:`iteration_seed` of the runner's seed and
    the iteration::

        default_hooks = dict(seed=dict(type='slak_mm.PerIterationSeedHook'))

    mmengine seeds the process once and does not save the generator states
    in checkpoints, so after ``--resume`` drop path and dropout draw other
    numbers than the uninterrupted run (which also drew numbers for data
    loader iterators and validation in between). Seeding every iteration,
    as fairseq's trainer does (``seed + num_updates``), makes an iteration's
    random numbers a function of the seed and its index alone; with the
    data-loading order restored by the training loop, a resumed run then
    repeats the uninterrupted one bit for bit. Data augmentation in
    data-loader workers keeps mmengine's worker seeding; augmentation in the
    main process (``num_workers=0``) is not covered.

    The hook has the highest priority, so it runs before the other
    ``before_train_iter`` hooks. The runner's seed includes the rank when
    ``randomness.diff_rank_seed`` is set.
    """

    priority = 'HIGHEST'

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        """Seed all generators for iteration ``runner.iter``."""
        seed = iteration_seed(runner.seed, runner.iter)
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
