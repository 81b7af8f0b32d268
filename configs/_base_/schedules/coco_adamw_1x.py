# The 12-epoch ("1x") fine-tuning schedule of the published SLaK detection
# recipe (mmdet 3.x, epoch based): AdamW lr 2e-4, betas (0.9, 0.999),
# weight decay 0.05, SLaK-T's layer-wise lr decay 0.7 over 6 layer ids;
# 500 linear warm-up iterations (from 0.001), lr x0.1 after epochs 8 and
# 11; fp32 as the official configs (`tools/train.py --amp` trains in mixed
# precision instead). The lr is for 16 images per iteration;
# `tools/train.py --auto-scale-lr` rescales it for another total batch.
max_epochs = 12
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[8, 11],
        gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=0.0002, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='slak_mm.LearningRateDecayOptimizerConstructor',
    paramwise_cfg=dict(decay_rate=0.7, decay_type='layer_wise', num_layers=6))
auto_scale_lr = dict(enable=False, base_batch_size=16)
