# UperNet + SLaK-S on ADE20K: the SLaK-T recipe with the small backbone
# (depths [3, 3, 27, 3]), drop path 0.3 and stage-wise decay over 12 layers.
# Published mIoU (single scale): 49.4.
_base_ = ['./upernet_slak_t_ade20k.py']
checkpoint_file = 'checkpoints/slak_small_in1k_300e.pth'
model = dict(
    backbone=dict(
        arch='small',
        drop_path_rate=0.3,
        init_cfg=dict(checkpoint=checkpoint_file)))
optim_wrapper = dict(paramwise_cfg=dict(num_layers=12))
