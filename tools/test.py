"""Test (evaluate) a checkpoint of any slak_mm config.

Examples::

    python tools/test.py configs/upernet_slak_t_ade20k.py ckpt.pth
    python tools/test.py CONFIG ckpt.pth --show-dir vis   # overlays as PNG
    tools/dist_test.sh CONFIG ckpt.pth 8

The checkpoint's keys are checked against the model as mmengine loads it
(:class:`slak_mm.utils.CheckpointKeysHook`): a file whose keys match none
of the model's (e.g. an unconverted official SLaK file, weights under
``model``) is an error, not a warning.

``--out``: mmseg: a directory of predicted label maps (PNG); mmdet: a
``.pkl`` of the raw results; mmpretrain: a ``.pkl`` of the predictions.
"""
import argparse

from mmengine.config import ConfigDict
from runner_cli import load_config, parse_args, run

from slak_mm.utils import CheckpointKeysHook, get_config_scope


def enable_visualization(cfg, args, scope):
    """Turn the toolbox's visualization hook on for --show / --show-dir."""
    hooks = cfg.default_hooks
    if 'visualization' not in hooks:
        raise RuntimeError(
            '--show / --show-dir need `default_hooks.visualization` '
            '(SegVisualizationHook, DetVisualizationHook or '
            'VisualizationHook) in the config.')
    hook = hooks['visualization']
    if scope == 'mmpretrain':
        hook['enable'] = True
    else:
        hook['draw'] = True
    if args.show:
        hook['show'] = True
        hook['wait_time'] = args.wait_time
    if args.show_dir:
        if scope == 'mmdet':
            hook['test_out_dir'] = args.show_dir
        elif scope == 'mmpretrain':
            hook['out_dir'] = args.show_dir
        else:
            cfg.visualizer['save_dir'] = args.show_dir


def add_output(cfg, args, scope):
    """Write predictions to --out the way the toolbox's test.py does."""
    if scope == 'mmseg':
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
        return
    if not args.out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out must be a .pkl file for {scope} configs, '
                         f'got {args.out!r}.')
    dumper = dict(
        type='DumpDetResults' if scope == 'mmdet' else 'DumpResults',
        out_file_path=args.out)
    evaluators = cfg.test_evaluator
    if isinstance(evaluators, (list, tuple)):
        cfg.test_evaluator = list(evaluators) + [dumper]
    else:
        cfg.test_evaluator = [evaluators, dumper]


def main():
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir', help='the dir to save the log and metrics')
    parser.add_argument(
        '--out',
        type=str,
        help='dump predictions: a directory (mmseg) or a .pkl file '
        '(mmdet, mmpretrain)')
    parser.add_argument(
        '--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='directory, relative to the work_dir\'s timestamped run dir, '
        'where painted predictions are saved as PNG')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='seconds per --show')
    parser.add_argument(
        '--tta', action='store_true', help='test time augmentation')
    args = parse_args(parser)
    cfg = load_config(args)
    scope = get_config_scope(cfg)
    cfg.load_from = args.checkpoint

    if args.show or args.show_dir:
        enable_visualization(cfg, args, scope)
    if args.out:
        add_output(cfg, args, scope)
    if args.tta:
        if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
            raise RuntimeError('--tta needs `tta_model` and `tta_pipeline` '
                               'in the config.')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = ConfigDict(cfg.tta_model)

    # mmengine loads with strict=False and only warns on mismatched keys:
    # fail on a file that matches nothing (or has official key names), and
    # log the missing / unexpected keys
    run(cfg, args.launcher, 'test', [CheckpointKeysHook(args.checkpoint)])


if __name__ == '__main__':
    main()
