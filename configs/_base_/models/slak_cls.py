# ImageNet-1k classifier with a SLaK-T backbone (mmpretrain 1.x): the
# official classification model is the backbone, global average pooling,
# the final LayerNorm and a linear head. `gap_before_final_norm=True`
# makes the backbone return the pooled, normed (N, C) vector of its last
# stage (its norm3 is the final norm), so there is no neck.
custom_imports = dict(imports=['slak_mm'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='slak_mm.SLaK',
        arch='tiny',
        kernel_size=[51, 49, 47, 13, 5],
        width_factor=1.3,
        # SyncBN after each large-kernel branch, as the official code
        # (use_sync_bn = True); reverted to BN by mmengine's Runner when
        # not distributed and by slak_mm.CPUCompatibleDDP on CPU
        mixer_cfg=dict(norm_cfg=dict(type='SyncBN', requires_grad=True)),
        drop_path_rate=0.1,
        layer_scale_init_value=1e-6,
        out_indices=-1,
        gap_before_final_norm=True),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=998,
        # Mixup / CutMix produce soft targets; label smoothing 0.1 is
        # applied on top as timm's Mixup(label_smoothing=0.1) does
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=dict(type='TruncNormal', layer='Linear', std=.02, bias=0.)),
    # timm Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, switch_prob=0.5):
    # one of the two per batch with equal probability
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0),
    ]),
)
