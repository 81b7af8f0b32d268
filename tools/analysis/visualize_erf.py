"""Effective receptive field (ERF) of a backbone over a folder of images.

For each image (resized to ``--size``, ImageNet-normalised) the gradient of
the central pixel of the last output map w.r.t. the input is aggregated
(RepLKNet / SLaK method). Writes, per model, the mean contribution matrix
(``erf_<name>.npy``), a heatmap (``erf_<name>.png``, log10(x + 1) scaled
to [0, 1]) and the high-contribution area ratios at thresholds
.2/.3/.5/.99 (``erf_ratios.json``); with ``--reference`` also mmpretrain's
ConvNeXt of the given size and a side-by-side figure
(``erf_comparison.png``).

Example::

    python tools/analysis/visualize_erf.py configs/upernet_slak_t_ade20k.py \\
        --images ../shared/data/imagenet_mini/val --num-images 20 \\
        --reference tiny --out-dir work_dirs/erf
"""
import argparse
import glob
import json
import os
import os.path as osp

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.runner import load_checkpoint  # noqa: E402
from mmengine.utils import track_iter_progress  # noqa: E402
from PIL import Image  # noqa: E402

from slak_mm.analysis import (erf_contribution, erf_heatmap,  # noqa: E402
                              high_contribution_area_ratios)
from slak_mm.apis import build_model  # noqa: E402
from slak_mm.utils import checkpoint_safe_globals  # noqa: E402

MEAN = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
STD = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
THRESHOLDS = (0.2, 0.3, 0.5, 0.99)


def parse_args():
    parser = argparse.ArgumentParser(description='Effective receptive field')
    parser.add_argument('config', help='config whose model.backbone is used')
    parser.add_argument('--checkpoint', help='optional checkpoint')
    parser.add_argument('--images', required=True, help='folder of images '
                        '(searched recursively)')
    parser.add_argument('--num-images', type=int, default=50)
    parser.add_argument('--size', type=int, default=1024,
                        help='square input size (RepLKNet/SLaK: 1024)')
    parser.add_argument(
        '--reference', choices=['tiny', 'small', 'base'],
        help='also analyse mmpretrain ConvNeXt of this size')
    parser.add_argument('--reference-checkpoint',
                        help='checkpoint of the reference (mmpretrain)')
    parser.add_argument(
        '--layer-scale', type=float, default=None,
        help='override layer_scale_init_value of both models; untrained '
        'nets with the classification default 1e-6 have blocks that '
        'contribute nothing, so their ERF is only the stem/downsample patch')
    parser.add_argument('--out-dir', default='work_dirs/erf')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def load_or_init(backbone, checkpoint=None):
    """Load a backbone's weights from ``checkpoint`` (keys with or without
    the ``backbone.`` prefix, mmengine checkpoint objects allowed), or
    initialise them when it is None."""
    if checkpoint:
        with checkpoint_safe_globals():
            load_checkpoint(
                backbone,
                checkpoint,
                map_location='cpu',
                revise_keys=[(r'^backbone\.', '')])
    else:
        backbone.init_weights()
    return backbone


def build_backbone(args):
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    overrides = dict(init_cfg=None, gap_before_final_norm=False)
    if args.layer_scale is not None:
        overrides['layer_scale_init_value'] = args.layer_scale
    return load_or_init(build_model(cfg, **overrides).backbone,
                        args.checkpoint)


def build_reference(arch, checkpoint=None, layer_scale=None):
    from mmpretrain.models import ConvNeXt
    kwargs = {} if layer_scale is None else dict(
        layer_scale_init_value=layer_scale)
    model = ConvNeXt(
        arch=arch, out_indices=(3, ), gap_before_final_norm=False, **kwargs)
    return load_or_init(model, checkpoint)


def load_images(folder, num, size):
    paths = sorted(
        p for p in glob.glob(osp.join(folder, '**', '*'), recursive=True)
        if p.lower().endswith(('.jpg', '.jpeg', '.png')))[:num]
    if not paths:
        raise FileNotFoundError(f'no .jpg/.jpeg/.png images under {folder}')
    for path in paths:
        img = Image.open(path).convert('RGB').resize((size, size),
                                                     Image.BICUBIC)
        x = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)
        yield ((x[None].float() - MEAN) / STD)


def aggregate(model, args):
    model.eval()
    total = None
    count = 0
    images = list(load_images(args.images, args.num_images, args.size))
    for image in track_iter_progress(images):
        contribution = erf_contribution(model, image)
        total = contribution if total is None else total + contribution
        count += 1
    return total / count


def main():
    args = parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    models = {osp.splitext(osp.basename(args.config))[0]:
              build_backbone(args)}
    if args.reference:
        models[f'convnext_{args.reference}'] = build_reference(
            args.reference, args.reference_checkpoint, args.layer_scale)

    results, heatmaps = {}, {}
    for name, model in models.items():
        print(f'ERF of {name} over up to {args.num_images} images at '
              f'{args.size}x{args.size}')
        matrix = aggregate(model, args)
        np.save(osp.join(args.out_dir, f'erf_{name}.npy'), matrix)
        heatmaps[name] = erf_heatmap(matrix)
        plt.imsave(
            osp.join(args.out_dir, f'erf_{name}.png'),
            heatmaps[name],
            cmap='RdYlGn')
        results[name] = {
            str(t): r
            for t, r in high_contribution_area_ratios(matrix,
                                                      THRESHOLDS).items()
        }
        print(f'{name}: high-contribution area ratio ' + ', '.join(
            f't={t}: {r:.4f}' for t, r in results[name].items()))

    with open(osp.join(args.out_dir, 'erf_ratios.json'), 'w') as f:
        json.dump(results, f, indent=2)
    if len(heatmaps) > 1:
        fig, axes = plt.subplots(
            1, len(heatmaps), figsize=(4 * len(heatmaps), 4.4))
        for ax, (name, heat) in zip(axes, heatmaps.items()):
            ax.imshow(heat, cmap='RdYlGn')
            r = results[name]
            ax.set_title(f'{name}\narea ratio t=.2: {r["0.2"]:.3f}, '
                         f't=.99: {r["0.99"]:.3f}', fontsize=9)
            ax.axis('off')
        fig.tight_layout()
        fig.savefig(osp.join(args.out_dir, 'erf_comparison.png'), dpi=100)
        plt.close(fig)
    print(f'written under {args.out_dir}: ' +
          ', '.join(sorted(os.listdir(args.out_dir))))


if __name__ == '__main__':
    main()
