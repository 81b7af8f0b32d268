# A scaled-down UperNet-SLaK for fast end-to-end tests of the tools: the
# demo config (itself inheriting configs/upernet_slak_t_ade20k.py) with a
# 6-block SLaK (real block structure, kernels 13/11/9/7 + 3), small heads
# and 128x128 crops. Data roots are given with --cfg-options.
_base_ = ['../../../configs/demo/upernet_slak_t_ade20k_sample.py']

crop_size = (128, 128)
test_scale = (512, 128)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        arch=dict(
            _delete_=True, depths=[1, 1, 3, 1], channels=[16, 32, 64, 128]),
        kernel_size=[13, 11, 9, 7, 3],
        drop_path_rate=0.1),
    # losses averaged over labelled pixels only, so that the logged loss
    # does not swing with the labelled fraction of each random crop
    decode_head=dict(
        in_channels=[20, 41, 83, 166],
        channels=32,
        loss_decode=dict(avg_non_ignore=True)),
    auxiliary_head=dict(
        in_channels=83, channels=16, loss_decode=dict(avg_non_ignore=True)),
    test_cfg=dict(crop_size=crop_size, stride=(85, 85)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(
        type='RandomResize',
        scale=test_scale,
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=test_scale, keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(lr=4e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=5)
]
train_cfg = dict(max_iters=60, val_interval=60)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=60))
randomness = dict(seed=0)
