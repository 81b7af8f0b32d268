"""Entry points for scripts and tests: build a config's model."""
from .model import build_model

__all__ = ['build_model']
