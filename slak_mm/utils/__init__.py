from .checkpoint import (CheckpointUnpicklingError, checkpoint_safe_globals,
                         load_checkpoint_file, mmengine_safe_globals)
from .launch import (SUPPORTED_SCOPES, fall_back_to_fp32_without_cuda,
                     get_config_scope, scale_lr_with_accumulation,
                     setup_cpu_distributed, setup_env, setup_toolbox)
from .pretrained import (CheckedPretrainedInit, CheckpointKeysHook,
                         check_checkpoint_keys, checkpoint_weights)

__all__ = [
    'CheckpointUnpicklingError', 'checkpoint_safe_globals',
    'load_checkpoint_file', 'mmengine_safe_globals', 'SUPPORTED_SCOPES',
    'fall_back_to_fp32_without_cuda', 'get_config_scope',
    'scale_lr_with_accumulation', 'setup_cpu_distributed', 'setup_env',
    'setup_toolbox', 'CheckedPretrainedInit', 'CheckpointKeysHook',
    'check_checkpoint_keys', 'checkpoint_weights'
]
