# Cascade Mask R-CNN + FPN with SLaK-T on COCO 2017, 12 epochs: the
# published SLaK detection recipe (VITA-Group/SLaK detection/configs,
# mmdet 2.x), in mmdet 3.x form:
# - backbone (_base_/models/cascade_mask_rcnn_slak_fpn.py): SLaK-T,
#   kernels 51/49/47/13 + 5, width factor 1.3, SyncBN in the large-kernel
#   branches, all four stages into the FPN ([124, 249, 499, 998]), drop path
#   0.4, layer scale 1.0; ImageNet-1k checkpoint (mmpretrain format,
#   `backbone.` keys) at `checkpoint_file`, output norms norm0..3 starting
#   at 1 / 0 (pretrained_out_norms=False);
#   `--cfg-options model.backbone.init_cfg=None` trains from scratch.
#   Fine-tuning keeps the pretrained sparse pattern fixed (StaticSparseHook;
#   off with `--cfg-options custom_hooks.0.enabled=False`).
# - heads: three 4conv1fc box heads (SyncBN) regressing decoded boxes with
#   GIoU loss (weight 10), see _base_/models/cascade_mask_rcnn_slak_fpn.py.
# - data (_base_/datasets/coco_instance.py): multi-scale training, short
#   side 480..800 (step 32, long side <= 1333), or with probability 1/2
#   resize to 400/500/600 -> random crop 384..600 -> resize to 480..800 (the
#   DETR / ConvNeXt "ms-crop" augmentation); random flip; test at 1333x800.
# - optimizer (_base_/schedules/coco_adamw_1x.py): AdamW lr 2e-4, betas
#   (0.9, 0.999), wd 0.05, layer-wise lr decay 0.7 over 6 layer ids; 500
#   warm-up iterations (linear from 0.001), lr x0.1 after epochs 8 and 11;
#   16 images per iteration (8 GPUs x 2).
# - fp32 as the official configs (`tools/train.py --amp` trains in mixed
#   precision instead, as mmdet's ConvNeXt config does).
# The published 12-epoch result, 48.4 box AP / 41.8 mask AP, fine-tuned the
# 120-epoch ImageNet checkpoint (pass it as
# `--cfg-options model.backbone.init_cfg.checkpoint=...`); the 36-epoch
# recipe is configs/cascade_mask_rcnn_slak_t_coco_3x.py.
_base_ = [
    './_base_/models/cascade_mask_rcnn_slak_fpn.py',
    './_base_/datasets/coco_instance.py', './_base_/runtimes/mmdet.py',
    './_base_/schedules/coco_adamw_1x.py'
]
