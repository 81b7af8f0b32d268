from slak_mm.ops import depthwise_conv2d_same
from .large_kernel_conv import (DecomposedLargeKernelConv, fuse_bn,
                                fuse_conv_bn)
from .shiftwise_conv import ShiftwiseConv

__all__ = [
    'DecomposedLargeKernelConv', 'depthwise_conv2d_same', 'fuse_bn',
    'fuse_conv_bn', 'ShiftwiseConv'
]
