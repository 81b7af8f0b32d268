# PASCAL VOC schedule: mmdet's faster-rcnn_r50_fpn_1x_voc0712 length (4
# epochs over the training set repeated 3 times, lr x0.1 after epoch 3)
# with the optimizer of ./coco_adamw_1x.py at half its lr, 1e-4, as mmdet
# halves its COCO lr for VOC (SGD 0.02 -> 0.01); the 500-iteration warm-up
# of the COCO schedule is kept (mmdet's VOC SGD recipe has none).
_base_ = ['./coco_adamw_1x.py']
max_epochs = 4
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    _base_.param_scheduler[0],
    dict(_base_.param_scheduler[1], end=max_epochs, milestones=[3])
]
optim_wrapper = dict(optimizer=dict(lr=0.0001))
