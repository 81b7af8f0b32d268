"""Training entry point of tests/test_engine/test_fault_tolerance.py: builds
the Runner as tools/train.py does (config, --cfg-options, --work-dir,
slak_mm.utils.setup_env, --resume through slak_mm.engine.resolve_resume,
training inside slak_mm.utils.checkpoint_safe_globals) and dies on purpose
where the environment variable SLAK_MM_FAULT says:

- ``kill_at_iter:K:S``   SIGKILL S seconds after iteration K (0-based)
  starts;
- ``kill_in_save:N:S``   SIGKILL S seconds after the N-th checkpoint of
  this process reaches ``before_save_checkpoint`` (lands in torch.save,
  in the write or after it);
- ``kill_in_write:N:F``  the N-th checkpoint file write of this process
  stops after the fraction F of its bytes (the temporary file is cut
  there), then SIGKILL;
- ``term_at_iter:K[:R]`` SIGTERM while iteration K runs: to the whole
  process group (as SLURM sends it), or with R to this process only if
  R is ``self`` or its rank.

While a checkpoint is being built or written, ``work_dir/in_save`` exists.
``CONFIG`` may be ``toy``: a small SLaK classifier on random tensors with
dynamic sparsity, masked EMA and dropout, no data files (``--toy-by-epoch``
makes its loop epoch-based, 6 iterations per epoch).

    python tests/data/fault_injection_train.py CONFIG --work-dir DIR
        [--resume [PATH]] [--launcher none|pytorch] [--cfg-options ...]
"""
import argparse
import os
import os.path as osp
import signal
import threading

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config, DictAction
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, MODELS
from mmengine.runner import Runner
from torch.utils.data import Dataset

import slak_mm  # noqa: F401
from slak_mm.engine import checkpoint_files, resolve_resume
from slak_mm.models import SLaK
from slak_mm.utils import (checkpoint_safe_globals, setup_cpu_distributed,
                           setup_env)

MARKER = 'in_save'


@MODELS.register_module(force=True)
class FaultToyClassifier(BaseModel):
    """A 5-block SLaK, dropout (random numbers in every iteration) and a
    linear head; ``inputs`` (N, 3, 32, 32), 4 classes."""

    def __init__(self):
        super().__init__()
        self.backbone = SLaK(
            dict(depths=[1, 1, 2, 1], channels=[8, 8, 16, 16]),
            kernel_size=[9, 7, 7, 5, 3],
            drop_path_rate=0.2)
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(20, 4)

    def forward(self, inputs, labels=None, mode='tensor'):
        logits = self.head(self.dropout(self.backbone(inputs)[0]))
        if mode == 'loss':
            return dict(loss=F.cross_entropy(logits, labels))
        return logits


@DATASETS.register_module(force=True)
class FaultToyData(Dataset):
    """24 random images (3, 32, 32) with labels in [0, 4), fixed seed."""

    def __init__(self, n=24):
        gen = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 3, 32, 32, generator=gen)
        self.y = torch.randint(0, 4, (n, ), generator=gen)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return dict(inputs=self.x[i], labels=self.y[i])


def toy_config(by_epoch=False):
    """The toy run: 12 iterations of batch 4, a checkpoint every 3, dynamic
    sparsity (update every 2 steps), masked EMA, per-iteration seeding and
    preemption."""
    if by_epoch:
        train_cfg = dict(by_epoch=True, max_epochs=2)
    else:
        train_cfg = dict(by_epoch=False, max_iters=12)
    return Config(
        dict(
            model=dict(type='FaultToyClassifier'),
            work_dir='work_dirs/toy',
            train_dataloader=dict(
                dataset=dict(type='FaultToyData'),
                sampler=dict(type='DefaultSampler', shuffle=True),
                batch_size=4,
                num_workers=2,
                persistent_workers=False,
                collate_fn=dict(type='default_collate')),
            optim_wrapper=dict(
                optimizer=dict(type='AdamW', lr=1e-2, weight_decay=0.05)),
            param_scheduler=[
                dict(
                    type='LinearLR',
                    start_factor=0.1,
                    by_epoch=False,
                    begin=0,
                    end=5)
            ],
            train_cfg=train_cfg,
            default_hooks=dict(
                checkpoint=dict(
                    type='slak_mm.AtomicCheckpointHook',
                    interval=3,
                    by_epoch=False,
                    max_keep_ckpts=2),
                logger=dict(type='LoggerHook', interval=1),
                preemption=dict(type='slak_mm.PreemptionHook'),
                seed=dict(type='slak_mm.PerIterationSeedHook')),
            custom_hooks=[
                dict(
                    type='slak_mm.DynamicSparseHook',
                    sparsity=0.4,
                    init='snip',
                    update_interval=2,
                    prune_rate=0.5),
                dict(
                    type='EMAHook',
                    ema_type='slak_mm.MaskedExponentialMovingAverage',
                    momentum=0.1,
                    update_buffers=True)
            ],
            env_cfg=dict(dist_cfg=dict(backend='gloo')),
            randomness=dict(seed=0),
            default_scope='mmengine'))


def _kill_later(seconds):
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGKILL))
    timer.daemon = True
    timer.start()


class FaultInjectionHook(Hook):
    """Carries out a fault plan (see the module docstring); ``plan`` is
    ``'kind:number[:value]'`` or None."""

    priority = 'VERY_HIGH'

    def __init__(self, plan=None):
        self.kind, self.number, self.value = None, None, None
        if plan:
            self.kind, number, *value = plan.split(':')
            self.number = int(number)
            self.value = value[0] if value else None
        self.saves = 0

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if self.number != runner.iter:
            return
        if self.kind == 'kill_at_iter':
            _kill_later(float(self.value))
        elif self.kind == 'term_at_iter':
            if self.value is None:
                os.killpg(os.getpgid(0), signal.SIGTERM)
            elif self.value == 'self' or int(self.value) == runner.rank:
                os.kill(os.getpid(), signal.SIGTERM)

    def before_save_checkpoint(self, runner, checkpoint):
        self.saves += 1
        open(osp.join(runner.work_dir, MARKER), 'w').close()
        if self.kind == 'kill_in_save' and self.number == self.saves:
            _kill_later(float(self.value))

    def wrap_checkpoint_writes(self, work_dir):
        """Make the N-th AtomicLocalBackend.put die mid-write
        (kill_in_write) and remove the marker after each put (in this
        process, for good)."""
        put = checkpoint_files.AtomicLocalBackend.put

        def cut_and_kill(fd, size):
            os.ftruncate(fd, int(size * float(self.value)))
            os.kill(os.getpid(), signal.SIGKILL)

        def faulty_put(backend, obj, filepath):
            if self.kind == 'kill_in_write' and self.number == self.saves:
                os.fsync = lambda fd: cut_and_kill(fd, len(obj))
            put(backend, obj, filepath)
            os.remove(osp.join(work_dir, MARKER))

        checkpoint_files.AtomicLocalBackend.put = faulty_put


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file or "toy"')
    parser.add_argument('--work-dir', required=True)
    parser.add_argument('--resume', nargs='?', const='auto')
    parser.add_argument('--toy-by-epoch', action='store_true')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch'], default='none')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def main():
    args = parse_args()
    if args.config == 'toy':
        cfg = toy_config(args.toy_by_epoch)
    else:
        cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.work_dir = args.work_dir
    if args.resume is not None:
        cfg.resume = True
        cfg.load_from = None if args.resume == 'auto' else args.resume
    if args.config == 'toy':  # not a toolbox config
        cfg.launcher = args.launcher
        setup_cpu_distributed(cfg, args.launcher)
    else:
        setup_env(cfg, args.launcher)
    resolve_resume(cfg)
    injector = FaultInjectionHook(os.environ.get('SLAK_MM_FAULT'))
    injector.wrap_checkpoint_writes(cfg.work_dir)
    runner = Runner.from_cfg(cfg)
    runner.register_hook(injector)
    with checkpoint_safe_globals():
        runner.train()


if __name__ == '__main__':
    main()
