# Cascade Mask R-CNN + FPN with SW-T (ShiftWise v2 tiny) on COCO 2017, 3x
# (36 epochs, lr x0.1 after epochs 27 and 33), the published recipe
# (official downstream/detection/configs/
# cascade_mask_rcnn_sw_tiny_mstrain_480-800_adamw_3x_coco_in1k.py):
# AdamW lr 1e-4 wd 0.05 with layer-wise lr decay 0.8 over 12 layer ids,
# the SW-T backbone (_base_/models/sw_t.py: kernels 51/49/47/13 + 3, ghost
# ratio 0.23, N_path 2, N_rep 4, SyncBN for every BN of a block, as the
# official SW_v2_unirep.py) with drop path 0.4 and layer scale 1.0, weight
# decay also on the GRN gamma / beta (as the official code), output norms
# norm0..3 starting at 1 / 0, fp32, 16 images per iteration; heads,
# multi-scale crop augmentation, GIoU losses and schedule shared with
# configs/cascade_mask_rcnn_slak_t_coco_3x.py through the _base_ files
# (identical in the official SW and SLaK configs).
_base_ = [
    './_base_/models/cascade_mask_rcnn_slak_fpn.py', './_base_/models/sw_t.py',
    './_base_/datasets/coco_instance.py', './_base_/runtimes/mmdet.py',
    './_base_/schedules/coco_adamw_3x.py'
]
checkpoint_file = 'checkpoints/sw_tiny_in1k_300e.pth'
model = dict(
    backbone=dict(
        _base_.sw_t_backbone, init_cfg=dict(checkpoint=checkpoint_file)),
    neck=dict(in_channels=[80, 160, 320, 640]))

optim_wrapper = dict(
    optimizer=dict(lr=1e-4),
    paramwise_cfg=dict(decay_rate=0.8, decay_type='layer_wise', num_layers=12))
