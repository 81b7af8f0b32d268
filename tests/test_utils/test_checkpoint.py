"""Scoped safe loading of mmengine checkpoints, the ``CheckedPretrained``
initializer and the key check of ``tools/test.py``
(``slak_mm/utils/checkpoint.py`` and ``slak_mm/utils/pretrained.py``)."""
import argparse
import collections
import pickle
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.model import BaseModule, ModuleList
from mmengine.registry import DefaultScope
from mmengine.runner import CheckpointLoader, Runner

import slak_mm  # noqa: F401  (registers CheckedPretrained)
from ..tool_runs import run_tool
from slak_mm.utils import (CheckpointKeysHook, CheckpointUnpicklingError,
                           checkpoint_safe_globals, pretrained)


def _runner_like_checkpoint(path):
    """What a Runner checkpoint holds besides tensors: a message hub with
    HistoryBuffers and numpy values."""
    hub = MessageHub.get_instance('slak_mm_test_ckpt')
    for i in range(3):
        hub.update_scalar('train/loss', 1.0 / (i + 1))
    hub.update_info('iter', np.int64(3))
    ckpt = dict(
        meta=dict(iter=3, dataset_meta=dict(classes=('a', 'b'))),
        state_dict={'w': torch.ones(2)},
        message_hub=hub.state_dict(),
        stats=np.arange(4, dtype=np.float32))
    torch.save(ckpt, path)


def test_mmengine_checkpoint_loads_with_weights_only(tmp_path):
    path = tmp_path / 'ckpt.pth'
    _runner_like_checkpoint(path)
    # outside the scope torch's default allow-list refuses the file
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    with checkpoint_safe_globals():
        loaded = torch.load(path, weights_only=True)
    buffer = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer)
    assert buffer.min() == pytest.approx(1 / 3)
    assert buffer.mean() == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)
    np.testing.assert_array_equal(loaded['stats'], np.arange(4))
    assert loaded['message_hub']['runtime_info']['iter'] == 3


def test_safe_globals_scope_restores_the_allow_list():
    """Nothing stays on torch's allow-list after the block, nesting keeps
    the outer scope's entries, and entries added before stay."""
    before = torch.serialization.get_safe_globals()
    with checkpoint_safe_globals():
        inside = torch.serialization.get_safe_globals()
        assert HistoryBuffer in inside
        with checkpoint_safe_globals():
            pass
        assert torch.serialization.get_safe_globals() == inside
    assert torch.serialization.get_safe_globals() == before
    torch.serialization.add_safe_globals([HistoryBuffer])
    try:
        with checkpoint_safe_globals():
            pass
        assert HistoryBuffer in torch.serialization.get_safe_globals()
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(before)


def test_importing_slak_mm_leaves_torch_allow_list_unchanged():
    """The libraries slak_mm builds on are imported first (importing
    them makes torch register some of its own classes); importing slak_mm
    then adds nothing, in a fresh process."""
    code = """
import torch, mmengine.runner, mmengine.model, mmcv.cnn, mmpretrain.models
before = torch.serialization.get_safe_globals()
import slak_mm, slak_mm.converters, slak_mm.utils
from slak_mm.utils import mmengine_safe_globals
after = torch.serialization.get_safe_globals()
assert after == before, [g for g in after if g not in before]
assert not any(g in after for g in mmengine_safe_globals())
print('unchanged')
"""
    assert 'unchanged' in run_tool([sys.executable, '-c', code])


class _Sneaky:
    """Pickles as getattr(HistoryBuffer, '__init__')."""

    def __reduce__(self):
        return getattr, (HistoryBuffer, '__init__')


class _Sneakier:
    """Pickles as getattr(<numpy>, 'ndarray'), a non-HistoryBuffer target."""

    def __reduce__(self):
        return getattr, (np.ndarray, 'tofile')


@pytest.mark.parametrize('payload', [_Sneaky(), _Sneakier()])
def test_other_getattr_calls_stay_forbidden(tmp_path, payload):
    path = tmp_path / 'evil.pth'
    torch.save({'x': payload}, path)
    with pytest.raises(pickle.UnpicklingError, match='not allowed'):
        with checkpoint_safe_globals():
            torch.load(path, weights_only=True)


# ----------------------------------------------------------------------
# CheckedPretrained
# ----------------------------------------------------------------------
class Toy(BaseModule):
    """A backbone-like module whose children re-initialize themselves
    (mmengine ``ModuleList`` of mmcv ``ConvModule`` s, whose
    ``init_weights`` draws new conv weights and sets BN to 1 / 0)."""

    def __init__(self, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.stem = nn.Conv2d(3, 4, 1)
        self.stages = ModuleList([
            ConvModule(4, 4, 3, padding=1, norm_cfg=dict(type='BN'))
            for _ in range(2)
        ])
        self.extra = ConvModule(4, 4, 1)


def _toy_file(path, prefix='backbone.', seed=0, **extra):
    """A checkpoint of a randomized Toy under ``prefix``; returns the
    weights without the prefix."""
    torch.manual_seed(seed)
    weights = {
        k: torch.randn(v.shape) if v.is_floating_point() else v
        for k, v in Toy().state_dict().items()
    }
    state_dict = collections.OrderedDict(
        (prefix + k, v) for k, v in weights.items())
    torch.save(dict(state_dict=state_dict, **extra), path)
    return weights


def _count_reads(monkeypatch):
    """The list of files that mmengine's CheckpointLoader reads from now
    on (in this test)."""
    reads = []
    load = CheckpointLoader.load_checkpoint

    def counting_load(filename, *args, **kwargs):
        reads.append(filename)
        return load(filename, *args, **kwargs)

    monkeypatch.setattr(CheckpointLoader, 'load_checkpoint', counting_load)
    return reads


def _init(path, prefix='backbone.', scope='mmpretrain'):
    model = Toy(
        init_cfg=dict(
            type='CheckedPretrained', checkpoint=str(path), prefix=prefix))
    with DefaultScope.overwrite_default_scope(scope):
        model.init_weights()
    return model


@pytest.mark.parametrize('scope', ['mmpretrain', 'mmseg', 'mmdet'])
def test_checked_pretrained_loads_once_under_every_scope(
        tmp_path, monkeypatch, scope):
    pytest.importorskip(scope)
    path = tmp_path / 'ckpt.pth'
    # a Runner checkpoint (message hub): loads inside the safe scope
    _runner_like_checkpoint(tmp_path / 'hub.pth')
    hub = torch.load(tmp_path / 'hub.pth', weights_only=False)
    weights = _toy_file(path, message_hub=hub['message_hub'])
    reads = _count_reads(monkeypatch)
    model = _init(path, scope=scope)
    assert reads == [str(path)]
    # the loaded weights win over the children's own init_weights
    # (ConvModule draws new weights and resets the BN), as with Pretrained
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in weights.items())


def test_checked_pretrained_errors(tmp_path):
    path = tmp_path / 'ckpt.pth'
    _toy_file(path)
    with pytest.raises(ValueError, match='no key with prefix `encoder.`'):
        _init(path, prefix='encoder.')
    # without prefix, `backbone.` keys match nothing
    with pytest.raises(ValueError, match='no key matches'):
        _init(path, prefix=None)
    # official SLaK and ShiftWise key names: the matching converter
    slak = {'stages.0.0.large_kernel.LoRA1.conv.weight': torch.zeros(1)}
    torch.save(slak, path)
    with pytest.raises(ValueError, match='official SLaK.*slak_to_mmpretrain'):
        _init(path, prefix=None)
    sw = {
        'stages.0.0.large_kernel.LoRAs.0.weight': torch.zeros(1),
        'stages.0.0.pwconv1.weight': torch.zeros(1)
    }
    torch.save(dict(state_dict=sw), path)
    with pytest.raises(ValueError, match='official ShiftWise.*sw_to_mmpre'):
        _init(path, prefix=None)
    # an official main.py file (weights under `model`, args pickled)
    torch.save(dict(model=sw, args=argparse.Namespace(lr=1.)), path)
    with pytest.raises(CheckpointUnpicklingError, match='sw_to_mmpretrain'):
        _init(path)
    torch.save(dict(model=sw), path)
    with pytest.raises(
            ValueError, match='no key.*official ShiftWise.*sw_to_mmpretrain'):
        _init(path)


def test_checked_pretrained_logs_missing_and_unexpected_keys(
        tmp_path, monkeypatch):
    path = tmp_path / 'ckpt.pth'
    torch.manual_seed(0)
    weights = {
        'backbone.stem.weight': torch.randn(4, 3, 1, 1),
        'backbone.head.weight': torch.randn(1)
    }
    torch.save(weights, path)
    logged = []
    monkeypatch.setattr(pretrained, 'print_log',
                        lambda msg, **kwargs: logged.append(msg))
    model = _init(path)
    assert torch.equal(model.stem.weight, weights['backbone.stem.weight'])
    report = next(m for m in logged if 'model keys found' in m)
    assert f'{path}: 1 of {len(model.state_dict())} model keys found' \
        in report
    assert "missing keys: ['extra.conv.bias', " in report
    assert "unexpected keys: ['head.weight']" in report


def test_checkpoint_keys_hook_checks_the_loaded_checkpoint(
        tmp_path, monkeypatch):
    """Runner.load_checkpoint reads the file once; the hook sees that
    dict and raises on a file that matches nothing."""
    good, bad = tmp_path / 'good.pth', tmp_path / 'bad.pth'
    weights = _toy_file(good, prefix='')
    _toy_file(bad, prefix='encoder.')
    runner = Runner(
        model=Toy(),
        work_dir=str(tmp_path / 'work'),
        default_scope='mmpretrain')
    runner.register_hook(CheckpointKeysHook(str(bad)))
    reads = _count_reads(monkeypatch)
    with pytest.raises(ValueError, match=f'{bad}: no key matches'):
        runner.load_checkpoint(str(bad))
    runner.load_checkpoint(str(good))
    assert reads == [str(bad), str(good)]
    state = runner.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in weights.items())
