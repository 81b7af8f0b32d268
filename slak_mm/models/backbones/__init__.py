from .large_kernel_convnext import LargeKernelBlock, LargeKernelConvNeXt
from .shiftwise import (ShiftWiseV1, ShiftWiseV1Block, ShiftWiseV2,
                        ShiftWiseV2Block)
from .slak import SLaK, SLaKBlock

__all__ = [
    'LargeKernelBlock', 'LargeKernelConvNeXt', 'SLaK', 'SLaKBlock',
    'ShiftWiseV1', 'ShiftWiseV1Block', 'ShiftWiseV2', 'ShiftWiseV2Block'
]
