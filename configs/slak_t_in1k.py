# SLaK-T on ImageNet-1k, the published 300-epoch recipe (SLaK, ICLR 2023;
# official main.py / README): kernels 51/49/47/13 + 5, width factor 1.3,
# drop path 0.1, layer scale 1e-6; AdamW lr 4e-3, weight decay 0.05,
# total batch 4096, 20 warm-up epochs + cosine to epoch 300;
# RandAugment rand-m9-mstd0.5-inc1, Mixup 0.8, CutMix 1.0, label
# smoothing 0.1, random erasing 0.25; model EMA 0.9999; 224 px train,
# 224 px test with crop ratio 0.875. Published top-1: 82.5.
#
# Batch: 4096 images per optimizer step = 8 GPUs x 128 images x
# optim_wrapper.accumulative_counts 4 (the official run: 4 GPUs x 128 x
# --update_freq 8). On N GPUs keep 4096 with accumulative_counts =
# 32 / N and EMAHook interval (custom_hooks.1.interval) =
# accumulative_counts, or scale the lr with `tools/train.py --auto-scale-lr`.
#
# Dynamic sparse training as published (SLaK-T: 40% sparsity over every
# conv / linear weight, SNIP init, prune rate 0.5 with cosine decay, random
# regrowth every 2000 optimizer steps): custom_hooks.0. Switch it off with
# `--cfg-options custom_hooks.0.enabled=False`.
_base_ = [
    './_base_/models/slak_cls.py', './_base_/datasets/imagenet_224.py',
    './_base_/schedules/imagenet_adamw_300e.py',
    './_base_/runtimes/mmpretrain.py'
]
# 8 GPUs x 128 images (the batch of _base_/datasets/imagenet_224.py) x 4
# accumulation steps = 4096
optim_wrapper = dict(accumulative_counts=4)

# Model EMA with decay 0.9999 per optimizer step (official
# --model_ema true --model_ema_decay 0.9999): `interval` equals
# accumulative_counts so that the average is updated once per optimizer
# step; the official EMA also averages the BN running statistics
# (update_buffers) and obeys the sparse masks (official
# ModelEma.update(model, mask): masked positions 0, regrown ones take the
# current weight), hence the mask-aware averaged model. Validation, test
# and the saved `state_dict` use the EMA weights.
custom_hooks = [
    dict(
        type='slak_mm.DynamicSparseHook',
        sparsity=0.4,
        init='snip',
        update_interval=2000,
        prune_rate=0.5,
        growth='random'),
    dict(
        type='EMAHook',
        ema_type='slak_mm.MaskedExponentialMovingAverage',
        momentum=1e-4,
        interval=4,
        update_buffers=True,
        priority='ABOVE_NORMAL')
]

# Layer-wise lr decay (not part of the published pre-training recipe;
# useful for fine-tuning) works through SLaK.get_layer_depth, e.g.
# optim_wrapper = dict(
#     constructor='LearningRateDecayOptimWrapperConstructor',
#     paramwise_cfg=dict(
#         layer_decay_rate=0.8, norm_decay_mult=0.0, bias_decay_mult=0.0,
#         flat_decay_mult=0.0))
