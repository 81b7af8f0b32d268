# Runtime settings of mmdet 3.x configs (local copy of mmdet's
# configs/_base_/default_runtime.py; epoch-based logging and checkpoints).
default_scope = 'mmdet'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='slak_mm.AtomicCheckpointHook', interval=1),
    # slak_mm: atomic checkpoints, a save and exit 75 on SIGTERM / SIGUSR1,
    # per-iteration seeds (a resumed run repeats the uninterrupted one)
    preemption=dict(type='slak_mm.PreemptionHook'),
    seed=dict(type='slak_mm.PerIterationSeedHook'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='DetVisualizationHook'))

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='DetLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)

log_level = 'INFO'
load_from = None
resume = False
