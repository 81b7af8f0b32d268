# Cascade Mask R-CNN + FPN with SLaK-T on COCO 2017, 36 epochs (lr x0.1
# after epochs 27 and 33, _base_/schedules/coco_adamw_3x.py); otherwise as
# configs/cascade_mask_rcnn_slak_t_coco_1x.py.
# This is the published SLaK-T result: 51.3 box AP / 44.3 mask AP
# (300-epoch ImageNet-1k checkpoint).
_base_ = [
    './_base_/models/cascade_mask_rcnn_slak_fpn.py',
    './_base_/datasets/coco_instance.py', './_base_/runtimes/mmdet.py',
    './_base_/schedules/coco_adamw_3x.py'
]
