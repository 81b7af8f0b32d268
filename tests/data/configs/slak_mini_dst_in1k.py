# The scaled-down SLaK classifier (slak_mini_in1k.py) trained with the
# published dynamic sparse training and the mask-aware model EMA, for a
# short real run on ImageNet images: SNIP init at 40% sparsity on the first
# shuffled batch, a mask update every 5 optimizer steps (random regrowth
# keeping values), EMA obeying the masks. 2 epochs = 20 iterations, so the
# updates fall at steps 5, 10 and 15. Data roots are given with
# --cfg-options.
_base_ = ['./slak_mini_in1k.py']

max_epochs = 2
custom_hooks = [
    dict(
        type='slak_mm.DynamicSparseHook',
        sparsity=0.4,
        init='snip',
        update_interval=5,
        prune_rate=0.5,
        growth='random'),
    dict(
        type='EMAHook',
        ema_type='slak_mm.MaskedExponentialMovingAverage',
        momentum=0.05,
        update_buffers=True,
        priority='ABOVE_NORMAL')
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(checkpoint=dict(interval=max_epochs))
