# Cascade Mask R-CNN + FPN with SLaK-B (depths [3, 3, 27, 3], channels
# [166, 332, 665, 1331] after the 1.3 width factor) on COCO 2017, 36 epochs.
# SLaK has no published S/B detection recipe: as for SLaK-T, with the
# values of ConvNeXt's official B (ImageNet-1k) config
# (facebookresearch/ConvNeXt object_detection): drop path 0.7, layer-wise lr
# decay 0.8 over 12 layer ids.
_base_ = ['./cascade_mask_rcnn_slak_t_coco_3x.py']
checkpoint_file = 'checkpoints/slak_base_in1k_300e.pth'
model = dict(
    backbone=dict(
        arch='base',
        drop_path_rate=0.7,
        init_cfg=dict(checkpoint=checkpoint_file)),
    neck=dict(in_channels=[166, 332, 665, 1331]))
optim_wrapper = dict(
    paramwise_cfg=dict(decay_rate=0.8, decay_type='layer_wise', num_layers=12))
