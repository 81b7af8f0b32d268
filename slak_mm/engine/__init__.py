from .averaged_model import MaskedExponentialMovingAverage  # noqa: F401
from .checkpoint_files import (atomic_write, checkpoint_problem,  # noqa: F401
                               find_resumable_checkpoint, resolve_resume)
from .hooks import *  # noqa: F401,F403
from .model_wrappers import *  # noqa: F401,F403
from .optimizers import *  # noqa: F401,F403
