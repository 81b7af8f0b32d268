# Kernel-size ablation of the SLaK paper (SLaK-T, 120 epochs): the SLaK-T
# recipe (../slak_t_in1k.py) shortened to 120 epochs (20 warm-up + cosine
# to epoch 120), kernels 51/49/47/13 + 5. Published top-1: 81.6.
_base_ = ['../slak_t_in1k.py']
max_epochs = 120
model = dict(backbone=dict(kernel_size=[51, 49, 47, 13, 5]))
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
        end=max_epochs,
        convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
