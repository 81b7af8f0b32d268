# The 36-epoch ("3x") schedule: ./coco_adamw_1x.py with lr x0.1 after
# epochs 27 and 33.
_base_ = ['./coco_adamw_1x.py']
max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    _base_.param_scheduler[0],
    dict(_base_.param_scheduler[1], end=max_epochs, milestones=[27, 33])
]
