# UperNet with a SLaK-T backbone for semantic segmentation (mmseg 1.x).
# Leaf configs set the backbone size, channels, classes and test mode.
custom_imports = dict(imports=['slak_mm'], allow_failed_imports=False)

norm_cfg = dict(type='SyncBN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        type='slak_mm.SLaK',
        arch='tiny',
        kernel_size=[51, 49, 47, 13, 5],
        width_factor=1.3,
        # SyncBN after each large-kernel branch, as the official code
        # (use_sync_bn = True); reverted to BN by mmengine's Runner when
        # not distributed and by slak_mm.CPUCompatibleDDP on CPU
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        drop_path_rate=0.4,
        layer_scale_init_value=1.0,
        out_indices=[0, 1, 2, 3],
        gap_before_final_norm=False,
        # norm0..3 start at 1 / 0: the final norm of the classification
        # checkpoint is not loaded into norm3 (as in the official code)
        pretrained_out_norms=False),
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
    test_cfg=dict(mode='whole'))
