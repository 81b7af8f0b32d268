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


@pytest.fixture(scope='session')
def imagenet_mini(shared_data):
    root = osp.join(shared_data, 'imagenet_mini')
    for split in ('train', 'val'):
        if not osp.isfile(osp.join(root, 'meta', f'{split}.txt')):
            pytest.skip(f'{root}/meta/{split}.txt not found')
    return root


@pytest.fixture(scope='session')
def voc2007_mini(shared_data):
    root = osp.join(shared_data, 'voc2007_mini', 'VOCdevkit')
    if not osp.isdir(osp.join(root, 'VOC2007')):
        pytest.skip(f'{root}/VOC2007 not found')
    return root


@pytest.fixture(scope='session')
def coco_mini(shared_data):
    root = osp.join(shared_data, 'coco_mini')
    if not osp.isfile(
            osp.join(root, 'annotations', 'instances_val2017.json')):
        pytest.skip(f'{root}/annotations not found')
    return root
