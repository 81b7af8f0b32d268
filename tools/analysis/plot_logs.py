"""Curves of a work_dir's latest run (loss, lr, sparsity, metrics) as a PNG,
one panel per key.

A wrapper of mmpretrain's ``tools/analysis_tools/analyze_logs.py`` (shipped
in the package, under ``mmpretrain/.mim/``): the records are read with
``mmpretrain.utils.load_json_log`` from the ``vis_data/scalars.json`` that
mmengine's LocalVisBackend writes for any toolbox, and every key is drawn
by the script's ``plot_curve_helper`` (training keys against the
iteration or epoch, validation keys against the validation step). Keys
absent from the log are skipped. Example::

    python tools/analysis/plot_logs.py work_dirs/demo_upernet_slak_t \\
        --keys loss lr sparse_density mIoU
"""
import argparse
import glob
import os.path as osp
import runpy

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import mmpretrain  # noqa: E402
from mmpretrain.utils import load_json_log  # noqa: E402

ANALYZE_LOGS = osp.join(
    osp.dirname(mmpretrain.__file__), '.mim', 'tools', 'analysis_tools',
    'analyze_logs.py')
DEFAULT_KEYS = ('loss', 'lr', 'sparse_density', 'mIoU', 'accuracy/top1',
                'coco/bbox_mAP', 'pascal_voc/mAP')


def main(argv=None):
    """Run the command line ``argv`` (default ``sys.argv[1:]``).

    Raises:
        FileNotFoundError: If the work_dir holds no ``scalars.json``.
        ValueError: If none of ``--keys`` is in the log.
    """
    parser = argparse.ArgumentParser(description='Plot training curves')
    parser.add_argument('work_dir')
    parser.add_argument('--run', help='timestamp dir (default: latest)')
    parser.add_argument('--keys', nargs='+', default=list(DEFAULT_KEYS))
    parser.add_argument('--out', help='default: <work_dir>/curves.png')
    args = parser.parse_args(argv)

    pattern = osp.join(args.work_dir, args.run or '*', 'vis_data',
                       'scalars.json')
    paths = sorted(glob.glob(pattern), key=osp.getmtime)[-1:]
    if not paths:
        raise FileNotFoundError(f'no {pattern}')
    log = load_json_log(paths[0])
    # the keys analyze_logs accepts: those of the first record of a phase
    logged = set().union(*(records[0] for records in log.values() if records))
    keys = [key for key in args.keys if key in logged]
    if not keys:
        raise ValueError(f'--keys: none of {args.keys} in {paths[0]}; it '
                         f'logs {sorted(logged)}.')
    plot_curve_helper = runpy.run_path(ANALYZE_LOGS)['plot_curve_helper']
    fig, axes = plt.subplots(
        1, len(keys), figsize=(4 * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys):
        plt.sca(ax)
        plot_curve_helper([log], [key], argparse.Namespace(json_logs=paths),
                          [key])
        plt.setp(ax.lines, marker='.')  # a single validation is a dot
        ax.set_title(key)
    fig.tight_layout()
    out = args.out or osp.join(args.work_dir, 'curves.png')
    fig.savefig(out, dpi=100)
    print(f'written: {out} ({", ".join(keys)})')


if __name__ == '__main__':
    main()
