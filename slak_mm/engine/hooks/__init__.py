from .sparse_training_hook import DynamicSparseHook, StaticSparseHook

__all__ = ['DynamicSparseHook', 'StaticSparseHook']
