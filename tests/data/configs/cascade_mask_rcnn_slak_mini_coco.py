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
                type='Shared4Conv1FCBBoxHead',
                in_channels=32,
                conv_out_channels=32,
                fc_out_channels=64,
                roi_feat_size=7,
                num_classes=80,
                bbox_coder=dict(
                    type='DeltaXYWHBBoxCoder',
                    target_means=[0., 0., 0., 0.],
                    target_stds=stds),
                reg_class_agnostic=False,
                reg_decoded_bbox=True,
                norm_cfg=dict(type='SyncBN', requires_grad=True),
                loss_cls=dict(
                    type='CrossEntropyLoss',
                    use_sigmoid=False,
                    loss_weight=1.0),
                loss_bbox=dict(type='GIoULoss', loss_weight=10.0))
            for stds in [[0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1],
                         [0.033, 0.033, 0.067, 0.067]]
        ],
        mask_roi_extractor=dict(out_channels=32),
        mask_head=dict(in_channels=32, conv_out_channels=32)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=500, max_per_img=200),
        rcnn=[
            dict(
                assigner=dict(
                    type='MaxIoUAssigner',
                    pos_iou_thr=iou,
                    neg_iou_thr=iou,
                    min_pos_iou=iou,
                    match_low_quality=False,
                    ignore_iof_thr=-1),
                sampler=dict(
                    type='RandomSampler',
                    num=128,
                    pos_fraction=0.25,
                    neg_pos_ub=-1,
                    add_gt_as_proposals=True),
                mask_size=28,
                pos_weight=-1,
                debug=False) for iou in (0.5, 0.6, 0.7)
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
