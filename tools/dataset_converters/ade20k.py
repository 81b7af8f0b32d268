"""ADE20K-format segmentation sample (mmseg ``ADE20KDataset`` layout): the
VOC class maps of :mod:`.sources` as ``L`` PNGs of ADE20K values, i.e.
``ADE20KDataset.METAINFO['classes'].index(name) + 1`` (1..150), or 0 for
unlabelled, void and classes ADE20K-150 lacks."""
import collections
from pathlib import Path
from typing import Dict, Iterable, Sequence

import numpy as np
from mmseg.datasets import ADE20KDataset
from PIL import Image

from .download import log
from .sources import Sample, map_label, split_of

ADE20K_CLASSES = ADE20KDataset.METAINFO['classes']
DATASET_DIRNAME = 'ADEChallengeData2016'
SPLITS = ('training', 'validation')
VOC_IGNORE_INDEX = 255
# Source (VOC / labelme) name -> ADE20K class name; None: 0 (unlabelled).
LABEL_TO_ADE20K = dict(
    background=None, ignore=None, train=None, aeroplane='airplane',
    diningtable='table', motorbike='minibike', pottedplant='plant',
    tvmonitor='television receiver',
    track='truck',  # labelme's video example labels a lorry 'track' (sic)
    **{name: name for name in ('bicycle', 'boat', 'bottle', 'bus', 'car',
                               'chair', 'person', 'sofa')},
    **{name: 'animal'
       for name in ('bird', 'cat', 'cow', 'dog', 'horse', 'sheep')})


def source_to_ade20k_index(name: str,
                           classes: Sequence[str] = ADE20K_CLASSES) -> int:
    """ADE20K value of a source class name (``'tv/monitor'``: 1 + index of
    ``'television receiver'``; 0: unlabelled); ``KeyError`` if unmapped."""
    target = map_label(name, LABEL_TO_ADE20K)
    return 0 if target is None else list(classes).index(target) + 1


def convert_label(label: np.ndarray, class_names: Sequence[str],
                  classes: Sequence[str] = ADE20K_CLASSES) -> np.ndarray:
    """Convert an (H, W) VOC-style map (values index ``class_names``, or
    255 = void) to an (H, W) uint8 map of ADE20K values 0..150.

    Raises:
        ValueError: If the map is not 2-D or holds values without a name.
    """
    label = np.asarray(label)
    unknown = set(np.unique(label).tolist()) - set(range(len(class_names)))
    if label.ndim != 2 or unknown - {VOC_IGNORE_INDEX}:
        raise ValueError(f'expected a 2-D label map of values < '
                         f'{len(class_names)} or 255, got {label.shape}, '
                         f'values {sorted(unknown)}')
    table = np.zeros(256, dtype=np.uint8)  # 255 (void) -> 0
    for value, name in enumerate(class_names):
        table[value] = source_to_ade20k_index(name, classes)
    return table[label.astype(np.int64)]


def write_dataset(samples: Iterable[Sample], root: Path) -> None:
    """Write ``images/<split>/<id>.jpg`` (verbatim) and
    ``annotations/<split>/<id>.png`` under ``root``."""
    for sample in samples:
        stem = f'{split_of(sample.sample_id, SPLITS)}/{sample.sample_id}'
        for sub in ('images', 'annotations'):
            (root / sub / stem).parent.mkdir(parents=True, exist_ok=True)
        (root / 'images' / f'{stem}.jpg').write_bytes(sample.image_bytes)
        Image.fromarray(convert_label(sample.label, sample.class_names)).save(
            root / 'annotations' / f'{stem}.png')
        log(f'{stem}: {sample.source}')


def validate_dataset(root: Path) -> Dict[str, dict]:
    """Check that both splits of ``root`` hold images, each with an ``L``
    annotation of its size with values 0..150; ``ValueError`` otherwise.

    Returns:
        dict: Per split, ``{'ids': [...], 'pixels': Counter}`` (pixels per
        ADE20K value).
    """
    stats = {}
    for split in SPLITS:
        img_dir, ann_dir = (root / sub / split
                            for sub in ('images', 'annotations'))
        ids = sorted(p.stem for p in img_dir.glob('*.jpg'))
        if not ids or ids != sorted(p.stem for p in ann_dir.glob('*.png')):
            raise ValueError(f'{split}: no images, or images without an '
                             'annotation or annotations without an image')
        pixels = collections.Counter()
        for stem in ids:
            with Image.open(img_dir / f'{stem}.jpg') as image, \
                    Image.open(ann_dir / f'{stem}.png') as ann:
                image.load()
                values, counts = np.unique(np.array(ann), return_counts=True)
                if ann.mode != 'L' or ann.size != image.size or \
                        values.max() > len(ADE20K_CLASSES):
                    raise ValueError(f'{ann.filename}: mode {ann.mode}, size '
                                     f'{ann.size}, max {values.max()}; '
                                     f'expected L, {image.size}, <= 150')
            pixels.update(dict(zip(values.tolist(), counts.tolist())))
        stats[split] = {'ids': ids, 'pixels': pixels}
    return stats
