# Demo: Faster R-CNN + SLaK-T trained briefly on CPU on a small real
# VOC2007-format sample (tools/prepare_sample_data.py --task det). Inherits
# configs/faster_rcnn_slak_t_voc2007.py and changes only the schedule (16
# iterations), the image scale (short side 320) and the data root. The
# backbone starts from random weights (no ImageNet checkpoint offline), so
# expect a box mAP near 0: the demo shows the pipeline, not accuracy.
_base_ = ['../faster_rcnn_slak_t_voc2007.py']

data_root = 'data/sample/voc/VOCdevkit/'
img_scale = (512, 320)
max_epochs = 4

model = dict(backbone=dict(init_cfg=None))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
# the 4 trainval images twice per epoch: 4 iterations of 2 images per epoch
train_dataloader = dict(
    num_workers=2,
    dataset=dict(
        times=2, dataset=dict(data_root=data_root, pipeline=train_pipeline)))
val_dataloader = dict(
    num_workers=2, dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=4),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[3],
        gamma=0.1)
]
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(interval=max_epochs),
    # paint every test image when --show-dir is given (the sample is small)
    visualization=dict(interval=1))
