# Faster R-CNN + FPN with SW-T (ShiftWise v2 tiny) on PASCAL VOC2007.
#
# SW has no published VOC recipe: the schedule and optimizer are those of
# configs/faster_rcnn_slak_t_voc2007.py (mmdet's VOC "1x"), with SW-T's
# published fine-tuning backbone settings (official COCO/ADE20K configs):
# kernels 51/49/47/13 + 3, ghost ratio 0.23, N_path 2, N_rep 4, SyncBN for
# every BN of a block, drop path 0.4, layer scale 1.0, output norms norm0..3
# starting at 1 / 0, and the COCO layer-wise lr decay of SW-T (0.8 over 12
# layer ids; GRN gamma / beta weight-decayed as officially); fp32.
_base_ = ['./faster_rcnn_slak_t_voc2007.py']
checkpoint_file = 'checkpoints/sw_tiny_in1k_300e.pth'
model = dict(
    backbone=dict(
        _delete_=True,
        type='slak_mm.ShiftWiseV2',
        arch='tiny',
        kernel_size=[51, 49, 47, 13, 3],
        width_factor=1.0,
        sw_cfg=dict(ghost_ratio=0.23, num_paths=2, num_reps=4),
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        out_indices=[0, 1, 2, 3],
        gap_before_final_norm=False,
        pretrained_out_norms=False,
        drop_path_rate=0.4,
        layer_scale_init_value=1.0,
        init_cfg=dict(
            type='Pretrained', checkpoint=checkpoint_file,
            prefix='backbone.')),
    neck=dict(in_channels=[80, 160, 320, 640]))

optim_wrapper = dict(
    paramwise_cfg=dict(
        _delete_=True, decay_rate=0.8, decay_type='layer_wise',
        num_layers=12))
