from .cpu_ddp import CPUCompatibleDDP

__all__ = ['CPUCompatibleDDP']
