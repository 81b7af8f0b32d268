# A scaled-down UperNet-SW for a fast end-to-end training test: the mini
# SLaK config (tests/data/configs/upernet_slak_mini_ade20k.py) with its
# backbone swapped for a 6-block ShiftWiseV1 (real SW blocks: emulated
# kernels 13/11/9/7 from 3x3 pieces, ghost ratio 0.23, N_path 2, N_rep 4)
# and heads fitted to its channels. Data roots are given with
# --cfg-options.
_base_ = ['./upernet_slak_mini_ade20k.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='slak_mm.ShiftWiseV1',
        arch=dict(depths=[1, 1, 3, 1], channels=[16, 32, 64, 128]),
        kernel_size=[13, 11, 9, 7, 3],
        width_factor=1.0,
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        out_indices=[0, 1, 2, 3],
        gap_before_final_norm=False,
        pretrained_out_norms=False,
        drop_path_rate=0.1,
        layer_scale_init_value=1.0,
        init_cfg=None),
    decode_head=dict(in_channels=[16, 32, 64, 128]),
    auxiliary_head=dict(in_channels=64))
