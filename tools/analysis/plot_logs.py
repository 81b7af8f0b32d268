"""Training curves of a work_dir (loss, lr, sparsity, metrics) as PNG.

Reads the ``vis_data/scalars.json`` that mmengine's LocalVisBackend writes
in each run directory (``<work_dir>/<timestamp>/``, the latest run unless
``--run`` is given) and plots every requested key against the iteration
(training records) or the step of validation records.

Example::

    python tools/analysis/plot_logs.py work_dirs/demo_upernet_slak_t \\
        --keys loss lr sparse_density mIoU
"""
import argparse
import glob
import json
import os.path as osp

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

DEFAULT_KEYS = ('loss', 'lr', 'sparse_density', 'mIoU', 'accuracy/top1',
                'coco/bbox_mAP', 'pascal_voc/mAP')


def find_scalars(work_dir, run=None):
    pattern = osp.join(work_dir, run or '*', 'vis_data', 'scalars.json')
    files = sorted(glob.glob(pattern), key=osp.getmtime)
    if not files:
        raise FileNotFoundError(f'no {pattern}')
    return files[-1]


def read_records(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def curves(records, keys):
    """``{key: ([x], [y])}`` for the keys present; x = iter for training
    records, step otherwise."""
    result = {}
    for record in records:
        x = record.get('iter', record.get('step'))
        for key in keys:
            if key in record and x is not None:
                xs, ys = result.setdefault(key, ([], []))
                xs.append(x)
                ys.append(record[key])
    return result


def main():
    parser = argparse.ArgumentParser(description='Plot training curves')
    parser.add_argument('work_dir')
    parser.add_argument('--run', help='timestamp dir (default: latest)')
    parser.add_argument('--keys', nargs='+', default=list(DEFAULT_KEYS))
    parser.add_argument('--out', help='PNG path (default: '
                        '<work_dir>/curves.png)')
    args = parser.parse_args()

    path = find_scalars(args.work_dir, args.run)
    data = curves(read_records(path), args.keys)
    if not data:
        raise ValueError(f'none of {args.keys} in {path}')
    fig, axes = plt.subplots(
        1, len(data), figsize=(4 * len(data), 3.2), squeeze=False)
    for ax, (key, (xs, ys)) in zip(axes[0], data.items()):
        ax.plot(xs, ys, marker='.' if len(xs) < 30 else None)
        ax.set_title(key)
        ax.set_xlabel('iteration')
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out = args.out or osp.join(args.work_dir, 'curves.png')
    fig.savefig(out, dpi=100)
    print(f'read {path}\nwritten: {out} ({", ".join(data)})')


if __name__ == '__main__':
    main()
