"""Detect objects in one image with mmdet's ``DetInferencer`` and save the
painted result (boxes; masks for Cascade Mask R-CNN), e.g.::

    python tools/det_image_demo.py IMG configs/faster_rcnn_slak_t_voc2007.py \\
        CKPT --out-file boxes.png --score-thr 0.5 [--out-dir preds_dir]
"""
import argparse

import mmcv
from mmdet.apis import DetInferencer
from mmengine.config import Config, DictAction

from slak_mm.utils import checkpoint_safe_globals


def main(argv=None):
    """Run the command line ``argv`` (default ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(description='Paint detections of IMG')
    for name in ('img', 'config', 'checkpoint'):
        parser.add_argument(name)
    parser.add_argument('--out-file', default='result.png')
    parser.add_argument('--out-dir', default='', help='for preds/*.json')
    parser.add_argument('--score-thr', type=float, default=0.3)
    parser.add_argument('--device', default='cpu', help='cpu, cuda:0, ...')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, default={})
    args = parser.parse_args(argv)

    cfg = Config.fromfile(args.config)  # imports slak_mm (custom_imports)
    cfg.merge_from_dict(args.cfg_options)
    with checkpoint_safe_globals():  # mmengine checkpoint objects
        inferencer = DetInferencer(cfg, args.checkpoint, args.device)
    result = inferencer(
        args.img,
        return_vis=True,
        no_save_vis=True,
        pred_score_thr=args.score_thr,
        out_dir=args.out_dir,
        no_save_pred=not args.out_dir)
    mmcv.imwrite(mmcv.rgb2bgr(result['visualization'][0]), args.out_file)
    pred = result['predictions'][0]
    classes = inferencer.model.dataset_meta['classes']
    keep = [i for i, s in enumerate(pred['scores']) if s > args.score_thr]
    print(f'{len(keep)} of {len(pred["scores"])} detections above score '
          f'{args.score_thr}' + (' (with masks)' if 'masks' in pred else ''))
    for i in keep:
        box = ', '.join(f'{v:.1f}' for v in pred['bboxes'][i])
        label, score = classes[pred['labels'][i]], pred['scores'][i]
        print(f'  {label}: {score:.3f} [{box}]')
    print(f'painted result saved to {args.out_file}')


if __name__ == '__main__':
    main()
