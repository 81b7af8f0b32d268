from .large_kernel_conv import DecomposedLargeKernelConv

__all__ = ['DecomposedLargeKernelConv']
