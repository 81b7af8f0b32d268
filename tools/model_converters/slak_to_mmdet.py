"""Convert an official SLaK COCO Cascade Mask R-CNN checkpoint (mmdet
2.x: ``state_dict`` with ``backbone.``, ``neck.``, ``rpn_head.`` and
``roi_head.`` keys) to an mmdet 3.x checkpoint that
``configs/cascade_mask_rcnn_slak_t_coco_*.py`` evaluate, e.g.
``python tools/model_converters/slak_to_mmdet.py
SLaK_tiny_cascade_mask_rcnn_3x.pth
checkpoints/cascade_mask_rcnn_slak_t_coco_3x.pth``.

Same options and summary as ``slak_to_mmpretrain.py``.
"""
from converter_cli import slak_main

if __name__ == '__main__':
    slak_main('det')
