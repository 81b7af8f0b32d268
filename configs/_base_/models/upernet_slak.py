# UperNet with a SLaK-T backbone for semantic segmentation on ADE20K
# (mmseg 1.x), with the settings shared by the published SLaK and SW recipes:
# the backbone starts from an ImageNet-1k checkpoint in mmpretrain format
# (`state_dict` with `backbone.` keys) at `checkpoint_file`, its output norms
# norm0..3 at 1 / 0; 512x512 inputs, sliding-window test (512 crop, stride
# 341); fine-tuning keeps the pretrained sparse pattern. Leaf configs change
# the backbone size (or swap in SW-T, ./sw_t.py) and the checkpoint.
custom_imports = dict(imports=['slak_mm'], allow_failed_imports=False)

norm_cfg = dict(type='SyncBN', requires_grad=True)
checkpoint_file = 'checkpoints/slak_tiny_in1k_300e.pth'
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(512, 512))
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='slak_mm.SLaK',
        arch='tiny',
        kernel_size=[51, 49, 47, 13, 5],
        width_factor=1.3,
        # SyncBN after each large-kernel branch, as the official code
        # (use_sync_bn = True); reverted to BN by mmengine's Runner when
        # not distributed and by slak_mm.CPUCompatibleDDP on CPU
        mixer_cfg=dict(norm_cfg=dict(type='SyncBN', requires_grad=True)),
        drop_path_rate=0.4,
        layer_scale_init_value=1.0,
        out_indices=[0, 1, 2, 3],
        gap_before_final_norm=False,
        # norm0..3 start at 1 / 0: the final norm of the classification
        # checkpoint is not loaded into norm3 (as in the official code)
        pretrained_out_norms=False,
        init_cfg=dict(
            type='CheckedPretrained',
            checkpoint=checkpoint_file,
            prefix='backbone.')),
    decode_head=dict(
        type='UPerHead',
        in_channels=[124, 249, 499, 998],
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=512,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(
        type='FCNHead',
        in_channels=499,
        in_index=2,
        channels=256,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))

# fine-tuning keeps the sparse pattern of the pretrained backbone (masks =
# zeros of the loaded weights; a dense backbone stays dense)
custom_hooks = [dict(type='slak_mm.StaticSparseHook', prefix='backbone.')]
