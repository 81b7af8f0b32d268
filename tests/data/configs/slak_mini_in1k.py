# A scaled-down SLaK classifier for fast end-to-end tests of the tools on
# real ImageNet images: the demo config (itself inheriting
# configs/slak_t_in1k.py) with a 6-block SLaK (real block structure,
# kernels 13/11/9/7 + 3), the 1000-class head and the ImageNet layout
# (meta/{train,val}.txt); like the demo it has no Mixup / CutMix, so that
# the logged loss of a short run shows the decrease. To keep it short it
# uses the first 160 training images (3 per class, so 54 classes) and the
# first 100 validation images. Data roots are given with --cfg-options.
_base_ = ['../../../configs/demo/slak_t_in1k_sample.py']

data_root = 'data/imagenet_mini'
max_epochs = 4

data_preprocessor = dict(num_classes=1000)
model = dict(
    backbone=dict(
        arch=dict(
            _delete_=True, depths=[1, 1, 3, 1], channels=[16, 32, 64, 128]),
        kernel_size=[13, 11, 9, 7, 3],
        drop_path_rate=0.1),
    head=dict(num_classes=1000, in_channels=166))

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ImageNet',
        data_root=data_root,
        split='train',
        indices=160,
        pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ImageNet',
        data_root=data_root,
        split='val',
        indices=100,
        pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(lr=4e-3))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.1,
        by_epoch=False,
        begin=0,
        end=5),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(interval=max_epochs))
