from .shiftwise import ShiftWiseV1, ShiftWiseV2
from .slak import SLaK, SLaKBlock

__all__ = ['SLaK', 'SLaKBlock', 'ShiftWiseV1', 'ShiftWiseV2']
