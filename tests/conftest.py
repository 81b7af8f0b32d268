import os
import os.path as osp

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: The real sample datasets (never committed): $SLAK_MM_SHARED_DATA or
#: ../shared/data next to the repository.
SHARED_DATA = os.environ.get(
    'SLAK_MM_SHARED_DATA', osp.join(osp.dirname(REPO_ROOT), 'shared', 'data'))


@pytest.fixture(scope='session')
def shared_data():
    if not osp.isdir(SHARED_DATA):
        pytest.skip(f'real sample data not found at {SHARED_DATA} '
                    '(set SLAK_MM_SHARED_DATA)')
    return SHARED_DATA


@pytest.fixture(scope='session')
def ade20k_coco_mini(shared_data):
    root = osp.join(shared_data, 'ade20k_coco_mini', 'ADEChallengeData2016')
    if not osp.isdir(root):
        pytest.skip(f'{root} not found')
    return root


@pytest.fixture(scope='session')
def ade20k_mini(shared_data):
    root = osp.join(shared_data, 'ade20k_mini', 'ADEChallengeData2016')
    if not osp.isdir(root):
        pytest.skip(f'{root} not found')
    return root
