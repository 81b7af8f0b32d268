# A scaled-down Cascade Mask R-CNN + SLaK for fast end-to-end tests of the
# tools on real COCO-format data: the demo config (itself inheriting
# configs/cascade_mask_rcnn_slak_t_coco_1x.py, with its multi-scale + crop
# augmentation) with a 6-block SLaK (real block structure, kernels
# 13/11/9/7 + 3), narrow FPN / heads and images with a short side of about
# 256. Data roots (and the evaluator's ann_file) are given with
# --cfg-options.
_base_ = ['../../../configs/demo/cascade_mask_rcnn_slak_t_coco_sample.py']

max_epochs = 1
model = dict(
    backbone=dict(
        arch=dict(
            _delete_=True, depths=[1, 1, 3, 1], channels=[16, 32, 64, 128]),
        kernel_size=[13, 11, 9, 7, 3],
        drop_path_rate=0.1),
    neck=dict(in_channels=[20, 41, 83, 166], out_channels=32),
    rpn_head=dict(in_channels=32, feat_channels=32),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=32),
        bbox_head=[
            dict(
                head, in_channels=32, conv_out_channels=32, fc_out_channels=64)
            for head in _base_.model.roi_head.bbox_head
        ],
        mask_roi_extractor=dict(out_channels=32),
        mask_head=dict(in_channels=32, conv_out_channels=32)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=500, max_per_img=200),
        rcnn=[
            dict(stage, sampler=dict(stage.sampler, num=128))
            for stage in _base_.model.train_cfg.rcnn
        ]),
    test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=100)))

# coco_mini: the first 24 of its 60 training images -> 12 iterations
train_dataloader = dict(dataset=dict(indices=24))
optim_wrapper = dict(optimizer=dict(lr=1e-3))
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=3)
]
default_hooks = dict(checkpoint=dict(interval=max_epochs))
randomness = dict(seed=0)
