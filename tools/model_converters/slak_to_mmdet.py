"""Convert an official SLaK COCO Cascade Mask R-CNN checkpoint (mmdet 2.x)
to an mmdet 3.x checkpoint that ``configs/cascade_mask_rcnn_slak_t_coco_*.py``
evaluate.

The official files hold ``state_dict`` with ``backbone.``, ``neck.``,
``rpn_head.`` and ``roi_head.`` keys. Example::

    python tools/model_converters/slak_to_mmdet.py \\
        SLaK_tiny_cascade_mask_rcnn_3x.pth \\
        checkpoints/cascade_mask_rcnn_slak_t_coco_3x.pth
    python tools/test.py configs/cascade_mask_rcnn_slak_t_coco_3x.py \\
        checkpoints/cascade_mask_rcnn_slak_t_coco_3x.pth

Key renames, loading safety (``--unsafe-load``) and the printed summary:
:mod:`slak_mm.utils.official_checkpoint`.
"""
from slak_mm.utils.official_checkpoint import converter_main

if __name__ == '__main__':
    converter_main('det')
