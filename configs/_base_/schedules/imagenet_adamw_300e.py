# The ConvNeXt / SLaK ImageNet-1k schedule (official main.py defaults):
# AdamW lr 4e-3 for a total batch of 4096, betas (0.9, 0.999), eps 1e-8,
# weight decay 0.05 except for 1-D parameters and biases (norms, layer
# scale gamma), no gradient clipping; 20 epochs of linear warm-up, then
# cosine decay to 1e-6 at epoch 300, both updated every iteration.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW',
        lr=4e-3,
        weight_decay=0.05,
        eps=1e-8,
        betas=(0.9, 0.999)),
    paramwise_cfg=dict(
        norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0),
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
