from .checkpoint import check_checkpoint_keys, register_checkpoint_safe_globals
from .launch import (SUPPORTED_SCOPES, fall_back_to_fp32_without_cuda,
                     get_config_scope, setup_cpu_distributed, setup_toolbox)

__all__ = [
    'check_checkpoint_keys', 'register_checkpoint_safe_globals',
    'SUPPORTED_SCOPES', 'fall_back_to_fp32_without_cuda', 'get_config_scope',
    'setup_cpu_distributed', 'setup_toolbox'
]
