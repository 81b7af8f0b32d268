from .masked_training_hook import MaskedTrainingHook, StaticSparseHook
from .sparse_training_hook import DynamicSparseHook

__all__ = ['MaskedTrainingHook', 'DynamicSparseHook', 'StaticSparseHook']
