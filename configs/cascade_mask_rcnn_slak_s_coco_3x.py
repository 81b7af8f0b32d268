# Cascade Mask R-CNN + FPN with SLaK-S (depths [3, 3, 27, 3], same channels
# as SLaK-T) on COCO 2017, 36 epochs. SLaK has no published S/B detection
# recipe: as for SLaK-T, with the values of ConvNeXt's official S config
# (facebookresearch/ConvNeXt object_detection, also mmdet's ConvNeXt-S
# config): drop path 0.6, layer-wise lr decay 0.7 over 12 layer ids.
_base_ = ['./cascade_mask_rcnn_slak_t_coco_3x.py']
checkpoint_file = 'checkpoints/slak_small_in1k_300e.pth'
model = dict(
    backbone=dict(
        arch='small',
        drop_path_rate=0.6,
        init_cfg=dict(checkpoint=checkpoint_file)))
optim_wrapper = dict(
    paramwise_cfg=dict(decay_rate=0.7, decay_type='layer_wise', num_layers=12))
