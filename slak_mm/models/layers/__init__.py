from .large_kernel_conv import (DecomposedLargeKernelConv,
                                depthwise_conv2d_same, fuse_conv_bn)
from .shiftwise_conv import ShiftwiseConv

__all__ = [
    'DecomposedLargeKernelConv', 'depthwise_conv2d_same', 'fuse_conv_bn',
    'ShiftwiseConv'
]
