"""Distributed data parallel that also runs on CPU (gloo)."""
from mmengine.logging import print_log
from mmengine.model import MMDistributedDataParallel, revert_sync_batchnorm

from slak_mm.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class CPUCompatibleDDP(MMDistributedDataParallel):
    """:class:`mmengine.model.MMDistributedDataParallel` usable without GPU.

    mmengine's ``Runner.wrap_model`` always passes
    ``device_ids=[LOCAL_RANK]``, which ``DistributedDataParallel`` rejects for
    a module on CPU, and ``SyncBatchNorm`` raises on CPU tensors. When the
    module's parameters are on CPU this wrapper drops ``device_ids`` /
    ``output_device`` and reverts SyncBN layers to BN (statistics are then
    per process, as with ``--launcher none``). On GPU it behaves exactly like
    its parent. slak_mm's ``tools/train.py`` selects it automatically when
    CUDA is unavailable and a launcher is given.

    Args:
        module (nn.Module): The model to wrap.
        **kwargs: Forwarded to :class:`MMDistributedDataParallel`.
    """

    def __init__(self, module, **kwargs):
        first = next(module.parameters(), None)
        if first is not None and first.device.type == 'cpu':
            kwargs.pop('device_ids', None)
            kwargs.pop('output_device', None)
            module = revert_sync_batchnorm(module)
            print_log(
                'CPUCompatibleDDP: module on CPU, using gloo DDP without '
                'device_ids; SyncBN layers reverted to BN.',
                logger='current')
        kwargs.setdefault('broadcast_buffers', False)
        super().__init__(module=module, **kwargs)
