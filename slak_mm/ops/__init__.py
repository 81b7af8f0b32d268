"""Operators of slak_mm: plain functions on tensors, no modules."""
from .depthwise_conv import depthwise_conv2d_same

__all__ = ['depthwise_conv2d_same']
