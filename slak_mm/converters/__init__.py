"""Official SLaK / ShiftwiseConv checkpoints to slak_mm state dicts.

Pure functions (state dict in, state dict and summary out) plus the loader
of the official files; the command lines are
``tools/model_converters/slak_to_{mmpretrain,mmseg,mmdet}.py`` and
``tools/model_converters/sw_to_mmpretrain.py``.
"""
from .official import (OFFICIAL_LAYOUTS, OfficialCheckpointError,
                       detect_official_layout, load_official_checkpoint,
                       select_weights)
from .shiftwise import convert_sw_state_dict, detect_sw_version
from .slak import (TASK_TOOLBOXES, TASKS, convert_slak_state_dict,
                   detect_kernel_variant)

__all__ = [
    'OFFICIAL_LAYOUTS', 'OfficialCheckpointError', 'detect_official_layout',
    'load_official_checkpoint', 'select_weights', 'convert_sw_state_dict',
    'detect_sw_version', 'TASK_TOOLBOXES', 'TASKS', 'convert_slak_state_dict',
    'detect_kernel_variant'
]
