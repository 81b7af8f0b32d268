# UperNet + SLaK-T on ADE20K, the published recipe (SLaK, ICLR 2023):
# 512x512 crops, 160k iterations, 16 images per iteration (8 GPUs x 2),
# AdamW lr 1e-4 wd 0.05 with stage-wise lr decay 0.9 (num_layers 6; decode
# / auxiliary heads and output norms at the full lr), 1500 linear warm-up
# iterations then poly, drop path 0.4, SyncBN in the large-kernel branches,
# fp32 as the official configs (`tools/train.py --amp` trains in mixed
# precision instead), sliding-window test (512 crop, stride 341).
# Published mIoU (single scale): 47.6.
#
# The backbone starts from an ImageNet-1k SLaK-T checkpoint in mmpretrain
# format (`state_dict` with `backbone.` keys) at `checkpoint_file`; to train
# from scratch pass `--cfg-options model.backbone.init_cfg=None`. The output
# norms norm0..3 start at 1 / 0 (the checkpoint's final norm is not loaded,
# model.backbone.pretrained_out_norms=False), as in the official code.
# As published, fine-tuning keeps the sparse pattern of the pretrained
# backbone fixed (StaticSparseHook: masks = zeros of the loaded weights;
# a dense backbone is left dense). Switch it off with
# `--cfg-options custom_hooks.0.enabled=False`.
_base_ = [
    './_base_/models/upernet_slak.py', './_base_/datasets/ade20k.py',
    './_base_/runtimes/mmseg.py', './_base_/schedules/schedule_160k.py'
]
crop_size = (512, 512)
checkpoint_file = 'checkpoints/slak_tiny_in1k_300e.pth'
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        arch='tiny',
        kernel_size=[51, 49, 47, 13, 5],
        drop_path_rate=0.4,
        init_cfg=dict(
            type='Pretrained', checkpoint=checkpoint_file,
            prefix='backbone.')),
    decode_head=dict(in_channels=[124, 249, 499, 998], num_classes=150),
    auxiliary_head=dict(in_channels=499, num_classes=150),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=0.0001, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='slak_mm.LearningRateDecayOptimizerConstructor',
    paramwise_cfg=dict(decay_rate=0.9, decay_type='stage_wise', num_layers=6))

param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
        end=1500),
    dict(
        type='PolyLR',
        power=1.0,
        begin=1500,
        end=160000,
        eta_min=0.0,
        by_epoch=False)
]

custom_hooks = [dict(type='slak_mm.StaticSparseHook', prefix='backbone.')]

# 8 GPUs x 2 images = 16 images per iteration
train_dataloader = dict(batch_size=2)
val_dataloader = dict(batch_size=1)
test_dataloader = val_dataloader
