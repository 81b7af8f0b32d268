# Faster R-CNN + FPN with SLaK-T on PASCAL VOC2007 (mmdet 3.x).
#
# SLaK has no published VOC recipe: this is mmdet's
# faster-rcnn_r50_fpn_1x_voc0712 schedule with the SLaK-T backbone (all four
# stages into the FPN, channels [124, 249, 499, 998]) and SLaK's fine-tuning
# optimizer:
# - data: VOC2007 trainval, repeated 3 times per epoch, 4 epochs, lr x0.1
#   after epoch 3 (= mmdet's "1x" on VOC); 1000x600 images, random flip;
#   16 images per iteration (8 GPUs x 2); evaluation on VOC2007 test with
#   the 11-point box mAP. configs/faster_rcnn_slak_t_voc0712.py trains on
#   VOC2007 + VOC2012 trainval instead (mmdet's 07+12 recipe).
# - optimizer: AdamW, wd 0.05, with SLaK's layer-wise lr decay 0.7 over 6
#   layer ids (the values of the published SLaK-T COCO recipe); lr 1e-4 =
#   half the COCO lr 2e-4, as mmdet halves its COCO lr for VOC (SGD 0.02 ->
#   0.01); a 500-iteration linear warm-up as in the COCO schedules (mmdet's
#   VOC SGD recipe has none). fp32 as mmdet's VOC recipe (add --amp for
#   mixed precision).
# - backbone: SyncBN in the large-kernel branches, drop path 0.4, layer
#   scale 1.0, ImageNet-1k SLaK-T checkpoint in mmpretrain format
#   (`state_dict` with `backbone.` keys) at `checkpoint_file`, output norms
#   norm0..3 starting at 1 / 0 (pretrained_out_norms=False, as the official
#   SLaK detection / segmentation code); train from scratch with
#   `--cfg-options model.backbone.init_cfg=None`. Fine-tuning keeps the
#   pretrained sparse pattern fixed (StaticSparseHook; switch it off with
#   `--cfg-options custom_hooks.0.enabled=False`).
_base_ = [
    './_base_/models/faster_rcnn_slak_fpn.py', './_base_/datasets/voc07.py',
    './_base_/runtimes/mmdet.py'
]
checkpoint_file = 'checkpoints/slak_tiny_in1k_300e.pth'
model = dict(
    backbone=dict(
        _delete_=True,
        type='slak_mm.SLaK',
        arch='tiny',
        kernel_size=[51, 49, 47, 13, 5],
        width_factor=1.3,
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        out_indices=[0, 1, 2, 3],
        gap_before_final_norm=False,
        pretrained_out_norms=False,
        drop_path_rate=0.4,
        layer_scale_init_value=1.0,
        init_cfg=dict(
            type='Pretrained', checkpoint=checkpoint_file,
            prefix='backbone.')),
    neck=dict(in_channels=[124, 249, 499, 998]),
    roi_head=dict(bbox_head=dict(num_classes=20)))

# VOC2007 trainval x3 per epoch (see _base_/datasets/voc07.py): 4 epochs
max_epochs = 4
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[3],
        gamma=0.1)
]

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=0.0001, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='slak_mm.LearningRateDecayOptimizerConstructor',
    paramwise_cfg=dict(decay_rate=0.7, decay_type='layer_wise', num_layers=6))

custom_hooks = [dict(type='slak_mm.StaticSparseHook', prefix='backbone.')]

# 8 GPUs x 2 images = 16 images per iteration (--auto-scale-lr rescales the
# lr for another total batch size)
train_dataloader = dict(batch_size=2)
auto_scale_lr = dict(enable=False, base_batch_size=16)
