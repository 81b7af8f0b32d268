# UperNet + SLaK-B on ADE20K: the SLaK-T recipe with the base backbone
# (channels [166, 332, 665, 1331] after the 1.3 width factor), drop path 0.4
# and stage-wise decay over 12 layers. Published mIoU (single scale): 50.0.
_base_ = ['./upernet_slak_t_ade20k.py']
checkpoint_file = 'checkpoints/slak_base_in1k_300e.pth'
model = dict(
    backbone=dict(
        arch='base',
        drop_path_rate=0.4,
        init_cfg=dict(checkpoint=checkpoint_file)),
    decode_head=dict(in_channels=[166, 332, 665, 1331]),
    auxiliary_head=dict(in_channels=665))
optim_wrapper = dict(paramwise_cfg=dict(num_layers=12))
