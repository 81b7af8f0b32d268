"""Fashion-MNIST image-folder sample for mmpretrain: the first images of
each class of the official files (Debian's ``dataset-fashion-mnist``), read
with torchvision's MNIST reader, as RGB PNGs (grey in all channels) in
``<split>/<label>_<name>/`` with ``meta/<split>.txt`` annotation files."""
import collections
import gzip
import re
import tempfile
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
from mmpretrain.datasets import FashionMNIST
from PIL import Image
from torchvision.datasets.mnist import read_image_file, read_label_file

from .download import check_sha256, log

CLASSES = FashionMNIST.METAINFO['classes']
SPLITS = ('train', 'val')
PACKAGE, DEB_DIR = 'dataset-fashion-mnist', 'usr/share/datasets/fashion-mnist'
# Output split -> official file prefix, SHA-256 of the decompressed images
# and labels files (dataset-fashion-mnist 0.0~git20200523.55506a9-1 in
# Debian 12, or any other copy of the official release).
SOURCES = dict(
    train=('train',
           'c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888',
           'bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9'),
    val=('t10k',
         '5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b',
         '0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34'))
IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC = 0x00000803, 0x00000801


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Read an uncompressed idx file of :data:`IDX_IMAGES_MAGIC` (uint8
    ``(N, H, W)``) or :data:`IDX_LABELS_MAGIC` (uint8 ``(N, )``) with
    torchvision's MNIST reader; ``ValueError`` on another magic number or a
    size that does not match the header's shape."""
    with open(path, 'rb') as f:
        if int.from_bytes(f.read(4), 'big') != magic:
            raise ValueError(f'{path}: not an idx file with magic '
                             f'{magic:#010x}')
    reader = read_image_file if magic == IDX_IMAGES_MAGIC else read_label_file
    try:
        return reader(str(path)).numpy().astype(np.uint8)
    except RuntimeError as err:  # torch's view() to the header shape
        raise ValueError(f'{path}: data size does not match the header '
                         f'shape ({err})') from err


def load_split(directory: Path,
               split: str) -> Tuple[np.ndarray, np.ndarray, str]:
    """Read the official ``<prefix>-*-ubyte.gz`` files of ``split`` in
    ``directory``: ``(N, 28, 28)`` images, ``(N, )`` labels and the prefix
    (``'train'`` / ``'t10k'``); ``ValueError`` if a pinned digest differs."""
    prefix, *digests = SOURCES[split]
    arrays = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind, digest, magic in zip(('images-idx3', 'labels-idx1'),
                                       digests,
                                       (IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC)):
            path = directory / f'{prefix}-{kind}-ubyte.gz'
            with gzip.open(path, 'rb') as f:
                data = f.read()
            check_sha256(data, digest, f'{path} (decompressed)')
            (Path(tmp) / path.stem).write_bytes(data)
            arrays.append(read_idx(Path(tmp) / path.stem, magic))
    return arrays[0], arrays[1], prefix


def select_per_class(labels: np.ndarray, per_class: int) -> List[int]:
    """Sorted indices of the first ``per_class`` entries of every class in
    the (N, ) ``labels``; ``ValueError`` if a class has fewer."""
    chosen = []
    for label in range(len(CLASSES)):
        indices = np.flatnonzero(labels == label)[:per_class]
        if len(indices) < per_class:
            raise ValueError(f'class {label} has only {len(indices)} '
                             f'images, {per_class} requested')
        chosen.extend(indices.tolist())
    return sorted(chosen)


def class_dirname(label: int) -> str:
    """``<label>_<name>`` (``'0_t_shirt_top'``): sorted folders (read by
    ``CustomDataset`` without annotation files) keep the label order."""
    name = re.sub(r'[^a-z0-9]+', '_', CLASSES[label].lower()).strip('_')
    return f'{label}_{name}'


def write_dataset(root: Path, directory: Path,
                  per_class: Dict[str, int]) -> None:
    """Write ``per_class[split]`` images per class of each split, from the
    official files in ``directory``, and ``meta/{classes,<split>}.txt``."""
    (root / 'meta').mkdir()
    (root / 'meta/classes.txt').write_text(''.join(f'{c}\n' for c in CLASSES))
    for split in SPLITS:
        images, labels, prefix = load_split(directory, split)
        lines = []
        for index in select_per_class(labels, per_class[split]):
            rel = f'{class_dirname(labels[index])}/{prefix}_{index:05d}.png'
            (root / split / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.repeat(images[index][..., None], 3,
                                      axis=-1)).save(root / split / rel)
            lines.append(f'{rel} {labels[index]}\n')
        (root / 'meta' / f'{split}.txt').write_text(''.join(lines))


def validate_dataset(root: Path) -> Dict[str, collections.Counter]:
    """Check that every listed file is a 28x28 RGB PNG in its label's
    folder, every PNG is listed and the classes are balanced; ``ValueError``
    otherwise. Returns a Counter of images per label for each split."""
    if tuple((root / 'meta/classes.txt').read_text().splitlines()) != CLASSES:
        raise ValueError(f'{root}/meta/classes.txt: not {CLASSES}')
    stats = {}
    for split in SPLITS:
        lines = (root / 'meta' / f'{split}.txt').read_text().splitlines()
        labels = collections.Counter()
        for rel, label in (line.rsplit(' ', 1) for line in lines):
            with Image.open(root / split / rel) as image:
                if rel.split('/')[0] != class_dirname(int(label)) or \
                        image.mode != 'RGB' or image.size != (28, 28):
                    raise ValueError(f'{split}/{rel}: mode {image.mode}, '
                                     f'size {image.size}; expected RGB 28x28')
            labels[int(label)] += 1
        found = len(list((root / split).glob('*/*.png')))
        if found != len(lines) or set(labels) != set(range(len(CLASSES))) \
                or len(set(labels.values())) != 1:
            raise ValueError(f'{split}: {found} PNGs, {len(lines)} listed, '
                             f'images per class {dict(labels)}')
        stats[split] = labels
    return stats


def report(stats: Dict[str, collections.Counter]) -> None:
    """Log the images per split and class, and the class names."""
    for split, counts in stats.items():
        log(f'{split}: {sum(counts.values())} images, {counts[0]} per class')
    log('classes: ' + ', '.join(f'{i} {c}' for i, c in enumerate(CLASSES)))
