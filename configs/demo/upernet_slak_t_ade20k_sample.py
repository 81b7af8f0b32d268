# Demo: UperNet + SLaK-T trained briefly on CPU on a small real sample.
# Inherits the published recipe and changes only the schedule, the crop /
# test scale and the data root. Training is in fp32 as the recipe; in a
# single process mmengine's Runner reverts the recipe's SyncBN to BN. The
# data root is the output of tools/prepare_sample_data.py;
# tools/run_demo.sh can point it elsewhere.
# The backbone starts from random weights (no ImageNet checkpoint offline).
_base_ = ['../upernet_slak_t_ade20k.py']

data_root = 'data/sample/ade20k/ADEChallengeData2016'
# 128 px crops: on 2 CPU cores an iteration then takes ~2 s (the UperNet
# head at 1/4 resolution dominates; 256 px crops take ~8 s)
crop_size = (128, 128)
test_scale = (512, 128)
max_iters = 200

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(init_cfg=None),
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
train_dataloader = dict(
    num_workers=2, dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=2, dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=20),
    dict(
        type='PolyLR',
        power=1.0,
        begin=20,
        end=max_iters,
        eta_min=0.0,
        by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_iters),
    # paint every test image when --show-dir is given (the sample is small)
    visualization=dict(interval=1))
