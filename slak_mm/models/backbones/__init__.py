from .slak import SLaK, SLaKBlock

__all__ = ['SLaK', 'SLaKBlock']
