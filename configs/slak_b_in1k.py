# SLaK-B on ImageNet-1k: the SLaK-T recipe (./slak_t_in1k.py) with the
# base backbone (depths [3, 3, 27, 3], channels [166, 332, 665, 1331])
# and drop path 0.5. Published top-1: 84.0.
#
# Batch: 4096 = 8 GPUs x 32 images x accumulative_counts 16 (the
# official run: 16 GPUs x 32 x --update_freq 8); the EMA is updated once
# per optimizer step (interval 16).
_base_ = ['./slak_t_in1k.py']
model = dict(
    backbone=dict(arch='base', drop_path_rate=0.5),
    head=dict(in_channels=1331))

train_dataloader = dict(batch_size=32)
val_dataloader = dict(batch_size=32)
test_dataloader = val_dataloader
optim_wrapper = dict(accumulative_counts=16)
# dynamic sparsity of SLaK-S/B: mask update every 100 steps, prune rate
# 0.3; one EMA update per optimizer step
custom_hooks = [
    dict(_base_.custom_hooks[0], update_interval=100, prune_rate=0.3),
    dict(_base_.custom_hooks[1], interval=16)
]
