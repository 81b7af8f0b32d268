# Demo: Cascade Mask R-CNN + SLaK-T trained briefly on CPU on a small real
# COCO-format instance sample (tools/prepare_sample_data.py --task det).
# Inherits configs/cascade_mask_rcnn_slak_t_coco_1x.py and changes only the
# schedule (16 iterations), the image scales (the published multi-scale +
# crop augmentation scaled by 0.4: short side 192..320) and the data root.
# Training is in fp32 as the recipe; in a single process mmengine's Runner
# reverts the recipe's SyncBN to BN. The backbone starts from random
# weights (no ImageNet checkpoint offline), so expect AP near 0: the demo
# shows the pipeline.
_base_ = ['../cascade_mask_rcnn_slak_t_coco_1x.py']

data_root = 'data/sample/coco/'
max_epochs = 8

# After 16 iterations from random weights the detector scores every box
# below the recipe's threshold 0.05, and CocoMetric reports nothing for an
# empty result: keep the 100 best boxes per image instead.
model = dict(
    backbone=dict(init_cfg=None), test_cfg=dict(rcnn=dict(score_thr=0.0)))

# the recipe's scales x 0.4
ms_scales = [(round(0.4 * s), 533) for s in range(480, 801, 32)]
crop_scales = [(160, 533), (200, 533), (240, 533)]
test_scale = (533, 320)
train_pipeline = [
    dict(type='LoadImageFromFile'),
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
                    crop_size=(154, 240),
                    allow_negative_crop=True),
                dict(
                    type='RandomChoiceResize',
                    scales=ms_scales,
                    keep_ratio=True)
            ]
        ]),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=test_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
# 4 training images: 2 iterations of 2 images per epoch
train_dataloader = dict(
    num_workers=2,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=2, dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=4),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[6],
        gamma=0.1)
]
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(interval=max_epochs),
    # paint every test image when --show-dir is given (the sample is small)
    visualization=dict(interval=1))
