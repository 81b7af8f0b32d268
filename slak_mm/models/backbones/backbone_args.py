"""Parsing of the arguments of the large-kernel backbones."""
import copy
import warnings
from typing import Dict, List, Optional, Sequence, Tuple, Union

from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
from torch.nn.modules.batchnorm import _BatchNorm

#: The network norm of ConvNeXt (stem, downsampling, output norms).
DEFAULT_NORM_CFG = dict(type='LN2d', eps=1e-6)

#: Keys of the mixer config that the backbone and the block set.
INJECTED_MIXER_KEYS = ('channels', 'kernel_size', 'small_kernel_size')

#: The keys of the deprecated ``sw_cfg`` (now ``mixer_cfg`` keys).
SW_CFG_KEYS = ('ghost_ratio', 'num_paths', 'num_reps', 'ghost_split', 'seed')


def parse_arch(arch: Union[str, dict], arch_settings: Dict[str, dict],
               arch_aliases: Dict[str, str]) -> dict:
    """The ``depths`` / ``channels`` of an architecture.

    Args:
        arch (str | dict): A name of ``arch_settings`` or of
            ``arch_aliases`` (case-insensitive), or a dict with keys
            ``depths`` and ``channels`` (lists of equal, non-zero length).
        arch_settings (dict[str, dict]): The named architectures.
        arch_aliases (dict[str, str]): Short names, e.g. ``{'t': 'tiny'}``.

    Returns:
        dict: A copy of the architecture's settings.

    Raises:
        ValueError: For an unknown name or a malformed dict.
    """
    if isinstance(arch, str):
        name = arch_aliases.get(arch.lower(), arch.lower())
        if name not in arch_settings:
            raise ValueError(f'Unknown `arch` {arch!r}; choose from '
                             f'{sorted(arch_settings)} (aliases '
                             f'{sorted(arch_aliases)}) or pass a dict with '
                             f'"depths" and "channels".')
        return dict(arch_settings[name])
    if not isinstance(arch, dict) or \
            not {'depths', 'channels'} <= set(arch):
        raise ValueError('A custom `arch` must be a dict with keys '
                         f'"depths" and "channels", got {arch!r}.')
    if len(arch['depths']) != len(arch['channels']) or \
            len(arch['depths']) == 0:
        raise ValueError(
            '`arch["depths"]` and `arch["channels"]` must be non-empty '
            f'lists of equal length, got {arch!r}.')
    return dict(arch)


def parse_kernel_size(kernel_size: Sequence[int],
                      num_stages: int) -> List[int]:
    """Check the per-stage large kernel sizes followed by the small one.

    Args:
        kernel_size (list | tuple): ``num_stages + 1`` positive odd ints;
            each large size ``>=`` the small size ``kernel_size[-1]``.
        num_stages (int): Number of stages.

    Returns:
        list[int]: The sizes.

    Raises:
        ValueError: For a wrong type or length, an even or non-positive
            size, or a large size below the small one.
    """
    sizes = list(kernel_size) if isinstance(kernel_size,
                                            (list, tuple)) else None
    if sizes is None or len(sizes) != num_stages + 1:
        raise ValueError(
            f'`kernel_size` must list one large kernel per stage and the '
            f'small kernel last ({num_stages + 1} odd ints, e.g. '
            f'[51, 49, 47, 13, 5]), got {kernel_size!r}.')
    for i, k in enumerate(sizes):
        if isinstance(k, bool) or not isinstance(k, int) or k < 1 \
                or k % 2 == 0:
            raise ValueError(
                f'`kernel_size[{i}]` must be a positive odd int, got '
                f'{k!r} (in {kernel_size!r}).')
    small = sizes[-1]
    for i, k in enumerate(sizes[:-1]):
        if k < small:
            raise ValueError(
                f'`kernel_size[{i}]` ({k}) is smaller than the small '
                f'kernel size kernel_size[-1] ({small}).')
    return sizes


def parse_out_indices(out_indices: Union[int, Sequence[int]],
                      num_stages: int) -> List[int]:
    """Normalise ``out_indices`` to non-negative stage ids.

    Args:
        out_indices (int | Sequence[int]): Stage ids in
            ``[-num_stages, num_stages - 1]``.
        num_stages (int): Number of stages.

    Returns:
        list[int]: The ids, negative ones counted from the end.

    Raises:
        ValueError: For an empty or non-int value or an id out of range.
    """
    if isinstance(out_indices, int):
        out_indices = [out_indices]
    if not isinstance(out_indices, (list, tuple)) or not out_indices:
        raise ValueError('`out_indices` must be an int or a non-empty '
                         f'sequence of ints, got {out_indices!r}.')
    parsed = []
    for index in out_indices:
        if not -num_stages <= index < num_stages:
            raise ValueError(
                f'`out_indices` entries must be in [{-num_stages}, '
                f'{num_stages - 1}], got {out_indices!r}.')
        parsed.append(index % num_stages)
    return parsed


def is_batch_norm_cfg(cfg) -> bool:
    """Whether a norm config builds a BatchNorm (``BN``, ``SyncBN``,
    ``BN2d``, ``MMSyncBN``, ...), looked up in mmpretrain's registry."""
    if not isinstance(cfg, dict):
        return False
    norm_type = cfg.get('type')
    norm_cls = MMPRETRAIN_MODELS.get(norm_type) if isinstance(
        norm_type, str) else norm_type
    return isinstance(norm_cls, type) and (issubclass(
        norm_cls, _BatchNorm) or norm_cls.__name__ == 'SyncBatchNorm')


def resolve_mixer_cfg(
    name: str,
    default_mixer_cfg: dict,
    mixer_cfg: Optional[dict],
    norm_cfg: dict,
    legacy: Dict[str, object],
    legacy_norm_targets: Sequence[str] = ("mixer_cfg['norm_cfg']", )
) -> Tuple[dict, dict]:
    """The network norm config and the merged mixer config of a backbone.

    The deprecated arguments are moved into the mixer config, each with a
    ``DeprecationWarning`` naming its new place: a BatchNorm ``norm_cfg``
    (the former large-kernel branch norm) becomes ``norm_cfg`` of the
    mixer, and the network keeps :data:`DEFAULT_NORM_CFG`; the keys of
    ``sw_cfg`` and any other non-None entry of ``legacy`` become mixer
    keys. Precedence: ``default_mixer_cfg``, the deprecated arguments,
    ``mixer_cfg``.

    Args:
        name (str): The backbone's class name, for the messages.
        default_mixer_cfg (dict): The class's default mixer config.
        mixer_cfg (dict, optional): The ``mixer_cfg`` argument.
        norm_cfg (dict): The ``norm_cfg`` argument.
        legacy (dict): The deprecated arguments (``fast_path``,
            ``decompose``, ``sw_cfg``; None when not given).
        legacy_norm_targets (Sequence[str]): Where a BatchNorm ``norm_cfg``
            is used, for the warning.

    Returns:
        tuple[dict, dict]: The network norm config and the mixer config.

    Raises:
        ValueError: If ``sw_cfg`` has keys other than :data:`SW_CFG_KEYS`
            or ``mixer_cfg`` sets one of :data:`INJECTED_MIXER_KEYS`.
    """
    moved = {}
    if is_batch_norm_cfg(norm_cfg):
        targets = ' and '.join(legacy_norm_targets)
        warnings.warn(
            f'{name}: a BatchNorm `norm_cfg` ({norm_cfg}) is the former '
            f'large-kernel branch norm; it is used as {targets}, and '
            '`norm_cfg` now sets the network norms (default '
            f'{DEFAULT_NORM_CFG}). Pass it as {targets} instead.',
            DeprecationWarning)
        moved['norm_cfg'], norm_cfg = norm_cfg, DEFAULT_NORM_CFG
    legacy = dict(legacy)
    sw_cfg = legacy.pop('sw_cfg', None)
    if sw_cfg is not None:
        unknown = set(sw_cfg) - set(SW_CFG_KEYS)
        if unknown:
            raise ValueError(f'`sw_cfg` keys must be in {sorted(SW_CFG_KEYS)}'
                             f', got {sorted(unknown)}.')
        warnings.warn(
            f'{name}: `sw_cfg` is deprecated; pass its keys in `mixer_cfg` '
            '(e.g. mixer_cfg=dict(ghost_ratio=0.23)).', DeprecationWarning)
        moved.update(sw_cfg)
    for key, value in legacy.items():
        if value is not None:
            warnings.warn(
                f'{name}: `{key}` is deprecated; pass '
                f'mixer_cfg=dict({key}={value!r}) instead.',
                DeprecationWarning)
            moved[key] = value
    mixer_cfg = dict(mixer_cfg or {})
    injected = sorted(set(mixer_cfg) & set(INJECTED_MIXER_KEYS))
    if injected:
        raise ValueError(
            f'`mixer_cfg` must not set {injected}: the backbone sets them '
            'from `arch`, `width_factor` and `kernel_size`.')
    return norm_cfg, copy.deepcopy({**default_mixer_cfg, **moved, **mixer_cfg})
