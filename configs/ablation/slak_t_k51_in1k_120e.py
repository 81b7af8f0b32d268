# Kernel-size ablation of the SLaK paper (SLaK-T, 120 epochs): the SLaK-T
# recipe (../slak_t_in1k.py, kernels 51/49/47/13 + 5) shortened to 120
# epochs (20 warm-up + cosine to epoch 120). Published top-1: 81.6.
_base_ = ['../slak_t_in1k.py']
max_epochs = 120
param_scheduler = [
    _base_.param_scheduler[0],
    dict(_base_.param_scheduler[1], end=max_epochs)
]
train_cfg = dict(max_epochs=max_epochs)
