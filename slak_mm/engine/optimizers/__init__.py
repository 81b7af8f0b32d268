from .layer_decay_optim_constructor import \
    LearningRateDecayOptimizerConstructor

__all__ = ['LearningRateDecayOptimizerConstructor']
