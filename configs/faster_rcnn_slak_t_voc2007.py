# Faster R-CNN + FPN with SLaK-T on PASCAL VOC2007 (mmdet 3.x).
#
# SLaK has no published VOC recipe: this is mmdet's
# faster-rcnn_r50_fpn_1x_voc0712 schedule with the SLaK-T backbone (all four
# stages into the FPN, channels [124, 249, 499, 998]) and SLaK's fine-tuning
# optimizer:
# - data (_base_/datasets/voc07.py): VOC2007 trainval, repeated 3 times per
#   epoch; 1000x600 images, random flip; 16 images per iteration (8 GPUs x
#   2); evaluation on VOC2007 test with the 11-point box mAP.
#   configs/faster_rcnn_slak_t_voc0712.py trains on VOC2007 + VOC2012
#   trainval instead (mmdet's 07+12 recipe).
# - schedule (_base_/schedules/voc_adamw_4e.py): 4 epochs, lr x0.1 after
#   epoch 3 (= mmdet's "1x" on VOC); AdamW, wd 0.05, with SLaK's layer-wise
#   lr decay 0.7 over 6 layer ids (the values of the published SLaK-T COCO
#   recipe); lr 1e-4 = half the COCO lr 2e-4, as mmdet halves its COCO lr
#   for VOC (SGD 0.02 -> 0.01); a 500-iteration linear warm-up as in the
#   COCO schedules (mmdet's VOC SGD recipe has none). fp32 as mmdet's VOC
#   recipe (add --amp for mixed precision).
# - backbone (_base_/models/faster_rcnn_slak_fpn.py): SyncBN in the
#   large-kernel branches, drop path 0.4, layer scale 1.0, ImageNet-1k
#   SLaK-T checkpoint in mmpretrain format (`state_dict` with `backbone.`
#   keys) at `checkpoint_file`, output norms norm0..3 starting at 1 / 0
#   (pretrained_out_norms=False, as the official SLaK detection /
#   segmentation code); train from scratch with
#   `--cfg-options model.backbone.init_cfg=None`. Fine-tuning keeps the
#   pretrained sparse pattern fixed (StaticSparseHook; switch it off with
#   `--cfg-options custom_hooks.0.enabled=False`).
_base_ = [
    './_base_/models/faster_rcnn_slak_fpn.py', './_base_/datasets/voc07.py',
    './_base_/runtimes/mmdet.py', './_base_/schedules/voc_adamw_4e.py'
]
