"""Parameters and FLOPs of any slak_mm config, dense and non-zero only.

FLOPs are multiply-adds (mmengine's FlopAnalyzer, fvcore convention). The
non-zero columns skip zero weights, the convention of the SLaK paper's
tables (e.g. SLaK-T: 30M parameters at 40% sparsity). Zeros come from
``--checkpoint`` (a sparse trained model) or from ``--sparsity`` (masks
drawn like DynamicSparseHook's ``init='erk'|'uniform'``).

Examples::

    python tools/analysis/get_flops.py configs/upernet_slak_t_ade20k.py \\
        --shape 512 512
    python tools/analysis/get_flops.py configs/slak_t_in1k.py --sparsity 0.4
"""
import argparse
import json
import os
import os.path as osp

import torch
import torch.nn as nn
from mmengine.config import Config, DictAction

from slak_mm.analysis import complexity
from slak_mm.apis import build_model
from slak_mm.sparse import (SparseMasking, erk_densities,
                            select_sparse_weights, uniform_densities)
from slak_mm.utils import get_config_scope


class TensorForward(nn.Module):
    """``forward(x)`` of a whole model in ``mode='tensor'`` (or of its
    backbone), traceable by the FLOP analyzer."""

    def __init__(self, model: nn.Module, scope: str, part: str,
                 shape) -> None:
        super().__init__()
        self.model = model.backbone if part == 'backbone' else model
        self.part = part
        self.data_samples = None
        if scope == 'mmdet' and part == 'model':
            from mmdet.structures import DetDataSample
            sample = DetDataSample()
            sample.set_metainfo(
                dict(
                    img_shape=tuple(shape),
                    ori_shape=tuple(shape),
                    pad_shape=tuple(shape),
                    batch_input_shape=tuple(shape),
                    scale_factor=(1., 1.)))
            self.data_samples = [sample]

    def forward(self, x):
        if self.part == 'backbone':
            return self.model(x)
        if self.data_samples is not None:
            return self.model(x, self.data_samples, mode='tensor')
        return self.model(x, mode='tensor')


def parse_args():
    parser = argparse.ArgumentParser(
        description='Parameters and FLOPs, dense and non-zero')
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--shape', type=int, nargs=2, default=None,
        help='input height width (default: 224 224 for classification, '
        '512 512 for segmentation, 800 1333 for detection)')
    parser.add_argument('--checkpoint', help='count the zeros of this file')
    parser.add_argument(
        '--sparsity', type=float, default=None,
        help='simulate a sparse model: mask every conv/linear weight at '
        'this sparsity')
    parser.add_argument(
        '--sparse-init', choices=['erk', 'uniform'], default='erk',
        help='layer-wise density of --sparsity')
    parser.add_argument(
        '--part', choices=['model', 'backbone'], default='model',
        help='analyse the whole model or only its backbone')
    parser.add_argument('--work-dir', help='where to write the results')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings')
    return parser.parse_args()


DEFAULT_SHAPES = dict(mmpretrain=(224, 224), mmseg=(512, 512),
                      mmdet=(800, 1333))


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    scope = get_config_scope(cfg)
    model = build_model(cfg, args.checkpoint, init_cfg=None).eval()
    if args.sparsity is not None:
        if not 0. <= args.sparsity < 1.:
            raise ValueError(f'--sparsity must be in [0, 1), got '
                             f'{args.sparsity}.')
        masking = SparseMasking(model, select_sparse_weights(model, 'all'))
        shapes = {n: p.shape for n, p in masking.params.items()}
        fn = erk_densities if args.sparse_init == 'erk' else \
            uniform_densities
        masking.init_random(fn(shapes, 1 - args.sparsity),
                            torch.Generator().manual_seed(0))
        masking.apply()

    shape = tuple(args.shape or DEFAULT_SHAPES[scope])
    wrapper = TensorForward(model, scope, args.part, shape)
    with torch.no_grad():
        result = complexity(wrapper, (torch.randn(1, 3, *shape), ))
    result.update(
        config=args.config, part=args.part, input_shape=[3, *shape],
        checkpoint=args.checkpoint, sparsity=args.sparsity)

    rows = [('parameters', result['params'], result['params_nonzero']),
            ('FLOPs (multiply-adds)', result['flops'],
             result['flops_nonzero'])]
    table = ['| | dense | non-zero |', '| --- | --- | --- |']
    for name, dense, nonzero in rows:
        unit, div = ('G', 1e9) if 'FLOPs' in name else ('M', 1e6)
        table.append(f'| {name} | {dense / div:.2f}{unit} | '
                     f'{nonzero / div:.2f}{unit} |')
    table = '\n'.join(table)
    print(f'{args.config} ({args.part}, input 3x{shape[0]}x{shape[1]})')
    print(table)

    name = osp.splitext(osp.basename(args.config))[0]
    work_dir = args.work_dir or osp.join('work_dirs', 'analysis', name)
    os.makedirs(work_dir, exist_ok=True)
    json_path = osp.join(work_dir, 'complexity.json')
    md_path = osp.join(work_dir, 'complexity.md')
    with open(json_path, 'w') as f:
        json.dump(result, f, indent=2)
    with open(md_path, 'w') as f:
        f.write(table + '\n')
    print(f'written: {json_path}, {md_path}')


if __name__ == '__main__':
    main()
