# Faster R-CNN + FPN with SW-T (ShiftWise v2 tiny) on PASCAL VOC2007.
#
# SW has no published VOC recipe: the data, schedule and optimizer are
# those of configs/faster_rcnn_slak_t_voc2007.py (mmdet's VOC "1x", shared
# through the _base_ files), with SW-T's published fine-tuning backbone
# settings (official COCO/ADE20K configs): the SW-T backbone
# (_base_/models/sw_t.py: kernels 51/49/47/13 + 3, ghost ratio 0.23, N_path
# 2, N_rep 4, SyncBN for every BN of a block), drop path 0.4, layer scale
# 1.0, output norms norm0..3 starting at 1 / 0, and the COCO layer-wise lr
# decay of SW-T (0.8 over 12 layer ids; GRN gamma / beta weight-decayed as
# officially); fp32.
_base_ = [
    './_base_/models/faster_rcnn_slak_fpn.py', './_base_/models/sw_t.py',
    './_base_/datasets/voc07.py', './_base_/runtimes/mmdet.py',
    './_base_/schedules/voc_adamw_4e.py'
]
checkpoint_file = 'checkpoints/sw_tiny_in1k_300e.pth'
model = dict(
    backbone=dict(
        _base_.sw_t_backbone, init_cfg=dict(checkpoint=checkpoint_file)),
    neck=dict(in_channels=[80, 160, 320, 640]))

optim_wrapper = dict(
    paramwise_cfg=dict(decay_rate=0.8, decay_type='layer_wise', num_layers=12))
