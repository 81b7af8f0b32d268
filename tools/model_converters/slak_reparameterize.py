"""Convert a trained SLaK checkpoint into its re-parameterized deploy form.

The style of mmpretrain's ``tools/model_converters/reparameterize_model.py``:
build the model of CONFIG (an mmpretrain, mmseg or mmdet config whose
model has a SLaK ``backbone``), load CKPT, call
``model.backbone.switch_to_deploy()`` (each large kernel's three branches
with their BN become two convs with a bias, see
:class:`slak_mm.DecomposedLargeKernelConv`) and save
``dict(meta=..., state_dict=...)`` to OUT. The result loads into the same
config with the backbone built in deploy form::

    python tools/model_converters/slak_reparameterize.py \\
        configs/upernet_slak_t_ade20k.py work_dirs/iter_160000.pth \\
        slak_t_upernet_deploy.pth
    python tools/test.py configs/upernet_slak_t_ade20k.py \\
        slak_t_upernet_deploy.pth --cfg-options model.backbone.deploy=True

Only the model weights are kept (no optimizer / message hub); ``meta``
is the input's with ``slak_deploy=True`` added. The folding uses the BN
running statistics, so the converted model equals the original one in
eval mode (up to float rounding).
"""
import argparse
from typing import List, Optional

from mmengine.config import Config, DictAction
from mmengine.runner import load_checkpoint, save_checkpoint

from slak_mm.apis import build_model
from slak_mm.models import DecomposedLargeKernelConv
from slak_mm.utils import checkpoint_safe_globals


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Re-parameterize the large kernels of a SLaK '
        'checkpoint (fold BN, merge the small kernel) for deployment.')
    parser.add_argument('config', help='config of the trained model')
    parser.add_argument('checkpoint', help='trained checkpoint')
    parser.add_argument('out', help='path of the deploy checkpoint')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, "key=value" pairs')
    return parser.parse_args(argv)


def reparameterize(cfg: Config, checkpoint: str, out: str) -> dict:
    """Load ``checkpoint`` into the model of ``cfg``, switch it to deploy
    form and save it to ``out``.

    Args:
        cfg (Config): Config of the trained model.
        checkpoint (str): Path of the trained checkpoint (a
            ``state_dict`` with the model's keys, e.g. a Runner checkpoint).
        out (str): Path of the deploy checkpoint.

    Returns:
        dict: The saved state dict.

    Raises:
        ValueError: If the model has no SLaK large kernels, or the config
            already builds the deploy form.
        RuntimeError: If the checkpoint does not match the model
            (strict loading).
        TypeError: If the large kernels use a norm other than BatchNorm.
    """
    if (cfg.model.get('backbone') or {}).get('deploy', False):
        raise ValueError('The config already builds the backbone in deploy '
                         'form (model.backbone.deploy=True); give the config '
                         'of the trained model.')
    model = build_model(cfg, init_cfg=None) if cfg.model.get('backbone') \
        else build_model(cfg)
    with checkpoint_safe_globals():
        ckpt = load_checkpoint(
            model, checkpoint, map_location='cpu', strict=True)
    model.eval()
    large_kernels = [
        m for m in model.modules() if isinstance(m, DecomposedLargeKernelConv)
    ]
    if not large_kernels:
        raise ValueError(f'The model of the config ({type(model).__name__}) '
                         'has no SLaK large kernels to re-parameterize.')
    backbone = getattr(model, 'backbone', None)
    if backbone is not None and hasattr(backbone, 'switch_to_deploy'):
        backbone.switch_to_deploy()
    # large kernels outside the backbone (or in a backbone without the
    # method): switch them one by one (idempotent)
    for module in large_kernels:
        module.switch_to_deploy()
    meta = dict(ckpt.get('meta', {}) if isinstance(ckpt, dict) else {})
    meta['slak_deploy'] = True
    state_dict = model.state_dict()
    save_checkpoint(dict(meta=meta, state_dict=state_dict), out)
    return state_dict


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    state_dict = reparameterize(cfg, args.checkpoint, args.out)
    print(f'Saved the deploy checkpoint ({len(state_dict)} tensors) to '
          f'{args.out}; load it with --cfg-options '
          'model.backbone.deploy=True.')


if __name__ == '__main__':
    main()
