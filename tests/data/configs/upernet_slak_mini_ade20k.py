# A scaled-down UperNet-SLaK for fast end-to-end tests of the tools: the
# demo config (itself inheriting configs/upernet_slak_t_ade20k.py; 128 px
# crops) with a 6-block SLaK (real block structure, kernels 13/11/9/7 + 3)
# and small heads. Data roots are given with --cfg-options.
_base_ = ['../../../configs/demo/upernet_slak_t_ade20k_sample.py']

model = dict(
    backbone=dict(
        arch=dict(
            _delete_=True, depths=[1, 1, 3, 1], channels=[16, 32, 64, 128]),
        kernel_size=[13, 11, 9, 7, 3],
        drop_path_rate=0.1),
    # losses averaged over labelled pixels only, so that the logged loss
    # does not swing with the labelled fraction of each random crop
    decode_head=dict(
        in_channels=[20, 41, 83, 166],
        channels=32,
        loss_decode=dict(avg_non_ignore=True)),
    auxiliary_head=dict(
        in_channels=83, channels=16, loss_decode=dict(avg_non_ignore=True)))

optim_wrapper = dict(optimizer=dict(lr=4e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=5)
]
train_cfg = dict(max_iters=60, val_interval=60)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=60))
randomness = dict(seed=0)
