# Runtime settings of mmpretrain 1.x configs (after mmpretrain's
# configs/_base_/default_runtime.py).
default_scope = 'mmpretrain'
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='slak_mm.AtomicCheckpointHook', interval=1, max_keep_ckpts=3),
    # slak_mm: atomic checkpoints, a save and exit 75 on SIGTERM / SIGUSR1,
    # per-iteration seeds (a resumed run repeats the uninterrupted one)
    preemption=dict(type='slak_mm.PreemptionHook'),
    seed=dict(type='slak_mm.PerIterationSeedHook'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # painted predictions; tools/test.py --show / --show-dir enables it
    visualization=dict(type='VisualizationHook', enable=False),
)
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=None, deterministic=False)
