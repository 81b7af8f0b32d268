# Faster R-CNN + FPN with SLaK-T on PASCAL VOC2007 + VOC2012 trainval
# ("07+12", mmdet's faster-rcnn_r50_fpn_1x_voc0712 data), evaluated on
# VOC2007 test (11-point mAP). Everything else as
# configs/faster_rcnn_slak_t_voc2007.py. Layout:
# <data_root>/VOC2007/... and <data_root>/VOC2012/... (VOCdevkit).
_base_ = ['./faster_rcnn_slak_t_voc2007.py']

voc2012_trainval = dict(
    type='VOCDataset',
    data_root={{_base_.data_root}},
    ann_file='VOC2012/ImageSets/Main/trainval.txt',
    data_prefix=dict(sub_data_root='VOC2012/'),
    filter_cfg=dict(filter_empty_gt=True, min_size=32, bbox_min_size=32),
    pipeline={{_base_.train_pipeline}},
    backend_args=None)
train_dataloader = dict(
    dataset=dict(
        dataset=dict(
            _delete_=True,
            type='ConcatDataset',
            # VOCDataset records its year in `dataset_type` of the
            # metainfo, which differs between the two parts
            ignore_keys=['dataset_type'],
            datasets=[{{_base_.voc2007_trainval}}, voc2012_trainval])))
