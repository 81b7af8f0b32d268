# ImageNet-1k at 224x224 with the ConvNeXt / SLaK training augmentation
# (timm's create_transform as called by the official main.py):
# RandomResizedCrop 224 (bicubic), horizontal flip, RandAugment
# rand-m9-mstd0.5-inc1, random erasing 0.25 (per-pixel random values);
# test: resize the short edge to 256 = 224 / 0.875 (crop_pct 0.875),
# centre crop 224. Mixup / CutMix are batch augmentations of the model
# (train_cfg.augments, see ../models/slak_cls.py).
#
# Layout (mmpretrain ImageNet): <data_root>/{train,val}/... images and
# <data_root>/meta/{train,val}.txt with "<relative path> <label>" lines.
dataset_type = 'ImageNet'
data_root = 'data/imagenet'
data_preprocessor = dict(
    num_classes=1000,
    # RGB mean / std of ImageNet (timm's IMAGENET_DEFAULT_MEAN / STD)
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    # images are loaded as BGR
    to_rgb=True,
)
bgr_mean = data_preprocessor['mean'][::-1]
bgr_std = data_preprocessor['std'][::-1]

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='RandomResizedCrop',
        scale=224,
        backend='pillow',
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    # rand-m9-mstd0.5-inc1: 2 ops per image, magnitude 9 of 10 with
    # std 0.5, the 'increasing' op set
    dict(
        type='RandAugment',
        policies='timm_increasing',
        num_policies=2,
        total_level=10,
        magnitude_level=9,
        magnitude_std=0.5,
        hparams=dict(
            pad_val=[round(x) for x in bgr_mean], interpolation='bicubic')),
    # timm RandomErasing(0.25, mode='pixel', max_count=1)
    dict(
        type='RandomErasing',
        erase_prob=0.25,
        mode='rand',
        min_area_ratio=0.02,
        max_area_ratio=1 / 3,
        fill_color=bgr_mean,
        fill_std=bgr_std),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='ResizeEdge',
        scale=256,
        edge='short',
        backend='pillow',
        interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=128,
    num_workers=8,
    persistent_workers=True,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
)
val_dataloader = dict(
    batch_size=128,
    num_workers=8,
    persistent_workers=True,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='val',
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_dataloader = val_dataloader
test_evaluator = val_evaluator
