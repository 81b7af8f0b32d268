"""Building a config's model in the registry scope of its toolbox."""
import copy

from mmengine.registry import MODELS, DefaultScope


def build_model(cfg, **backbone):
    """Build ``cfg.model`` as mmengine's Runner does: in the config's
    ``default_scope`` (the previous default scope is restored afterwards,
    so tests do not leak it to each other), with a top-level
    ``data_preprocessor`` as default. ``backbone`` overrides fields of
    ``model.backbone`` (e.g. ``init_cfg=None``)."""
    model_cfg = copy.deepcopy(cfg.model)
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    if backbone:
        model_cfg.backbone.update(backbone)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        return MODELS.build(model_cfg)
