"""Runs that survive kills: atomic checkpoint writes, resume that falls back
to the newest readable checkpoint, preemption that saves and exits 75, and
killed-and-resumed runs that end bit for bit where uninterrupted ones do."""
import glob
import importlib.util
import logging
import multiprocessing
import os
import os.path as osp
import random
import re
import signal
import subprocess
import sys
import threading
import time
import zipfile

import pytest
import torch
from mmengine.config import Config
from mmengine.fileio import get_file_backend
from mmengine.runner import Runner

import slak_mm  # noqa: F401
from slak_mm.engine import (REQUEUE_EXIT_CODE, PreemptionHook, atomic_write,
                            checkpoint_problem, find_resumable_checkpoint,
                            resolve_resume)
from slak_mm.engine.checkpoint_files import (ATOMIC_BACKEND,
                                             AtomicLocalBackend, temp_files)
from slak_mm.utils import checkpoint_safe_globals
from ..conftest import REPO_ROOT

SCRIPT = osp.join(REPO_ROOT, 'tests', 'data', 'fault_injection_train.py')
MINI_CONFIG = osp.join(REPO_ROOT, 'tests', 'data', 'configs',
                       'upernet_slak_mini_ade20k.py')
# one thread everywhere: float sums then do not depend on the machine load
ENV = dict(OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')


def _load_script():
    spec = importlib.util.spec_from_file_location('fault_injection_train',
                                                  SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def script():
    return _load_script()


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _ckpt(path, iteration=4):
    torch.save(
        dict(
            meta=dict(epoch=0, iter=iteration),
            state_dict=dict(w=torch.arange(1000.)),
            message_hub=dict()), path)
    return str(path)


def _truncate(path, keep=0.5):
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:int(len(data) * keep)])


def _touch_after(path, other):
    """Make ``path`` newer than ``other`` (mtime order of the fallback)."""
    stamp = os.stat(other).st_mtime_ns + 10**9
    os.utime(path, ns=(stamp, stamp))


class _Records(logging.Handler):

    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _logger():
    logger = logging.getLogger('slak_mm_fault_test')
    logger.handlers = [_Records()]
    logger.setLevel(logging.INFO)
    return logger, logger.handlers[0].messages


# atomic writes ------------------------------------------------------------


def _die_while_writing(path, data):
    """Child process: cut the temporary file in the middle, then SIGKILL,
    as if the process were killed while writing."""

    def cut_and_kill(fd):
        os.ftruncate(fd, len(data) // 2)
        os.kill(os.getpid(), signal.SIGKILL)

    os.fsync = cut_and_kill
    atomic_write(data, path)


@pytest.mark.parametrize('existing', [True, False])
def test_kill_during_atomic_write_leaves_old_file_or_none(tmp_path, existing):
    path = str(tmp_path / 'iter_8.pth')
    if existing:
        atomic_write(b'old checkpoint', path)
    proc = multiprocessing.get_context('fork').Process(
        target=_die_while_writing, args=(path, b'new' * 10000))
    proc.start()
    proc.join()
    assert proc.exitcode == -signal.SIGKILL
    if existing:
        with open(path, 'rb') as f:
            assert f.read() == b'old checkpoint'
    else:
        assert not osp.exists(path)
    # the half-written data is only in a hidden temporary file
    leftovers = temp_files(str(tmp_path))
    assert len(leftovers) == 1 and osp.getsize(leftovers[0]) == 15000
    expected = ['iter_8.pth'] if existing else []
    assert sorted(os.listdir(tmp_path)) == sorted(expected +
                                                  [osp.basename(leftovers[0])])


def test_failed_atomic_write_removes_its_temporary_file(tmp_path, monkeypatch):
    path = str(tmp_path / 'last_checkpoint')
    atomic_write('iter_4.pth', path)

    def fail(fd):
        raise OSError('disk full')

    monkeypatch.setattr(os, 'fsync', fail)
    with pytest.raises(OSError, match='disk full'):
        atomic_write('iter_8.pth', path)
    with open(path) as f:
        assert f.read() == 'iter_4.pth'
    assert temp_files(str(tmp_path)) == []


def test_atomic_backend_is_registered_in_mmengine(tmp_path):
    backend = get_file_backend(
        str(tmp_path), backend_args=dict(backend=ATOMIC_BACKEND))
    assert isinstance(backend, AtomicLocalBackend)
    backend.put(b'\x00\x01', str(tmp_path / 'sub' / 'a.pth'))
    backend.put_text('text', str(tmp_path / 'b.txt'))
    assert backend.get(str(tmp_path / 'sub' / 'a.pth')) == b'\x00\x01'
    assert backend.get_text(str(tmp_path / 'b.txt')) == 'text'


# readability check and resume fallback -------------------------------------


def test_checkpoint_problem(tmp_path):
    good = _ckpt(tmp_path / 'good.pth')
    assert checkpoint_problem(good) is None
    assert checkpoint_problem(str(tmp_path / 'none.pth')) == 'no such file'
    truncated = _ckpt(tmp_path / 'truncated.pth')
    _truncate(truncated)
    assert 'truncated' in checkpoint_problem(truncated)
    flipped = _ckpt(tmp_path / 'flipped.pth')
    with zipfile.ZipFile(flipped) as archive:
        info = [i for i in archive.infolist() if i.file_size >= 4000][0]
        offset = info.header_offset + 30 + len(info.filename.encode()) + \
            len(info.extra) + 100
    with open(flipped, 'r+b') as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xff]))
    assert 'CRC-32' in checkpoint_problem(flipped)
    weights = tmp_path / 'weights.pth'
    torch.save(dict(state_dict=dict(w=torch.zeros(2))), weights)
    assert 'not a Runner checkpoint' in checkpoint_problem(str(weights))


def test_auto_resume_skips_the_truncated_newest_checkpoint(tmp_path):
    older = _ckpt(tmp_path / 'iter_2.pth', 2)
    newest = _ckpt(tmp_path / 'iter_4.pth', 4)
    _truncate(newest)
    _touch_after(newest, older)
    atomic_write(newest, str(tmp_path / 'last_checkpoint'))
    logger, messages = _logger()
    cfg = Config(dict(work_dir=str(tmp_path), resume=True, load_from=None))
    assert resolve_resume(cfg, logger=logger) == older
    assert cfg.load_from == older and cfg.resume
    assert any(f'Cannot resume from {newest}: truncated' in m
               for m in messages), messages
    # a newer intact file than the one last_checkpoint names is preferred
    newer = _ckpt(tmp_path / 'iter_6.pth', 6)
    _touch_after(newer, newest)
    assert find_resumable_checkpoint(str(tmp_path), logger=logger) == newer


def test_named_resume_of_an_unreadable_file_is_an_error(tmp_path):
    broken = _ckpt(tmp_path / 'iter_4.pth')
    _truncate(broken)
    cfg = Config(dict(work_dir=str(tmp_path), resume=True, load_from=broken))
    with pytest.raises(
            RuntimeError,
            match=f'--resume {broken}: cannot '
            'resume from this file: truncated'):
        resolve_resume(cfg)
    missing = str(tmp_path / 'iter_9.pth')
    cfg.load_from = missing
    with pytest.raises(FileNotFoundError, match=f'--resume {missing}'):
        resolve_resume(cfg)
    good = _ckpt(tmp_path / 'iter_2.pth')
    cfg.load_from = good
    assert resolve_resume(cfg) == good


def test_auto_resume_without_readable_checkpoint_starts_over(tmp_path):
    broken = _ckpt(tmp_path / 'iter_4.pth')
    _truncate(broken, 0.1)
    logger, messages = _logger()
    cfg = Config(dict(work_dir=str(tmp_path), resume=True, load_from=None))
    assert resolve_resume(cfg, logger=logger) is None
    assert not cfg.resume and cfg.load_from is None
    assert any(broken in m for m in messages)
    assert any('starts from scratch' in m for m in messages)


def test_preemption_hook_arguments():
    with pytest.raises(ValueError, match='SIGKILL'):
        PreemptionHook(signals='SIGKILL')
    with pytest.raises(ValueError, match='SIGTEM'):
        PreemptionHook(signals=['SIGTERM', 'SIGTEM'])
    with pytest.raises(ValueError, match=r'exit_code .* \[0, 255\]'):
        PreemptionHook(exit_code=256)
    hook = PreemptionHook(signals='SIGUSR2')
    assert hook.signals == [signal.SIGUSR2]
    hook.after_train(None)  # restores the previous handler
    assert signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL


def _sleep(seconds):
    time.sleep(seconds)


def test_forked_pool_workers_stop_on_terminate():
    """With the hook's handlers installed, ``Pool.terminate()`` (SIGTERM
    to its forked workers, as mmdet's VOCMetric ends its pool) still stops
    the workers: only data-loader workers ignore the signal."""
    hook = PreemptionHook(signals='SIGTERM')
    try:
        pool = multiprocessing.get_context('fork').Pool(2)
        workers = [p.pid for p in multiprocessing.active_children()]
        pool.map_async(_sleep, [30, 30])
        time.sleep(0.5)
        stopper = threading.Thread(target=pool.terminate, daemon=True)
        stopper.start()
        stopper.join(timeout=10)
        hung = stopper.is_alive()
        if hung:  # clean up before failing
            for pid in workers:
                os.kill(pid, signal.SIGKILL)
        assert not hung, 'Pool.terminate() hangs: its workers ignore SIGTERM'
    finally:
        hook.after_train(None)


# preemption in real runners --------------------------------------------------


def _toy_runner(script, work_dir, by_epoch, plan=None, resume=False):
    cfg = script.toy_config(by_epoch)
    cfg.work_dir = str(work_dir)
    if by_epoch:  # regular checkpoints at epoch ends
        cfg.default_hooks.checkpoint.update(by_epoch=True, interval=1)
    if resume:
        cfg.resume = True
        resolve_resume(cfg)
    runner = Runner.from_cfg(cfg)
    if plan:
        runner.register_hook(script.FaultInjectionHook(plan))
    return runner


def _load(path, **kwargs):
    with checkpoint_safe_globals():
        return torch.load(path, weights_only=True, **kwargs)


def _final_state(path):
    ckpt = _load(path)
    return dict(
        ema=ckpt['state_dict'],  # EMAHook saves the average here
        weights=ckpt['ema_state_dict'],
        masks=ckpt['sparse_training']['masks'],
        optimizer={
            (i, k): v
            for i, state in ckpt['optimizer']['state'].items()
            for k, v in state.items()
        })


def _assert_bit_exact(path_a, path_b):
    a, b = _final_state(path_a), _final_state(path_b)
    for part in a:
        assert a[part].keys() == b[part].keys(), part
        for name, value in a[part].items():
            assert torch.equal(value, b[part][name]), (part, name)


@pytest.mark.parametrize('by_epoch', [False, True])
def test_sigterm_saves_exits_75_and_resumes_bit_exactly(
        tmp_path, script, one_thread, by_epoch):
    """SIGTERM while iteration 4 runs: the state after it is saved (inside
    the first epoch for the epoch-based loop), SystemExit(75); the resumed
    run ends with the weights, EMA, masks and Adam state of an uninterrupted
    run (dropout and drop path included)."""
    _toy_runner(script, tmp_path / 'a', by_epoch).train()
    runner = _toy_runner(script, tmp_path / 'b', by_epoch,
                         'term_at_iter:4:self')
    with pytest.raises(SystemExit) as exit_info:
        runner.train()
    assert exit_info.value.code == REQUEUE_EXIT_CODE == 75
    saved = str(tmp_path / 'b' / 'iter_5.pth')
    with open(tmp_path / 'b' / 'last_checkpoint') as f:
        assert f.read() == saved
    assert _load(saved)['meta']['iter'] == 5
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    with checkpoint_safe_globals():
        _toy_runner(script, tmp_path / 'b', by_epoch, resume=True).train()
    final = 'epoch_2.pth' if by_epoch else 'iter_12.pth'
    _assert_bit_exact(tmp_path / 'a' / final, tmp_path / 'b' / final)
    if by_epoch:  # the mid-epoch file is replaced by the epoch's checkpoint
        assert not osp.exists(saved)


def _launch(args, work_dir, plan=None, launcher=(), **kwargs):
    """Run the training script (after the ``launcher`` command, e.g.
    torchrun); its output goes to a file, so that the data-loader workers
    of a killed run (which exit a few seconds after it) do not hold the
    call. Returns (status, output)."""
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, **ENV)
    env.pop('SLAK_MM_FAULT', None)
    if plan:
        env['SLAK_MM_FAULT'] = plan
    os.makedirs(work_dir, exist_ok=True)
    runs = len(glob.glob(osp.join(work_dir, 'run_*.log')))
    log = osp.join(work_dir, f'run_{runs}.log')
    with open(log, 'w') as out:
        status = subprocess.run([
            sys.executable, *launcher, SCRIPT, *args, '--work-dir',
            str(work_dir)
        ],
                                cwd=REPO_ROOT,
                                env=env,
                                stdout=out,
                                stderr=subprocess.STDOUT,
                                timeout=600,
                                **kwargs).returncode
    with open(log) as f:
        return status, f.read()


def test_sigterm_to_the_process_group_exits_75(tmp_path):
    """As SLURM signals a job: SIGTERM to the main process and its two
    data-loader workers; the process saves and exits with status 75."""
    status, out = _launch(['toy'],
                          tmp_path,
                          'term_at_iter:4',
                          start_new_session=True)
    assert status == REQUEUE_EXIT_CODE, out[-3000:]
    assert 'SIGTERM received: the state after iteration 5 is in' in out
    assert checkpoint_problem(str(tmp_path / 'iter_5.pth')) is None
    assert not osp.exists(tmp_path / 'iter_6.pth')


@pytest.mark.slow
@pytest.mark.skipif(
    torch.cuda.is_available(), reason='checks the CPU (gloo) path')
def test_sigterm_on_one_rank_stops_all_ranks_after_the_same_iteration(
        tmp_path):
    """SIGTERM to rank 1 of 2 (gloo) while iteration 4 runs: both processes
    stop after it, the main one saves, both exit with status 75."""
    port = 29700 + os.getpid() % 1000
    status, out = _launch(['toy', '--launcher', 'pytorch'],
                          tmp_path,
                          'term_at_iter:4:1',
                          launcher=('-m', 'torch.distributed.run',
                                    '--nproc_per_node=2',
                                    f'--master_port={port}'))
    assert status != 0
    # torchrun's failure summary lists each rank with its status
    ranks = re.findall(
        r'rank\s*: (\d) \(local_rank: \d\)\s*\n\s*exitcode\s*: 75', out)
    assert sorted(ranks) == ['0', '1'], out[-3000:]
    assert checkpoint_problem(str(tmp_path / 'iter_5.pth')) is None
    assert not osp.exists(tmp_path / 'iter_6.pth')


# fault injection ------------------------------------------------------------

FAULT_CONFIG = """
_base_ = [{base!r}]
custom_hooks = [
    dict(type='slak_mm.DynamicSparseHook', sparsity=0.4, init='erk',
         update_interval=2, prune_rate=0.5, growth='random'),
    dict(type='EMAHook', ema_type='slak_mm.MaskedExponentialMovingAverage',
         momentum=0.05, update_buffers=True, priority='ABOVE_NORMAL')
]
default_hooks = dict(
    checkpoint=dict(type='slak_mm.AtomicCheckpointHook', interval=2,
                    by_epoch=False, max_keep_ckpts=2),
    preemption=dict(type='slak_mm.PreemptionHook'),
    seed=dict(type='slak_mm.PerIterationSeedHook'))
train_cfg = dict(max_iters={iters}, val_interval={iters})
val_cfg = None
val_dataloader = None
val_evaluator = None
"""
FAULT_ITERS = 8


def _resumed_from(work_dir):
    """The iteration the next --resume starts at (0 for a fresh start)."""
    path = find_resumable_checkpoint(str(work_dir))
    if path is None:
        return 0
    return _load(path, mmap=True)['meta']['iter']


def _fault_plan(rng, kind, start):
    """A random fault of ``kind`` for a run resuming at ``start``: SIGKILL
    up to 0.5 s into iteration ``K`` (``K`` before the second-to-last
    iteration when possible, so that the run cannot end first), or in the
    first or second checkpoint save of the run (mid-write, or up to 0.1 s
    after ``before_save_checkpoint``)."""
    if kind == 'kill_at_iter':
        iteration = rng.randint(start, max(start, FAULT_ITERS - 3))
        return f'{kind}:{iteration}:{rng.uniform(0.0, 0.5):.3f}'
    number = rng.randint(1, max(1, min(2, (FAULT_ITERS - start) // 2)))
    if kind == 'kill_in_write':
        return f'{kind}:{number}:{rng.uniform(0.05, 0.95):.3f}'
    return f'{kind}:{number}:{rng.uniform(0.0, 0.1):.3f}'


@pytest.mark.slow
def test_killed_and_resumed_run_ends_bit_exact(tmp_path, ade20k_coco_mini):
    """UperNet-SLaK mini with dynamic sparsity and the masked EMA, killed
    (SIGKILL) at random moments, several times inside checkpoint saves, and
    resumed with --resume each time, ends with the weights, EMA, masks and
    optimizer state of an uninterrupted run, bit for bit; after every kill
    all checkpoint files in the work_dir read back."""
    config = tmp_path / 'fault_config.py'
    config.write_text(FAULT_CONFIG.format(base=MINI_CONFIG, iters=FAULT_ITERS))
    options = [
        '--cfg-options', f'train_dataloader.dataset.data_root='
        f'{ade20k_coco_mini}'
    ]
    started = time.time()
    status, out = _launch([str(config), *options], tmp_path / 'reference')
    assert status == 0, out[-3000:]

    work_dir = tmp_path / 'faulty'
    rng = random.Random(18)
    kinds = [
        'kill_in_write', 'kill_at_iter', 'kill_in_save', 'kill_in_write',
        'kill_at_iter', 'kill_in_write'
    ]
    kills, in_save, log = 0, 0, []
    for kind in kinds + [None]:
        start = _resumed_from(work_dir)
        plan = _fault_plan(rng, kind, start) if kind else None
        status, out = _launch([str(config), '--resume', *options], work_dir,
                              plan)
        log.append((start, plan, status))
        if status == 0:
            break
        assert status == -signal.SIGKILL, out[-3000:]
        kills += 1
        marker = work_dir / 'in_save'
        if marker.exists():
            in_save += 1
            marker.unlink()
        # whatever the moment, every visible checkpoint reads back
        for name in os.listdir(work_dir):
            if name.endswith('.pth'):
                path = str(work_dir / name)
                assert checkpoint_problem(path) is None, (path, log)
        if (work_dir / 'last_checkpoint').exists():
            named = (work_dir / 'last_checkpoint').read_text()
            assert checkpoint_problem(named) is None, (named, log)
    else:
        pytest.fail(f'the run did not finish: {log}')
    print(f'fault injection: {kills} kills survived, {in_save} inside a '
          f'checkpoint save, {time.time() - started:.0f} s; runs '
          f'(resumed at, fault, status): {log}')
    assert kills >= 4 and in_save >= 2, log
    final = f'iter_{FAULT_ITERS}.pth'
    _assert_bit_exact(tmp_path / 'reference' / final, work_dir / final)
