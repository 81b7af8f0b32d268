"""The one subprocess runner of the tests, for the end-to-end runs of
tools/*.py, readers of what those runs write, and the import of a tool
script as a module."""
import glob
import importlib
import json
import os
import os.path as osp
import subprocess
import sys

from .conftest import REPO_ROOT

LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def data_root_options(root, loaders=LOADERS):
    """``--cfg-options`` entries pointing the given loaders at ``root``."""
    return [f'{loader}.dataset.data_root={root}' for loader in loaders]


def run_tool(args, env=None, timeout=900):
    """Run a command in the repository root with the repository on
    ``PYTHONPATH``; return its output (stdout and stderr).

    Args:
        args (list[str]): The command.
        env (dict, optional): Variables set on top of ``os.environ``.
        timeout (float): Seconds before ``subprocess.TimeoutExpired``.

    Raises:
        AssertionError: If the exit status is not 0 (the message is the
            output's tail).
    """
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


def run_dist_train(config, args, port, env=None, timeout=900):
    """``tools/dist_train.sh CONFIG 2 ARGS`` (two processes on the CPU
    through gloo) with this interpreter, on the master ``port``; returns
    the output as :func:`run_tool` does."""
    return run_tool(['bash', 'tools/dist_train.sh', config, '2', *args],
                    env=dict(
                        PYTHON=sys.executable, PORT=str(port), **(env or {})),
                    timeout=timeout)


def single_thread_env():
    """``OMP_NUM_THREADS=1`` unless the caller's environment sets it:
    spinning OpenMP threads of processes sharing a loaded CPU slow each
    other down many times over."""
    return dict(OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '1'))


def import_tool(path):
    """Import the script ``tools/<path>`` (e.g. ``'analysis/benchmark.py'``)
    as a module, with its folder first on ``sys.path`` while it is
    imported (as when it runs)."""
    folder, name = osp.split(osp.join(REPO_ROOT, 'tools', path))
    sys.path.insert(0, folder)
    try:
        return importlib.import_module(osp.splitext(name)[0])
    finally:
        sys.path.pop(0)


def _latest(pattern):
    files = sorted(glob.glob(pattern), key=osp.getmtime)
    assert files, f'nothing matches {pattern}'
    return files[-1]


def training_records(work_dir):
    """Training records (with a ``loss``) of the latest run in work_dir, as
    written by mmengine's LocalVisBackend."""
    path = _latest(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    with open(path) as f:
        records = [json.loads(line) for line in f]
    return [r for r in records if 'loss' in r]


def evaluation_metrics(work_dir):
    """The metrics of the latest ``tools/test.py`` run in work_dir
    (``<work_dir>/<timestamp>/<timestamp>.json``, written by mmengine's
    Runner)."""
    with open(_latest(osp.join(work_dir, '*', '*.json'))) as f:
        return json.load(f)
