# UperNet + SW-T (ShiftWise v2 tiny) on ADE20K, the published recipe
# (official downstream/segmentation/configs/
# upernet_sw_tiny_512_160k_ade20k_ss.py): the SW-T backbone
# (_base_/models/sw_t.py: kernels 51/49/47/13 + 3, ghost ratio 0.23, N_path
# 2, N_rep 4, SyncBN for every BN of a block) with drop path 0.4 and layer
# scale 1.0; layer-wise lr decay with rate 1.0 over 9 layer ids (i.e. no
# decay); weight decay also on the GRN gamma / beta (the constructor's
# default decay_grn=True, as the official code). Everything else is shared
# with configs/upernet_slak_t_ade20k.py through the _base_ files: 512x512
# crops, 160k iterations, 16 images per iteration, AdamW lr 1e-4 wd 0.05,
# 1500 linear warm-up iterations then poly, fp32, sliding-window test
# (stride 341).
#
# The backbone starts from an ImageNet-1k SW-T checkpoint in mmpretrain
# format (`state_dict` with `backbone.` keys) at `checkpoint_file`; train
# from scratch with `--cfg-options model.backbone.init_cfg=None`. The
# output norms norm0..3 start at 1 / 0 (pretrained_out_norms=False). The
# pretrained sparse pattern is kept fixed (StaticSparseHook).
_base_ = [
    './_base_/models/upernet_slak.py', './_base_/models/sw_t.py',
    './_base_/datasets/ade20k.py', './_base_/runtimes/mmseg.py',
    './_base_/schedules/schedule_160k.py'
]
checkpoint_file = 'checkpoints/sw_tiny_in1k_300e.pth'
model = dict(
    backbone=dict(
        _base_.sw_t_backbone, init_cfg=dict(checkpoint=checkpoint_file)),
    decode_head=dict(in_channels=[80, 160, 320, 640]),
    auxiliary_head=dict(in_channels=320))

optim_wrapper = dict(
    paramwise_cfg=dict(decay_rate=1.0, decay_type='layer_wise', num_layers=9))
