# Cascade Mask R-CNN + FPN with SLaK-T on COCO 2017, 12 epochs: the
# published SLaK detection recipe (VITA-Group/SLaK detection/configs,
# mmdet 2.x), in mmdet 3.x form:
# - backbone: SLaK-T, kernels 51/49/47/13 + 5, width factor 1.3, SyncBN in
#   the large-kernel branches, all four stages into the FPN ([124, 249, 499,
#   998]), drop path 0.4, layer scale 1.0; ImageNet-1k checkpoint
#   (mmpretrain format, `backbone.` keys) at `checkpoint_file`, output norms
#   norm0..3 starting at 1 / 0 (pretrained_out_norms=False);
#   `--cfg-options model.backbone.init_cfg=None` trains from scratch.
#   Fine-tuning keeps the pretrained sparse pattern fixed (StaticSparseHook;
#   off with `--cfg-options custom_hooks.0.enabled=False`).
# - heads: three 4conv1fc box heads (SyncBN) regressing decoded boxes with
#   GIoU loss (weight 10), see _base_/models/cascade_mask_rcnn_slak_fpn.py.
# - data: multi-scale training, short side 480..800 (step 32, long side <=
#   1333), or with probability 1/2 resize to 400/500/600 -> random crop
#   384..600 -> resize to 480..800 (the DETR / ConvNeXt "ms-crop"
#   augmentation); random flip; test at 1333x800.
# - optimizer: AdamW lr 2e-4, betas (0.9, 0.999), wd 0.05, layer-wise lr
#   decay 0.7 over 6 layer ids; 500 warm-up iterations (linear from 0.001),
#   lr x0.1 after epochs 8 and 11; 16 images per iteration (8 GPUs x 2).
# - fp32 as the official configs (`tools/train.py --amp` trains in mixed
#   precision instead, as mmdet's ConvNeXt config does).
# The published 12-epoch result, 48.4 box AP / 41.8 mask AP, fine-tuned the
# 120-epoch ImageNet checkpoint (pass it as
# `--cfg-options model.backbone.init_cfg.checkpoint=...`); the 36-epoch
# recipe is configs/cascade_mask_rcnn_slak_t_coco_3x.py.
_base_ = [
    './_base_/models/cascade_mask_rcnn_slak_fpn.py',
    './_base_/datasets/coco_instance.py', './_base_/runtimes/mmdet.py'
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
    neck=dict(in_channels=[124, 249, 499, 998]))

# (short side, long side limit) of the multi-scale training
ms_scales = [(480, 1333), (512, 1333), (544, 1333), (576, 1333), (608, 1333),
             (640, 1333), (672, 1333), (704, 1333), (736, 1333), (768, 1333),
             (800, 1333)]
crop_scales = [(400, 1333), (500, 1333), (600, 1333)]
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[
            [dict(type='RandomChoiceResize', scales=ms_scales,
                  keep_ratio=True)],
            [
                dict(
                    type='RandomChoiceResize',
                    scales=crop_scales,
                    keep_ratio=True),
                dict(
                    type='RandomCrop',
                    crop_type='absolute_range',
                    crop_size=(384, 600),
                    allow_negative_crop=True),
                dict(
                    type='RandomChoiceResize',
                    scales=ms_scales,
                    keep_ratio=True)
            ]
        ]),
    dict(type='PackDetInputs')
]
# 8 GPUs x 2 images = 16 images per iteration
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))

max_epochs = 12
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
        milestones=[8, 11],
        gamma=0.1)
]

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=0.0002, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='slak_mm.LearningRateDecayOptimizerConstructor',
    paramwise_cfg=dict(decay_rate=0.7, decay_type='layer_wise', num_layers=6))

custom_hooks = [dict(type='slak_mm.StaticSparseHook', prefix='backbone.')]

# --auto-scale-lr rescales the lr for another total batch size
auto_scale_lr = dict(enable=False, base_batch_size=16)
