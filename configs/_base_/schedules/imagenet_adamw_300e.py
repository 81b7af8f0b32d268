# The ConvNeXt / SLaK ImageNet-1k schedule (official main.py defaults):
# AdamW lr 4e-3 for a total batch of 4096, betas (0.9, 0.999), eps 1e-8,
# weight decay 0.05 except for 1-D parameters and biases (norms, layer
# scale gamma), no gradient clipping; 20 epochs of linear warm-up, then
# cosine decay to 1e-6 at epoch 300, both updated every iteration.
# GRN gamma / beta (ShiftWise v2 blocks; none in SLaK) are decayed: the
# official SW code stores them as (1, 1, 1, 4C), which its 1-D rule does not
# exempt (lidc54/shift-wiseConv optim_factory.py:80); ours are (4C,), so
# `custom_keys` matches them by name (`...grn.gamma` / `...grn.beta`).
# `--cfg-options optim_wrapper.paramwise_cfg.custom_keys.grn.decay_mult=0`
# exempts them like the other 1-D parameters.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW',
        lr=4e-3,
        weight_decay=0.05,
        eps=1e-8,
        betas=(0.9, 0.999)),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        flat_decay_mult=0.0,
        custom_keys={'grn': dict(decay_mult=1.0)}),
    clip_grad=None,
)
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-6,
        by_epoch=True,
        begin=0,
        end=20,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        eta_min=1e-6,
        by_epoch=True,
        begin=20,
        end=300,
        convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)
val_cfg = dict()
test_cfg = dict()
# `lr` above is for 4096 images per optimizer step. With
# `tools/train.py --auto-scale-lr` it is scaled linearly to the actual
# total batch (GPUs x batch_size x optim_wrapper.accumulative_counts).
auto_scale_lr = dict(base_batch_size=4096)
