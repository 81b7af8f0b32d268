# Cascade Mask R-CNN + FPN with SLaK-T on COCO 2017, 36 epochs (lr x0.1
# after epochs 27 and 33); otherwise as
# configs/cascade_mask_rcnn_slak_t_coco_1x.py.
# This is the published SLaK-T result: 51.3 box AP / 44.3 mask AP
# (300-epoch ImageNet-1k checkpoint).
_base_ = ['./cascade_mask_rcnn_slak_t_coco_1x.py']

max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[27, 33],
        gamma=0.1)
]
