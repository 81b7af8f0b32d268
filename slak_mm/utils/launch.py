"""Environment set-up for slak_mm's ``tools/train.py`` / ``tools/test.py``:
one entry point for mmseg, mmdet and mmpretrain configs, also on machines
without GPU (the pattern of mmdet's ``mmdet/utils/setup_env.py``)."""
import logging
import os
import os.path as osp

import torch
import torch.distributed as torch_dist
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log

SUPPORTED_SCOPES = ('mmseg', 'mmdet', 'mmpretrain')


def get_config_scope(cfg: Config) -> str:
    """Return the config's ``default_scope``, the toolbox it belongs to.

    Raises:
        ValueError: If ``default_scope`` is not one of
            ``('mmseg', 'mmdet', 'mmpretrain')``.
    """
    scope = cfg.get('default_scope')
    if scope not in SUPPORTED_SCOPES:
        raise ValueError(f'`default_scope` of the config must be one of '
                         f'{SUPPORTED_SCOPES}, got {scope!r}.')
    return scope


def setup_toolbox(cfg: Config) -> str:
    """Apply what the toolbox's own ``tools/*.py`` would apply before
    building the runner, and return its scope.

    - mmdet: raise torch.compile's cache size limit
      (``setup_cache_size_limit_of_dynamo``);
    - mmpretrain: batch samples with ``default_collate`` unless the config
      chose a ``collate_fn`` (mmdet/mmseg keep mmengine's
      ``pseudo_collate``, their images differ in size).
    """
    scope = get_config_scope(cfg)
    if scope == 'mmdet':
        from mmdet.utils import setup_cache_size_limit_of_dynamo
        setup_cache_size_limit_of_dynamo()
    elif scope == 'mmpretrain':
        for field in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            loader = cfg.get(field)
            if loader is not None and 'collate_fn' not in loader:
                loader['collate_fn'] = dict(type='default_collate')
    return scope


def scale_lr_with_accumulation(cfg: Config) -> bool:
    """Count gradient accumulation in ``auto_scale_lr``.

    mmengine 0.10.7 scales the lr by ``world_size * batch_size /
    base_batch_size`` and ignores ``optim_wrapper.accumulative_counts``,
    so a config that reaches its ``base_batch_size`` by accumulation (e.g.
    4096 = 8 GPUs x 128 x 4) would get a quarter of its lr. When
    ``auto_scale_lr.enable`` is set and ``accumulative_counts > 1``, this
    divides ``base_batch_size`` by ``accumulative_counts``, which makes
    the ratio ``world_size * batch_size * accumulative_counts /
    base_batch_size``.

    Args:
        cfg (Config): The config, modified in place.

    Returns:
        bool: Whether ``base_batch_size`` was changed.
    """
    auto_scale_lr = cfg.get('auto_scale_lr')
    optim_wrapper = cfg.get('optim_wrapper')
    if not auto_scale_lr or not auto_scale_lr.get('enable', False) or \
            optim_wrapper is None:
        return False
    counts = optim_wrapper.get('accumulative_counts', 1)
    if counts <= 1:
        return False
    base = auto_scale_lr['base_batch_size']
    auto_scale_lr['base_batch_size'] = base / counts
    print_log(
        f'auto_scale_lr: base_batch_size {base} counted as {base / counts} '
        f'images per accumulation step (accumulative_counts={counts}).',
        logger='current')
    return True


def fall_back_to_fp32_without_cuda(cfg: Config) -> bool:
    """Train configs that ask for AMP in fp32 on machines without CUDA.

    ``AmpOptimWrapper`` (fp16 with dynamic loss scaling; what
    ``tools/train.py --amp`` selects, the published recipes are fp32) is
    refused by mmengine 0.10.7 without a GPU. Without CUDA this replaces
    it by a plain ``OptimWrapper`` with the same
    optimizer, constructor, ``paramwise_cfg``, ``clip_grad`` and
    ``accumulative_counts``, and logs a warning. With CUDA it does nothing.

    Args:
        cfg (Config): The config, modified in place.

    Returns:
        bool: Whether the optimizer wrapper was replaced.
    """
    optim_wrapper = cfg.get('optim_wrapper')
    if torch.cuda.is_available() or optim_wrapper is None or \
            optim_wrapper.get('type') != 'AmpOptimWrapper':
        return False
    for key in ('loss_scale', 'dtype', 'use_fsdp'):
        optim_wrapper.pop(key, None)
    optim_wrapper['type'] = 'OptimWrapper'
    print_log(
        'CUDA is not available: AmpOptimWrapper replaced by OptimWrapper '
        '(fp32 training).',
        logger='current',
        level=logging.WARNING)
    return True


def setup_cpu_distributed(cfg: Config, launcher: str) -> bool:
    """Make ``--launcher pytorch`` work on a machine without CUDA.

    mmengine 0.10.7 initialises the process group with
    ``torch.cuda.set_device`` (fatal without a GPU), the mmseg/mmdet runtime
    configs ask for ``nccl``, and ``Runner.wrap_model`` passes
    ``device_ids`` to DDP. Without CUDA this function initialises the
    ``gloo`` process group itself (from the ``torchrun`` environment
    variables), records ``gloo`` in ``env_cfg.dist_cfg``, and selects
    :class:`slak_mm.engine.CPUCompatibleDDP` as the model wrapper. With CUDA
    or ``launcher='none'`` it does nothing.

    Args:
        cfg (Config): The config, modified in place.
        launcher (str): ``none``, ``pytorch``, ``slurm`` or ``mpi``.

    Returns:
        bool: Whether CPU distributed mode was set up.

    Raises:
        ValueError: For ``slurm`` / ``mpi`` launchers without CUDA.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if launcher != 'pytorch':
        raise ValueError(
            f'--launcher {launcher} without CUDA is not supported; use '
            f'--launcher pytorch (tools/dist_train.sh) or none.')
    env_cfg = cfg.setdefault('env_cfg', ConfigDict())
    env_cfg.setdefault('dist_cfg', ConfigDict())
    env_cfg['dist_cfg']['backend'] = 'gloo'
    wrapper_cfg = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper_cfg['type'] = 'slak_mm.CPUCompatibleDDP'
    cfg.model_wrapper_cfg = wrapper_cfg
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(
            backend='gloo',
            rank=int(os.environ['RANK']),
            world_size=int(os.environ['WORLD_SIZE']))
    return True


def setup_env(cfg: Config, launcher: str = 'none') -> str:
    """Prepare a config for mmengine's ``Runner`` as slak_mm's tools do.

    In this order:

    1. check ``default_scope`` (:func:`get_config_scope`) and record
       ``cfg.launcher``;
    2. without a ``work_dir``, use ``./work_dirs/<config file name>``
       (mmengine's tools' default);
    3. count gradient accumulation in ``auto_scale_lr``
       (:func:`scale_lr_with_accumulation`);
    4. the toolbox's own settings (:func:`setup_toolbox`: mmdet's dynamo
       cache limit, mmpretrain's ``default_collate``);
    5. without CUDA: fp32 instead of ``AmpOptimWrapper``
       (:func:`fall_back_to_fp32_without_cuda`) and, for
       ``launcher='pytorch'``, a ``gloo`` process group
       (:func:`setup_cpu_distributed`).

    slak_mm's modules are registered by importing slak_mm (which this
    module is part of; configs also list it in ``custom_imports``); the
    toolbox's are found through ``default_scope`` and the registries'
    ``locations``, as in the toolboxes' own tools.

    Args:
        cfg (Config): The config (after the command-line overrides),
            modified in place.
        launcher (str): ``none``, ``pytorch``, ``slurm`` or ``mpi``.
            Defaults to ``'none'``.

    Returns:
        str: The toolbox scope, ``'mmseg'``, ``'mmdet'`` or
        ``'mmpretrain'``.

    Raises:
        ValueError: For another ``default_scope`` (see
            :func:`get_config_scope`), or a ``slurm`` / ``mpi`` launcher
            without CUDA (see :func:`setup_cpu_distributed`).
    """
    scope = get_config_scope(cfg)
    cfg.launcher = launcher
    if cfg.get('work_dir') is None:
        name = osp.splitext(osp.basename(cfg.filename))[0]
        cfg.work_dir = osp.join('./work_dirs', name)
    scale_lr_with_accumulation(cfg)
    setup_toolbox(cfg)
    fall_back_to_fp32_without_cuda(cfg)
    setup_cpu_distributed(cfg, launcher)
    return scope
