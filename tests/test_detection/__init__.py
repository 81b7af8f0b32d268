"""Detection with SLaK (mmdet 3.x), split by concept: the configs and
their recipes (test_configs), the detectors' layer-wise lr decay and
forward on real images (test_detectors), end-to-end runs of the tools on
the shared VOC2007 / COCO samples (test_tools), and the VOC / COCO sample
preparation (test_sample_data). Paths and widths they share are here."""
import os.path as osp

from ..conftest import REPO_ROOT

CONFIGS = osp.join(REPO_ROOT, 'configs')
VOC_CONFIG = osp.join(CONFIGS, 'faster_rcnn_slak_t_voc2007.py')
COCO_1X_CONFIG = osp.join(CONFIGS, 'cascade_mask_rcnn_slak_t_coco_1x.py')
MINI_VOC_CONFIG = osp.join(REPO_ROOT, 'tests', 'data', 'configs',
                           'faster_rcnn_slak_mini_voc.py')
MINI_COCO_CONFIG = osp.join(REPO_ROOT, 'tests', 'data', 'configs',
                            'cascade_mask_rcnn_slak_mini_coco.py')
T_CHANNELS = [124, 249, 499, 998]
B_CHANNELS = [166, 332, 665, 1331]
