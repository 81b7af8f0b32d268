# The demo UperNet-SLaK-T (real size) trained with SLaK's dynamic sparsity
# for a few iterations: SNIP init at 40% sparsity, a mask update every 2
# optimizer steps. Data roots are given with --cfg-options.
_base_ = ['../../../configs/demo/upernet_slak_t_ade20k_sample.py']

custom_hooks = [
    dict(
        type='slak_mm.DynamicSparseHook',
        sparsity=0.4,
        init='snip',
        update_interval=2,
        prune_rate=0.5,
        growth='random')
]
train_cfg = dict(max_iters=4, val_interval=4)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=4))
val_cfg = None
val_dataloader = None
val_evaluator = None
