# A scaled-down Faster R-CNN + SLaK for fast end-to-end tests of the tools
# on real VOC-format data: the demo config (itself inheriting
# configs/faster_rcnn_slak_t_voc2007.py) with a 6-block SLaK (real block
# structure, kernels 13/11/9/7 + 3), narrow FPN / heads and images with a
# short side of 256. Data roots are given with --cfg-options.
_base_ = ['../../../configs/demo/faster_rcnn_slak_t_voc2007_sample.py']

img_scale = (384, 256)
max_epochs = 2
model = dict(
    backbone=dict(
        arch=dict(
            _delete_=True, depths=[1, 1, 3, 1], channels=[16, 32, 64, 128]),
        kernel_size=[13, 11, 9, 7, 3],
        drop_path_rate=0.1),
    neck=dict(in_channels=[20, 41, 83, 166], out_channels=32),
    rpn_head=dict(in_channels=32, feat_channels=32),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=32),
        bbox_head=dict(in_channels=32, fc_out_channels=64)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=500, max_per_img=200),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=100)))

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
# voc2007_mini: 10 trainval images -> 5 iterations per epoch
train_dataloader = dict(
    dataset=dict(times=1, dataset=dict(pipeline=train_pipeline)))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(lr=1e-3))
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=3)
]
default_hooks = dict(checkpoint=dict(interval=max_epochs))
randomness = dict(seed=0)
