"""Checkpoint files that survive a kill at any moment: atomic writes, a
readability check, and the choice of the checkpoint to resume from.

mmengine 0.10.7 writes a checkpoint with ``open(path, 'wb')`` in
``LocalBackend.put`` and ``last_checkpoint`` with ``open(path, 'w')`` in
``CheckpointHook``, so a process killed while writing leaves a truncated
file that ``--resume`` then fails on. Here every file is written to a
temporary file in the same folder and renamed into place (POSIX
``rename`` is atomic), and resuming skips files that do not read back.
"""
import contextlib
import glob
import logging
import os
import os.path as osp
import re
import uuid
import zipfile
from typing import List, Optional, Union

import torch
from mmengine.config import Config
from mmengine.fileio import LocalBackend, register_backend
from mmengine.logging import print_log

from slak_mm.utils import checkpoint_safe_globals

#: Name of the atomic local file backend in mmengine's backend registry;
#: ``backend_args=dict(backend=ATOMIC_BACKEND)`` selects it.
ATOMIC_BACKEND = 'slak_mm_atomic_local'
#: Entries every checkpoint written by a Runner has; resuming needs them.
REQUIRED_KEYS = ('meta', 'state_dict', 'message_hub')


def _temp_path(path: str) -> str:
    """A unique hidden temporary name next to ``path`` (not matched by
    ``*.pth`` globs), e.g. ``.iter_8.pth.4711.1f2e3d4c.tmp``."""
    folder, name = osp.split(path)
    return osp.join(folder,
                    f'.{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp')


def temp_files(folder: str) -> List[str]:
    """Temporary files left in ``folder`` by writes that were killed (named
    by :func:`_temp_path`)."""
    return [
        path for path in glob.glob(osp.join(folder, '.*.tmp'))
        if re.fullmatch(r'\..+\.\d+\.[0-9a-f]{8}\.tmp', osp.basename(path))
    ]


def _fsync_folder(folder: str) -> None:
    """Make a rename inside ``folder`` durable (no-op where folders cannot
    be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(data: Union[bytes, str],
                 path: str,
                 encoding: str = 'utf-8') -> None:
    """Write a file so that readers see either its old content or the new
    one in full, whenever the process is killed.

    The data goes to a temporary file in the same folder (same file
    system), which is flushed, ``fsync``-ed and renamed over ``path`` with
    ``os.replace``; the folder is ``fsync``-ed so that the rename survives
    a node failure. If writing fails, the temporary file is removed and the
    error re-raised; a SIGKILL leaves it behind (see :func:`temp_files`).

    Args:
        data (bytes | str): The content; ``str`` is encoded with
            ``encoding``.
        path (str): The final file path; missing folders are created.
        encoding (str): Encoding of ``str`` data. Defaults to ``'utf-8'``.
    """
    if isinstance(data, str):
        data = data.encode(encoding)
    path = osp.abspath(path)
    folder = osp.dirname(path)
    os.makedirs(folder, exist_ok=True)
    temp = _temp_path(path)
    try:
        with open(temp, 'xb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temp)
        raise
    _fsync_folder(folder)


class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend whose ``put`` / ``put_text`` write
    atomically (:func:`atomic_write`). Registered in mmengine's backend
    registry as :data:`ATOMIC_BACKEND` (without a URI prefix, so it is used
    only where ``backend_args`` ask for it, as
    :class:`~slak_mm.engine.AtomicCheckpointHook` does by default)."""

    def put(self, obj: bytes, filepath) -> None:
        """Write bytes to ``filepath`` atomically."""
        atomic_write(obj, str(filepath))

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        """Write text to ``filepath`` atomically."""
        atomic_write(obj, str(filepath), encoding=encoding)


register_backend(ATOMIC_BACKEND, AtomicLocalBackend, force=True)


def checkpoint_problem(path: str) -> Optional[str]:
    """Why ``path`` cannot be resumed from, or ``None`` if it can.

    Checks, in order: the file exists; if it is a zip archive (the format
    of ``torch.save``), every entry matches its CRC-32 (this reads the
    whole file once and finds truncated and corrupted files); its pickle
    loads with ``torch.load(weights_only=True, mmap=True)`` inside
    :func:`~slak_mm.utils.checkpoint_safe_globals` (tensors are
    memory-mapped, not read); it is a dict with the entries of a Runner
    checkpoint (:data:`REQUIRED_KEYS`, ``meta['iter']``).

    Args:
        path (str): A local checkpoint file.

    Returns:
        str | None: A one-line reason, e.g. ``'truncated or not a torch
        checkpoint (File is not a zip file)'``, or ``None``.
    """
    if not osp.isfile(path):
        return 'no such file'
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as err:
            return f'damaged zip archive ({err})'
        if bad is not None:
            return f'corrupted: entry {bad} fails its CRC-32 check'
    try:
        with checkpoint_safe_globals():
            checkpoint = torch.load(
                path, map_location='cpu', mmap=True, weights_only=True)
    except Exception as err:  # torch raises several types here
        # the first sentence of torch's message names the damage
        reason = str(err).strip().split('. ')[0].splitlines()
        reason = reason[0] if reason else type(err).__name__
        return f'truncated or not a torch checkpoint ({reason})'
    if not isinstance(checkpoint, dict):
        return f'holds a {type(checkpoint).__name__}, not a dict'
    missing = [key for key in REQUIRED_KEYS if key not in checkpoint]
    if missing:
        return f'not a Runner checkpoint (no {missing})'
    if not isinstance(checkpoint['meta'], dict) or \
            'iter' not in checkpoint['meta']:
        return 'not a Runner checkpoint (no meta["iter"])'
    return None


def _candidates(work_dir: str) -> List[str]:
    """Checkpoint files of a work_dir, newest first: ``*.pth`` beside
    ``last_checkpoint`` and in the folder it names (``CheckpointHook``'s
    ``out_dir`` may be elsewhere), ordered by modification time (a file
    renamed into place keeps the time its writing ended)."""
    folders = {osp.abspath(work_dir)}
    pointer = osp.join(work_dir, 'last_checkpoint')
    named = None
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip()
        if named:
            folders.add(osp.dirname(osp.abspath(named)))
    files = {
        osp.abspath(p)
        for folder in folders
        for p in glob.glob(osp.join(folder, '*.pth'))
    }
    if named:
        files.add(osp.abspath(named))

    def newest_first(path):
        try:
            return -os.stat(path).st_mtime_ns, path
        except OSError:  # a named file that is missing goes last
            return 0, path

    return sorted(files, key=newest_first)


def find_resumable_checkpoint(work_dir: str, logger='current') -> \
        Optional[str]:
    """The newest checkpoint of ``work_dir`` that can be resumed from.

    Replaces mmengine's ``find_latest_checkpoint`` (which trusts
    ``last_checkpoint``) for ``--resume`` without a path: candidates
    (:func:`_candidates`) are checked newest first with
    :func:`checkpoint_problem`, and each one skipped is logged as a warning
    naming the file and the reason.

    Args:
        work_dir (str): The run's work_dir.
        logger: Where the warnings go (mmengine ``print_log``'s ``logger``).
            Defaults to the current logger.

    Returns:
        str | None: The checkpoint path, or ``None`` if there is none that
        reads back.
    """
    if not osp.isdir(work_dir):
        return None
    for path in _candidates(work_dir):
        problem = checkpoint_problem(path)
        if problem is None:
            return path
        print_log(
            f'Cannot resume from {path}: {problem}; trying the previous '
            'checkpoint.',
            logger=logger,
            level=logging.WARNING)
    return None


def resolve_resume(cfg: Config, logger='current') -> Optional[str]:
    """Choose the checkpoint of ``--resume`` before the Runner is built.

    For ``tools/train.py`` after the command line is merged into ``cfg``
    (``cfg.resume`` true; ``cfg.load_from`` the named file or ``None`` for
    ``--resume`` without a path):

    - named file: checked with :func:`checkpoint_problem`; a local file
      that does not read back is an error naming it (URLs are left to
      mmengine);
    - automatic: ``cfg.load_from`` is set to
      :func:`find_resumable_checkpoint` of ``cfg.work_dir``; if none reads
      back, ``cfg.resume`` is cleared and training starts from scratch
      (as mmengine does when the work_dir holds no checkpoint).

    Args:
        cfg (Config): The merged config, modified in place.
        logger: See :func:`find_resumable_checkpoint`.

    Returns:
        str | None: The checkpoint resumed from, or ``None``.

    Raises:
        FileNotFoundError: If the named file does not exist.
        RuntimeError: If the named file cannot be resumed from; the message
            names the file and the reason.
    """
    if not cfg.get('resume', False):
        return None
    named = cfg.get('load_from')
    if named:
        if '://' in str(named):
            return named
        problem = checkpoint_problem(named)
        if problem == 'no such file':
            raise FileNotFoundError(f'--resume {named}: no such file.')
        if problem is not None:
            raise RuntimeError(f'--resume {named}: cannot resume from this '
                               f'file: {problem}.')
        return named
    found = find_resumable_checkpoint(cfg.work_dir, logger=logger)
    if found is None:
        cfg.resume = False
        print_log(
            f'--resume: no readable checkpoint in {cfg.work_dir}; '
            'training starts from scratch.',
            logger=logger)
    else:
        cfg.load_from = found
        print_log(f'--resume: resuming from {found}.', logger=logger)
    return found
