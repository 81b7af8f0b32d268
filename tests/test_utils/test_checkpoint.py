import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

import slak_mm  # noqa: F401  (registers the allow-list)


def test_mmengine_checkpoint_loads_with_weights_only(tmp_path):
    hub = MessageHub.get_instance('slak_mm_test_ckpt')
    for i in range(3):
        hub.update_scalar('train/loss', 1.0 / (i + 1))
    hub.update_info('iter', np.int64(3))
    ckpt = dict(
        meta=dict(iter=3, dataset_meta=dict(classes=('a', 'b'))),
        state_dict={'w': torch.ones(2)},
        message_hub=hub.state_dict(),
        stats=np.arange(4, dtype=np.float32))
    path = tmp_path / 'ckpt.pth'
    torch.save(ckpt, path)
    loaded = torch.load(path, weights_only=True)
    buffer = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer)
    assert buffer.min() == pytest.approx(1 / 3)
    assert buffer.mean() == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)
    np.testing.assert_array_equal(loaded['stats'], np.arange(4))
    assert loaded['message_hub']['runtime_info']['iter'] == 3


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
        torch.load(path, weights_only=True)
