"""Multi-node training on one machine: two torchrun "nodes" of one
process each (``--nnodes 2``, ``--node_rank 0/1``, gloo on the CPU) train
the scaled-down classifier with DynamicSparseHook through
``tools/train.py --launcher pytorch`` and hold identical masks.

The hook all-gathers the SHA-1 of its masks at start, at every mask
update and at the end, logs ``sparse masks identical on 2 processes``
(rank 0) and raises on every rank if they differ; the test reads those
lines and the per-update ``masks sha1`` lines of rank 0.
"""
import os.path as osp
import re
import socket
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from slak_mm.utils import checkpoint_safe_globals
from ..conftest import REPO_ROOT
from ..tool_runs import run_tool, single_thread_env

CONFIG = osp.join(REPO_ROOT, 'tests', 'data', 'configs',
                  'slak_mini_dst_in1k.py')


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(
    torch.cuda.is_available(), reason='checks the CPU (gloo) path')
def test_two_nodes_train_with_identical_masks(tmp_path, imagenet_mini):
    port = _free_port()
    # 128 images / (2 processes x 16) = 4 iterations in one epoch; a mask
    # update after every optimizer step but the last
    options = [
        f'train_dataloader.dataset.data_root={imagenet_mini}',
        'train_dataloader.dataset.indices=128', 'train_cfg.max_epochs=1',
        'train_cfg.val_interval=1', 'val_cfg=None', 'val_dataloader=None',
        'val_evaluator=None', 'default_hooks.checkpoint.interval=1',
        'custom_hooks.0.update_interval=1'
    ]

    def node(rank):
        return run_tool([
            sys.executable, '-m', 'torch.distributed.run', '--nnodes', '2',
            '--node_rank',
            str(rank), '--nproc_per_node', '1', '--master_addr', '127.0.0.1',
            '--master_port',
            str(port), 'tools/train.py', CONFIG, '--launcher', 'pytorch',
            '--work-dir',
            str(tmp_path / f'node{rank}'), '--cfg-options', *options
        ],
                        env=single_thread_env(),
                        timeout=600)

    with ThreadPoolExecutor(2) as pool:
        out0, _ = pool.map(node, (0, 1))

    assert 'GPU number: 2' in out0, out0[-3000:]
    steps = re.findall(r'sparse update \d+ at step (\d+) ', out0)
    assert steps == ['1', '2', '3'], out0[-3000:]
    # start, the three updates and the end, each checked across processes
    identical = re.findall(
        r'sparse masks identical on 2 processes \(sha1 ([0-9a-f]+)\)', out0)
    assert len(identical) == 5, out0[-3000:]
    # rank 0's digests of those states (full SHA-1; the check prints 12)
    digests = re.findall(r'masks sha1 ([0-9a-f]{40})', out0)
    assert digests, out0[-3000:]
    assert set(identical) <= {d[:12] for d in digests}
    # the masks changed at the updates
    assert len(set(identical)) >= 2
    # only rank 0 (node 0) saves the checkpoint, with the masks
    with checkpoint_safe_globals():
        ckpt = torch.load(
            tmp_path / 'node0' / 'epoch_1.pth',
            map_location='cpu',
            weights_only=True)
    assert ckpt['sparse_training']['masks']
    assert not (tmp_path / 'node1' / 'epoch_1.pth').exists()
