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
#
# Every setting comes from the _base_ files: the model (backbone, heads,
# slide test, the sparse-pattern hook), the data, the runtime and the
# schedule (optimizer, lr decay, warm-up + poly).
_base_ = [
    './_base_/models/upernet_slak.py', './_base_/datasets/ade20k.py',
    './_base_/runtimes/mmseg.py', './_base_/schedules/schedule_160k.py'
]
