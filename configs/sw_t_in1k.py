# SW-T (ShiftWise v2 tiny) on ImageNet-1k, the published 300-epoch recipe
# (ShiftwiseConv, arXiv 2401.12736; official README training command):
# model ShiftWise_v2_tiny (depths [3, 3, 18, 3], channels [80, 160, 320,
# 640]), kernels 51/49/47/13 + 3, width factor 1.0, ghost ratio 0.23,
# N_path 2, N_rep 4, drop path 0.2, SyncBN for every BN of a block (the
# official SW_v2_unirep.py hard-codes it; reverted to BN when not
# distributed); AdamW lr 4e-3, total batch 4096 (8 GPUs x 64 x
# --update_freq 8), weight decay 0.05 also on the GRN gamma / beta (official
# shape (1, 1, 1, 4C), so not exempt as 1-D: `custom_keys` of the base
# schedule), 5 warm-up epochs + cosine, no model EMA; the augmentation, loss
# and test pipeline of SLaK-T (the official main.py is SLaK's; shared
# through the _base_ files). Published top-1: 83.39.
#
# Dynamic sparse training as published for SW: the k x k pieces of the SW
# layers are masked (one bit per piece, L1 pruning), sparsity 0.3, SNIP
# init, prune rate 0.3, random regrowth every 100 optimizer steps; path 0's
# mask shared by both paths at init and re-shared every 131st update
# (--sparse_type rep_coarse --sparse_gap 131 -u 100). Switch it off with
# `--cfg-options custom_hooks.0.enabled=False`.
_base_ = [
    './_base_/models/slak_cls.py', './_base_/models/sw_t.py',
    './_base_/datasets/imagenet_224.py',
    './_base_/schedules/imagenet_adamw_300e.py',
    './_base_/runtimes/mmpretrain.py'
]
model = dict(
    backbone=dict(_base_.sw_t_backbone, drop_path_rate=0.2),
    head=dict(in_channels=640))

# 8 GPUs x 64 images x 8 accumulation steps = 4096
train_dataloader = dict(batch_size=64)
optim_wrapper = dict(accumulative_counts=8)
# 5 warm-up epochs, then cosine to epoch 300
param_scheduler = [
    dict(_base_.param_scheduler[0], end=5),
    dict(_base_.param_scheduler[1], begin=5)
]
# official --model_ema false: no EMAHook, only the sparse-training hook
custom_hooks = [
    dict(
        type='slak_mm.DynamicSparseHook',
        include='shiftwise_pieces',
        prefix='backbone.',
        sparsity=0.3,
        init='snip',
        update_interval=100,
        prune_rate=0.3,
        growth='random',
        sparse_gap=131)
]
