# The 160k-iteration ADE20K fine-tuning schedule of the SLaK / SW recipes
# (mmseg's iteration-based loops and hooks): AdamW lr 1e-4, betas (0.9,
# 0.999), weight decay 0.05, SLaK-T's stage-wise lr decay 0.9 over 6 layer
# ids (decode / auxiliary heads and output norms at the full lr), 1500 linear
# warm-up iterations then poly decay to 0; fp32 as the official configs
# (`tools/train.py --amp` trains in mixed precision instead).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=0.0001, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='slak_mm.LearningRateDecayOptimizerConstructor',
    paramwise_cfg=dict(decay_rate=0.9, decay_type='stage_wise', num_layers=6))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(
        type='PolyLR',
        power=1.0,
        begin=1500,
        end=160000,
        eta_min=0.0,
        by_epoch=False)
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=160000, val_interval=16000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='slak_mm.AtomicCheckpointHook', by_epoch=False, interval=16000),
    # slak_mm: atomic checkpoints, a save and exit 75 on SIGTERM / SIGUSR1,
    # per-iteration seeds (a resumed run repeats the uninterrupted one)
    preemption=dict(type='slak_mm.PreemptionHook'),
    seed=dict(type='slak_mm.PerIterationSeedHook'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
