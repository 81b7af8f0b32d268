"""Helpers of the end-to-end tests that run tools/*.py in a subprocess."""
import glob
import json
import os
import os.path as osp
import subprocess

from .conftest import REPO_ROOT

LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def data_root_options(root, loaders=LOADERS):
    """``--cfg-options`` entries pointing the given loaders at ``root``."""
    return [f'{loader}.dataset.data_root={root}' for loader in loaders]


def run_tool(args, env=None, timeout=900):
    """Run a command in the repository root; return its output, asserting
    a zero exit status (the output tail is the failure message)."""
    proc = subprocess.run(
        args,
        cwd=REPO_ROOT,
        env=dict(os.environ, PYTHONPATH=REPO_ROOT, **(env or {})),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-5000:]
    return proc.stdout


def training_records(work_dir):
    """Training records (with a ``loss``) of the latest run in work_dir, as
    written by mmengine's LocalVisBackend."""
    files = sorted(
        glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')),
        key=osp.getmtime)
    assert files, f'no scalars.json under {work_dir}'
    records = [json.loads(line) for line in open(files[-1])]
    return [r for r in records if 'loss' in r]
