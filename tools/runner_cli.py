"""Command-line code shared by ``tools/train.py`` and ``tools/test.py``.

Not a command itself: the options both tools take, the config they
produce, and the Runner call (with :func:`slak_mm.utils.setup_env` and
:func:`slak_mm.utils.checkpoint_safe_globals`).
"""
import argparse
import os
from typing import Iterable

from mmengine.config import Config, DictAction
from mmengine.hooks import Hook
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from slak_mm.engine import resolve_resume
from slak_mm.utils import checkpoint_safe_globals, setup_env


def parse_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Add ``--cfg-options``, ``--launcher`` and ``--local-rank`` to the
    tool's parser, parse the command line and export ``LOCAL_RANK``
    (``torch.distributed.launch`` passes ``--local-rank`` instead)."""
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, "key=value" pairs, e.g. '
        'train_cfg.max_iters=100 model.backbone.drop_path_rate=0.1')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def load_config(args: argparse.Namespace) -> Config:
    """``args.config`` with ``--cfg-options`` merged and ``--work-dir``
    (when given) set."""
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    return cfg


def run(cfg: Config, launcher: str, mode: str,
        hooks: Iterable[Hook] = ()) -> None:
    """:func:`~slak_mm.utils.setup_env`, build the Runner
    (``RUNNERS.build`` when the config sets ``runner_type``), register
    ``hooks`` and call ``runner.train()`` or ``runner.test()`` (``mode``;
    for training, :func:`~slak_mm.engine.resolve_resume` first picks the
    checkpoint of ``--resume``)
    inside :func:`~slak_mm.utils.checkpoint_safe_globals`, where mmengine
    loads the checkpoints (``--resume``, ``load_from``, pretrained
    weights)."""
    setup_env(cfg, launcher)
    if mode == 'train':
        resolve_resume(cfg)  # --resume: the newest checkpoint that reads back
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    for hook in hooks:
        runner.register_hook(hook)
    with checkpoint_safe_globals():
        getattr(runner, mode)()
