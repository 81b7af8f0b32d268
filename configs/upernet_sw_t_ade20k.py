# UperNet + SW-T (ShiftWise v2 tiny) on ADE20K, the published recipe
# (official downstream/segmentation/configs/
# upernet_sw_tiny_512_160k_ade20k_ss.py): 512x512 crops, 160k iterations,
# 16 images per iteration, AdamW lr 1e-4 wd 0.05, layer-wise lr decay with
# rate 1.0 over 9 layer ids (i.e. no decay), 1500 linear warm-up iterations
# then poly, drop path 0.4, layer scale 1.0, kernels 51/49/47/13 + 3, ghost
# ratio 0.23, N_path 2, N_rep 4; SyncBN for every BN of a block (official
# SW_v2_unirep.py hard-codes it); weight decay also on the GRN gamma / beta
# (the constructor's default decay_grn=True, as the official code); fp32;
# sliding-window test (stride 341). All other settings are those of
# configs/upernet_slak_t_ade20k.py.
#
# The backbone starts from an ImageNet-1k SW-T checkpoint in mmpretrain
# format (`state_dict` with `backbone.` keys) at `checkpoint_file`; train
# from scratch with `--cfg-options model.backbone.init_cfg=None`. The
# output norms norm0..3 start at 1 / 0 (pretrained_out_norms=False). The
# pretrained sparse pattern is kept fixed (StaticSparseHook, inherited).
_base_ = ['./upernet_slak_t_ade20k.py']
checkpoint_file = 'checkpoints/sw_tiny_in1k_300e.pth'
model = dict(
    backbone=dict(
        _delete_=True,
        type='slak_mm.ShiftWiseV2',
        arch='tiny',
        kernel_size=[51, 49, 47, 13, 3],
        width_factor=1.0,
        sw_cfg=dict(ghost_ratio=0.23, num_paths=2, num_reps=4),
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        out_indices=[0, 1, 2, 3],
        gap_before_final_norm=False,
        pretrained_out_norms=False,
        drop_path_rate=0.4,
        layer_scale_init_value=1.0,
        init_cfg=dict(
            type='Pretrained', checkpoint=checkpoint_file,
            prefix='backbone.')),
    decode_head=dict(in_channels=[80, 160, 320, 640]),
    auxiliary_head=dict(in_channels=320))

optim_wrapper = dict(
    paramwise_cfg=dict(
        _delete_=True, decay_rate=1.0, decay_type='layer_wise',
        num_layers=9))
