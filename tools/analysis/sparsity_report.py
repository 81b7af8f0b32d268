"""Per-layer / per-stage density of a (sparse) checkpoint, with plots.

Reads any slak_mm / mmengine checkpoint (``state_dict``, optionally with
the ``sparse_training`` masks of DynamicSparseHook) or a bare state dict,
and writes under ``--out-dir``:

- ``density_layers.csv``: every 2-D / 4-D weight: shape, non-zeros,
  density (and mask density when the checkpoint holds masks);
- ``density.md``: the per-stage table;
- ``density.png``: per-layer density plot coloured by stage;
- ``kernels.png``: heatmaps of a few large kernels (the three branches of
  a decomposed large kernel summed, centred, into one K x K kernel;
  |weight| averaged over channels, and the fraction of non-zero channels
  per position).

Example::

    python tools/analysis/sparsity_report.py work_dirs/x/iter_160000.pth
"""
import argparse
import csv
import os
import os.path as osp
import re
from collections import OrderedDict

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.utils import track_iter_progress  # noqa: E402

from slak_mm.sparse import group_of  # noqa: E402
from slak_mm.utils import load_checkpoint_file  # noqa: E402

BRANCH = re.compile(r'(.*large_kernel)\.branch_(kxs|sxk|sxs)\.conv\.weight$')


def parse_args():
    parser = argparse.ArgumentParser(description='Sparsity report')
    parser.add_argument('checkpoint')
    parser.add_argument('--out-dir', default=None,
                        help='default: work_dirs/sparsity/<checkpoint name>')
    parser.add_argument('--num-kernels', type=int, default=4,
                        help='large kernels to draw')
    return parser.parse_args()


def load_state(path):
    ckpt = load_checkpoint_file(path)
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else ckpt
    masks = ckpt.get('sparse_training', {}).get('masks', {}) \
        if isinstance(ckpt, dict) else {}
    weights = OrderedDict((k, v) for k, v in state.items()
                          if torch.is_tensor(v) and v.ndim in (2, 4)
                          and v.is_floating_point())
    if not weights:
        raise ValueError(f'{path} holds no 2-D / 4-D weights (expected a '
                         '`state_dict` or a bare state dict).')
    return weights, masks


def layer_table(weights, masks):
    rows = []
    for name, w in track_iter_progress(list(weights.items())):
        nnz = int(torch.count_nonzero(w))
        row = OrderedDict(
            name=name, group=group_of(name),
            shape='x'.join(map(str, w.shape)), numel=w.numel(), nonzero=nnz,
            density=nnz / w.numel())
        if name in masks:
            row['mask_density'] = float(masks[name].float().mean())
        rows.append(row)
    return rows


def group_table(rows):
    groups = OrderedDict()
    for row in rows:
        g = groups.setdefault(row['group'], [0, 0])
        g[0] += row['nonzero']
        g[1] += row['numel']
    total = [sum(v[0] for v in groups.values()),
             sum(v[1] for v in groups.values())]
    lines = ['| group | weights | non-zero | density |',
             '| --- | --- | --- | --- |']
    for name, (nnz, numel) in list(groups.items()) + [('total', total)]:
        lines.append(f'| {name} | {numel:,} | {nnz:,} | {nnz / numel:.4f} |')
    return '\n'.join(lines)


def merged_kernel(weights, prefix):
    """The K x K depthwise kernel equivalent to the three branches (BN not
    folded: the pattern of the raw weights)."""
    parts = [weights[f'{prefix}.branch_{b}.conv.weight']
             for b in ('kxs', 'sxk', 'sxs')
             if f'{prefix}.branch_{b}.conv.weight' in weights]
    size = max(max(p.shape[-2:]) for p in parts)
    dense = torch.zeros(parts[0].shape[0], size, size)
    nonzero = torch.zeros(parts[0].shape[0], size, size)
    for p in parts:
        kh, kw = p.shape[-2:]
        top, left = (size - kh) // 2, (size - kw) // 2
        dense[:, top:top + kh, left:left + kw] += p[:, 0].abs()
        nonzero[:, top:top + kh, left:left + kw] += (p[:, 0] != 0).float()
    return dense, (nonzero > 0).float()


def plot_density(rows, path):
    groups = list(OrderedDict.fromkeys(r['group'] for r in rows))
    colors = plt.cm.tab10(np.linspace(0, 1, max(len(groups), 1)))
    fig, ax = plt.subplots(figsize=(max(6, len(rows) * 0.06), 3.5))
    for gi, group in enumerate(groups):
        idx = [i for i, r in enumerate(rows) if r['group'] == group]
        ax.bar(idx, [rows[i]['density'] for i in idx], color=colors[gi],
               label=group, width=1.0)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel('layer (2-D / 4-D weights, model order)')
    ax.set_ylabel('density (non-zero fraction)')
    ax.legend(fontsize=7, ncol=min(len(groups), 6), loc='lower right')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_kernels(weights, prefixes, path):
    fig, axes = plt.subplots(2, len(prefixes),
                             figsize=(3 * len(prefixes), 6), squeeze=False)
    for col, prefix in enumerate(prefixes):
        dense, nonzero = merged_kernel(weights, prefix)
        axes[0, col].imshow(dense.mean(0).numpy(), cmap='viridis')
        axes[0, col].set_title(f'{prefix}\nmean |w|', fontsize=7)
        axes[1, col].imshow(nonzero.mean(0).numpy(), cmap='gray',
                            vmin=0, vmax=1)
        axes[1, col].set_title('non-zero fraction over channels',
                               fontsize=7)
        for ax in axes[:, col]:
            ax.axis('off')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main():
    args = parse_args()
    weights, masks = load_state(args.checkpoint)
    out_dir = args.out_dir or osp.join(
        'work_dirs', 'sparsity',
        osp.splitext(osp.basename(args.checkpoint))[0])
    os.makedirs(out_dir, exist_ok=True)

    rows = layer_table(weights, masks)
    csv_path = osp.join(out_dir, 'density_layers.csv')
    with open(csv_path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0].keys()) + (
            [] if 'mask_density' in rows[0] else ['mask_density']))
        writer.writeheader()
        writer.writerows(rows)
    table = group_table(rows)
    md_path = osp.join(out_dir, 'density.md')
    with open(md_path, 'w') as f:
        f.write(table + '\n')
    print(table)
    png_path = osp.join(out_dir, 'density.png')
    plot_density(rows, png_path)
    written = [csv_path, md_path, png_path]

    prefixes = list(OrderedDict.fromkeys(
        m.group(1) for m in map(BRANCH.match, weights) if m))
    if prefixes:
        step = max(len(prefixes) // args.num_kernels, 1)
        chosen = prefixes[::step][:args.num_kernels]
        kernel_path = osp.join(out_dir, 'kernels.png')
        plot_kernels(weights, chosen, kernel_path)
        written.append(kernel_path)
    print('written: ' + ', '.join(written))


if __name__ == '__main__':
    main()
