"""Installation metadata: what ``pip install -e .`` declares, and that it
installs into an existing environment without ``tools/setup_env.sh``."""
import os
import os.path as osp
import site
import subprocess
import sys
from importlib import metadata

import pytest
from packaging.requirements import Requirement

from .conftest import REPO_ROOT


def _pins():
    """``{name: version}`` of the ``==`` / ``===`` pins of
    requirements/constraints.txt."""
    pins = {}
    with open(osp.join(REPO_ROOT, 'requirements', 'constraints.txt')) as f:
        for line in f:
            line = line.split('#')[0].strip()
            if line:
                req = Requirement(line)
                pins[req.name.lower()] = str(req.specifier).lstrip('=')
    return pins


def _declared(extras=('seg', 'det', 'tests')):
    reqs = [Requirement(r) for r in metadata.requires('slak_mm')]
    return [
        r for r in reqs if r.marker is None or any(
            r.marker.evaluate({'extra': e}) for e in extras)
    ]


def test_declared_requirements_are_real_and_hold():
    """slak_mm declares mmengine, mmcv, mmpretrain and the toolboxes as
    extras, and the pinned environment satisfies every declared range."""
    names = {r.name.lower() for r in _declared()}
    assert {'torch', 'mmengine', 'mmcv', 'mmpretrain'} <= {
        r.name.lower() for r in _declared(extras=())}
    assert {'mmsegmentation', 'mmdet', 'ftfy', 'regex'} <= names
    pins = _pins()
    for req in _declared():
        installed = metadata.version(req.name)
        assert req.specifier.contains(installed, prereleases=True), \
            f'{req.name} {installed} is outside the declared {req}'
        if req.name.lower() in pins:  # the pin is inside the range
            assert req.specifier.contains(pins[req.name.lower()],
                                          prereleases=True), (req, pins)


def _venv_over_this_env(tmp_path):
    """A new virtualenv that sees this environment's packages (pip and
    setuptools included) through a ``.pth`` file: "an existing environment
    that satisfies the pins"."""
    venv = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip',
                    str(venv)], check=True)
    py = str(venv / 'bin' / 'python')
    own = subprocess.run(
        [py, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
        check=True, capture_output=True, text=True).stdout.strip()
    with open(osp.join(own, 'zz_existing_env.pth'), 'w') as f:
        f.write('\n'.join(site.getsitepackages()) + '\n')
    return py, own


def _pip_install(py, *extra):
    env = dict(os.environ, PIP_NO_INDEX='1', PIP_NO_CACHE_DIR='1',
               PIP_DISABLE_PIP_VERSION_CHECK='1')
    env.pop('PYTHONPATH', None)
    return subprocess.run(
        [py, '-m', 'pip', 'install', '--no-build-isolation', *extra, '-e',
         REPO_ROOT],
        cwd=str(osp.dirname(py)), env=env, capture_output=True, text=True,
        timeout=600)


@pytest.mark.slow
def test_pip_install_into_existing_env(tmp_path):
    """``pip install -e .`` into an environment that already has torch,
    mmcv and the toolboxes installs slak_mm alone (offline: nothing else
    is needed) and it imports; with mmengine 0.9.0 in that environment pip
    refuses with a conflict naming mmengine instead of installing."""
    py, own_site = _venv_over_this_env(tmp_path)
    proc = _pip_install(py)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert 'Successfully installed slak_mm' in proc.stdout, proc.stdout
    out = subprocess.run(
        [py, '-c', 'import slak_mm, mmseg, mmdet; print(slak_mm.__file__)'],
        cwd='/', capture_output=True, text=True, check=True).stdout
    assert osp.realpath(out.strip()).startswith(osp.realpath(REPO_ROOT))

    # An environment with an mmengine outside the declared range: a fake
    # mmengine 0.9.0 distribution shadows the real one in the new venv.
    dist_info = osp.join(own_site, 'mmengine-0.9.0.dist-info')
    os.makedirs(dist_info)
    with open(osp.join(dist_info, 'METADATA'), 'w') as f:
        f.write('Metadata-Version: 2.1\nName: mmengine\nVersion: 0.9.0\n')
    open(osp.join(dist_info, 'RECORD'), 'w').close()
    proc = _pip_install(py, '--dry-run')
    assert proc.returncode != 0, proc.stdout
    assert 'mmengine' in proc.stderr, proc.stderr
    # and `pip check` names the installed conflicting version
    proc = subprocess.run([py, '-m', 'pip', 'check'], capture_output=True,
                          text=True)
    assert proc.returncode != 0
    assert 'mmengine 0.9.0' in proc.stdout.replace('mmengine==', 'mmengine '), \
        proc.stdout
