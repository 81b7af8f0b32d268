# SLaK-S on ImageNet-1k: the SLaK-T recipe (./slak_t_in1k.py) with the
# small backbone (depths [3, 3, 27, 3]) and drop path 0.4.
# Published top-1: 83.8.
#
# Batch: 4096 = 8 GPUs x 64 images x accumulative_counts 8 (the official
# run: 8 GPUs x 64 x --update_freq 8); the EMA is updated once per
# optimizer step (interval 8).
_base_ = ['./slak_t_in1k.py']
model = dict(backbone=dict(arch='small', drop_path_rate=0.4))

train_dataloader = dict(batch_size=64)
val_dataloader = dict(batch_size=64)
test_dataloader = val_dataloader
optim_wrapper = dict(accumulative_counts=8)
# dynamic sparsity of SLaK-S/B: mask update every 100 steps, prune rate
# 0.3; one EMA update per optimizer step
custom_hooks = [
    dict(_base_.custom_hooks[0], update_interval=100, prune_rate=0.3),
    dict(_base_.custom_hooks[1], interval=8)
]
