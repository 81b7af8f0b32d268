from .checkpoint_hook import AtomicCheckpointHook
from .masked_training_hook import MaskedTrainingHook, StaticSparseHook
from .preemption_hook import REQUEUE_EXIT_CODE, PreemptionHook
from .seed_hook import PerIterationSeedHook
from .sparse_training_hook import DynamicSparseHook

__all__ = [
    'MaskedTrainingHook', 'DynamicSparseHook', 'StaticSparseHook',
    'AtomicCheckpointHook', 'PreemptionHook', 'REQUEUE_EXIT_CODE',
    'PerIterationSeedHook'
]
