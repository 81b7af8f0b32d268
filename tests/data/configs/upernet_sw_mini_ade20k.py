# A scaled-down UperNet-SW for a fast end-to-end training test: the mini
# SLaK config (tests/data/configs/upernet_slak_mini_ade20k.py) with its
# backbone swapped for a 6-block ShiftWiseV1 of the same depths, channels
# and output settings (real SW blocks: emulated kernels 13/11/9/7 from 3x3
# pieces, ghost ratio 0.23, N_path 2, N_rep 4, SyncBN in the SW branches)
# and heads fitted to its channels. Data roots are given with
# --cfg-options.
_base_ = ['./upernet_slak_mini_ade20k.py']

model = dict(
    backbone=dict(type='slak_mm.ShiftWiseV1', width_factor=1.0),
    decode_head=dict(in_channels=[16, 32, 64, 128]),
    auxiliary_head=dict(in_channels=64))
