"""Detect objects in one image with a slak_mm detection config and paint
the result (boxes, and masks for instance-segmentation models) as a PNG.

Uses mmdet's inference API (``init_detector`` / ``inference_detector``) and
its ``DetLocalVisualizer``. Examples::

    python tools/det_image_demo.py IMG configs/faster_rcnn_slak_t_voc2007.py \\
        CKPT --out-file boxes.png
    python tools/det_image_demo.py IMG \\
        configs/cascade_mask_rcnn_slak_t_coco_3x.py CKPT \\
        --out-file masks.png --score-thr 0.5

Importing slak_mm (done by the config's ``custom_imports`` and here)
registers the SLaK modules and lets torch's safe loader read mmengine
checkpoints.
"""
import argparse
import copy
import os.path as osp

import mmcv
from mmdet.apis import inference_detector, init_detector
from mmdet.registry import VISUALIZERS
from mmengine.config import DictAction

import slak_mm  # noqa: F401  (registry, safe checkpoint loading)


def parse_args(argv=None):
    """Parse the command line.

    Args:
        argv (list[str], optional): Arguments; ``sys.argv[1:]`` when None.

    Returns:
        argparse.Namespace: The arguments.
    """
    parser = argparse.ArgumentParser(
        description='Detect objects in one image and save a painted PNG.')
    parser.add_argument('img', help='image file')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out-file', default='result.png', help='painted output image')
    parser.add_argument(
        '--score-thr',
        type=float,
        default=0.3,
        help='paint detections with a score above this')
    parser.add_argument(
        '--device', default='cpu', help='e.g. cpu or cuda:0')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, "key=value" pairs')
    return parser.parse_args(argv)


def main(argv=None):
    """Run the detector on one image and save the painted result.

    Args:
        argv (list[str], optional): Command-line arguments.

    Returns:
        mmdet.structures.DetDataSample: The prediction.
    """
    args = parse_args(argv)
    model = init_detector(
        args.config,
        args.checkpoint,
        device=args.device,
        cfg_options=args.cfg_options)
    result = inference_detector(model, args.img)

    # paint to --out-file only (no LocalVisBackend: it needs a save_dir)
    vis_cfg = copy.deepcopy(model.cfg.visualizer)
    vis_cfg.pop('vis_backends', None)
    visualizer = VISUALIZERS.build(vis_cfg)
    visualizer.dataset_meta = model.dataset_meta
    image = mmcv.imread(args.img, channel_order='rgb')
    visualizer.add_datasample(
        osp.basename(args.img),
        image,
        data_sample=result,
        draw_gt=False,
        show=False,
        out_file=args.out_file,
        pred_score_thr=args.score_thr)

    pred = result.pred_instances
    keep = pred.scores > args.score_thr
    classes = model.dataset_meta.get('classes', ())
    best = f', best score {float(pred.scores.max()):.3f}' if len(pred) \
        else ''
    print(f'{int(keep.sum())} of {len(pred)} detections above score '
          f'{args.score_thr}{best}' +
          (' (with masks)' if 'masks' in pred else ''))
    for label, score, box in zip(pred.labels[keep], pred.scores[keep],
                                 pred.bboxes[keep]):
        name = classes[int(label)] if int(label) < len(classes) else label
        coords = ', '.join(f'{v:.1f}' for v in box.tolist())
        print(f'  {name}: {float(score):.3f} [{coords}]')
    print(f'painted result saved to {args.out_file}')
    return result


if __name__ == '__main__':
    main()
