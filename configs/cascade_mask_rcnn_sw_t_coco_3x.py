# Cascade Mask R-CNN + FPN with SW-T (ShiftWise v2 tiny) on COCO 2017, 3x
# (36 epochs, lr x0.1 after epochs 27 and 33), the published recipe
# (official downstream/detection/configs/
# cascade_mask_rcnn_sw_tiny_mstrain_480-800_adamw_3x_coco_in1k.py):
# AdamW lr 1e-4 wd 0.05 with layer-wise lr decay 0.8 over 12 layer ids,
# drop path 0.4, layer scale 1.0, kernels 51/49/47/13 + 3, ghost ratio 0.23,
# N_path 2, N_rep 4, SyncBN for every BN of a block (official
# SW_v2_unirep.py), weight decay also on the GRN gamma / beta (as the
# official code), output norms norm0..3 starting at 1 / 0, fp32, 16 images
# per iteration; heads, multi-scale crop augmentation and GIoU losses as
# configs/cascade_mask_rcnn_slak_t_coco_3x.py (identical in the official SW
# and SLaK configs).
_base_ = ['./cascade_mask_rcnn_slak_t_coco_3x.py']
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
    optimizer=dict(lr=1e-4),
    paramwise_cfg=dict(
        _delete_=True, decay_rate=0.8, decay_type='layer_wise',
        num_layers=12))
