# The SW-T backbone (ShiftWise v2 tiny; ShiftwiseConv, arXiv 2401.12736):
# depths [3, 3, 18, 3], channels [80, 160, 320, 640], kernels 51/49/47/13
# + 3x3 pieces, width factor 1.0, ghost ratio 0.23, N_path 2, N_rep 4, and
# SyncBN for every BN of a block, as the official SW_v2_unirep.py (reverted
# to BN by mmengine's Runner when not distributed). The model bases hold a
# SLaK-T backbone; an SW-T leaf lists this file in `_base_` and merges these
# keys over it, keeping the task's output settings (out_indices, drop path,
# layer scale, init_cfg, ...):
#     model = dict(backbone=dict(_base_.sw_t_backbone, drop_path_rate=...))
sw_t_backbone = dict(
    type='slak_mm.ShiftWiseV2',
    arch='tiny',
    kernel_size=[51, 49, 47, 13, 3],
    width_factor=1.0,
    mixer_cfg=dict(
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        ghost_ratio=0.23,
        num_paths=2,
        num_reps=4),
    block_norm_cfg=dict(type='SyncBN', requires_grad=True))
