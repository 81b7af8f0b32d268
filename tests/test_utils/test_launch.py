"""``slak_mm.utils.setup_env``: what tools/train.py and tools/test.py do to
a config before building the Runner."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from slak_mm.utils import setup_env
from ..conftest import REPO_ROOT

CONFIGS = osp.join(REPO_ROOT, 'tests', 'data', 'configs')
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def test_setup_env_mmpretrain_config():
    cfg = Config.fromfile(osp.join(CONFIGS, 'slak_mini_in1k.py'))
    cfg.work_dir = None
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.accumulative_counts = 4
    cfg.auto_scale_lr = dict(enable=True, base_batch_size=4096)
    assert setup_env(cfg, 'none') == 'mmpretrain'
    assert cfg.launcher == 'none'
    assert cfg.work_dir == osp.join('./work_dirs', 'slak_mini_in1k')
    for loader in LOADERS:
        assert cfg[loader].collate_fn == dict(type='default_collate')
    # accumulation counted in the lr scaling
    assert cfg.auto_scale_lr.base_batch_size == 4096 / 4
    expected = 'OptimWrapper' if not torch.cuda.is_available() else \
        'AmpOptimWrapper'
    assert cfg.optim_wrapper.type == expected


def test_setup_env_mmseg_config_keeps_its_collate_and_work_dir():
    cfg = Config.fromfile(osp.join(CONFIGS, 'upernet_slak_mini_ade20k.py'))
    cfg.work_dir = '/tmp/given'
    assert setup_env(cfg) == 'mmseg'
    assert cfg.work_dir == '/tmp/given'
    assert all('collate_fn' not in cfg[loader] for loader in LOADERS)


def test_setup_env_errors():
    with pytest.raises(ValueError, match='`default_scope`.*mmengine'):
        setup_env(Config(dict(default_scope='mmengine')))
    if not torch.cuda.is_available():
        cfg = Config.fromfile(osp.join(CONFIGS, 'slak_mini_in1k.py'))
        with pytest.raises(ValueError, match='--launcher slurm'):
            setup_env(cfg, 'slurm')
